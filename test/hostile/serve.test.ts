// SPDX-License-Identifier: Apache-2.0
// The HTTP server against hostile clients, on the tiny model: one regression test per case of docs/reliability.md's
// "The HTTP server". Each case runs while a good client is served. Nothing depends on the machine's speed: the limits
// are set small, and every wait is for a condition (a socket closed, a counter reached), bounded by the test timeout.
import * as http from 'node:http';
import * as net from 'node:net';
import sharp from 'sharp';
import { ErrorCode, SanError } from '../../lib/errors';
import { SanModel } from '../../lib/segment/model';
import { errorAnswer } from '../../lib/serve/http-error';
import { noisePng } from '../../lib/serve/noise-image';
import { SanServer, ServeErrorCode, ServeOptions, startServer } from '../../lib/serve/server';
import { testRuntime } from '../helpers/device';
import { Answer, request, until } from '../helpers/http';
import { tinyModelDir } from '../native/support';

/** A raw connection: what it received, and whether (and when) the server closed it. */
interface Raw {
  socket: net.Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

async function connect(server: SanServer, first = ''): Promise<Raw> {
  const socket = net.connect(server.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  let closed = false;
  socket.on('data', (chunk) => { received += chunk.toString('latin1'); });
  socket.on('error', () => undefined);
  const whenClosed = new Promise<void>((resolve) => socket.once('close', () => { closed = true; resolve(); }));
  if (first !== '') socket.write(first);
  return { socket, received: () => received, closed: whenClosed, isClosed: () => closed };
}

/** The head of a POST /segment whose body is `length` bytes, none of it sent. */
function postHead(query: string, length: number, type = 'image/png'): string {
  return `POST /segment?${query} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\n` +
    `Content-Length: ${length}\r\n\r\n`;
}

async function metric(server: SanServer, line: RegExp): Promise<number> {
  const text = await server.registry.metrics();
  return Number(line.exec(text)?.[1] ?? NaN);
}

function bodyBytesInFlight(server: SanServer): Promise<number> {
  return metric(server, /^san_http_body_bytes_in_flight (\d+)$/m);
}

/**
 * Resolves once the server holds at least `bytes` of bodies, checking every 5 ms: the registry answers within
 * microtasks, so a loop without a timer would never let the socket's data in.
 */
async function untilBodyBytes(server: SanServer, bytes: number): Promise<void> {
  while (await bodyBytesInFlight(server) < bytes) await new Promise((resolve) => setTimeout(resolve, 5));
}

let model: SanModel;
let png: Buffer;
const servers: SanServer[] = [];
const raws: Raw[] = [];

async function serve(options: ServeOptions): Promise<SanServer> {
  const server = await startServer(model, { port: 0, ...options });
  servers.push(server);
  return server;
}

async function open(server: SanServer, first = ''): Promise<Raw> {
  const raw = await connect(server, first);
  raws.push(raw);
  return raw;
}

/** A good client: one image, answered 200 with its label map. */
async function good(server: SanServer): Promise<void> {
  const answer = await request(`${server.url}/segment?classes=sky;sea&format=rle`,
    { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
  expect(answer.status).toBe(200);
  expect(answer.json().size).toEqual([24, 32]);
}

beforeAll(async () => {
  model = await SanModel.load(tinyModelDir, { ...testRuntime(), verify: false,
    batching: { maxBatchSize: 1, maxDelayMs: 0 } });
  png = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3a7' } }).png().toBuffer();
});
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
afterAll(async () => {
  await model.dispose();
});

test('stalled uploads (headers, then no body) hold no slot: a good client is served, and they get 408', async () => {
  const server = await serve({ maxInFlight: 2, bodyTimeoutMs: 1500 });
  const stalled = await Promise.all(Array.from({ length: 8 }, () => open(server, postHead('classes=sky', 1000))));
  await until(() => server.inFlight === 8);
  // Four times maxInFlight uploads that send nothing, and /segment still answers.
  await good(server);
  await good(server);
  // Each stalled upload gets its 408 once bodyTimeoutMs has passed, and its connection is closed.
  await Promise.all(stalled.map((raw) => raw.closed));
  for (const raw of stalled) {
    expect(raw.received()).toMatch(/^HTTP\/1.1 408 Request Timeout\r\n[^]*Connection: close\r\n/);
    expect(raw.received()).toContain(`"code":"${ServeErrorCode.BODY_TIMEOUT}"`);
    expect(raw.received()).toContain('The body did not arrive within 1500 ms (bodyTimeoutMs); 0 bytes came');
  }
  expect(server.inFlight).toBe(0);
});

test('silent sockets beyond maxConnections: the longest idle are closed, and good clients are served', async () => {
  const server = await serve({ maxConnections: 10, headersTimeoutMs: 60_000 });
  const silent: Raw[] = [];
  for (let i = 0; i < 30; i += 1) silent.push(await open(server));
  // Each new connection at the cap closed the oldest silent one: the first 20 are gone, the last 10 open.
  await Promise.all(silent.slice(0, 20).map((raw) => raw.closed));
  expect(silent.slice(20).some((raw) => raw.isClosed())).toBe(false);
  // The first good client's connection makes room for itself the same way; the second finds room left by the first.
  await good(server);
  await good(server);
  expect(await metric(server, /^san_http_connections_closed_total\{reason="evicted"\} (\d+)$/m)).toBe(21);
  expect(await metric(server, /^san_http_connections (\d+)$/m)).toBeLessThanOrEqual(10);
});

test('silent sockets at the cap close one another, not a keep-alive client between its requests', async () => {
  const server = await serve({ maxConnections: 5, headersTimeoutMs: 60_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const keptAlive = (): Promise<{ status: number; reused: boolean }> => new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/segment?classes=sky`, { method: 'POST', agent,
      headers: { 'Content-Type': 'image/png' } }, (res) => {
      res.resume().on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(png);
  });
  try {
    expect(await keptAlive()).toEqual({ status: 200, reused: false });
    const silent: Raw[] = [];
    for (let i = 0; i < 12; i += 1) silent.push(await open(server));
    await Promise.all(silent.slice(0, 8).map((raw) => raw.closed));
    expect(await keptAlive()).toEqual({ status: 200, reused: true });
  } finally {
    agent.destroy();
  }
});

test('at maxConnections with every connection busy, a new one is closed at once', async () => {
  const server = await serve({ maxConnections: 3, bodyTimeoutMs: 60_000 });
  const busy = await Promise.all([1, 2, 3].map(() => open(server, postHead('classes=sky', 1000))));
  await until(() => server.inFlight === 3);
  const refused = await open(server);
  await refused.closed;
  expect(busy.some((raw) => raw.isClosed())).toBe(false);
  expect(await metric(server, /^san_http_connections_closed_total\{reason="refused"\} (\d+)$/m)).toBe(1);
});

test('a silent connection is closed after headersTimeoutMs', async () => {
  const server = await serve({ headersTimeoutMs: 300 });
  const silent = await open(server);
  await silent.closed;
  expect(silent.received()).toMatch(/^HTTP\/1.1 408 Request Timeout\r\n/);
  await good(server);
});

test('the drain deadline closes an upload that trickles in, and close() reports it', async () => {
  const server = await serve({ drainTimeoutMs: 300, bodyTimeoutMs: 60_000 });
  const trickle = await open(server, postHead('classes=sky', 1000));
  const drip = setInterval(() => trickle.socket.write('x'), 50);
  try {
    await until(() => server.inFlight === 1);
    const report = await server.close();
    expect(report).toEqual({ timedOut: true, requestsUnanswered: 1, connectionsClosed: 1 });
    await trickle.closed;
  } finally {
    clearInterval(drip);
  }
  expect(server.inFlight).toBe(0);
  // Without anything left at the deadline, the drain reports none.
  const calm = await serve({ drainTimeoutMs: 300 });
  await good(calm);
  expect(await calm.close()).toEqual({ timedOut: false, requestsUnanswered: 0, connectionsClosed: 0 });
});

test('clients that disconnect abort their queued work: it leaves the queue and no batch runs for it', async () => {
  const held = await SanModel.load(tinyModelDir, { ...testRuntime(), verify: false,
    batching: { maxBatchSize: 8, maxDelayMs: 60_000 } });
  try {
    const server = await startServer(held, { port: 0 });
    servers.push(server);
    const clients = [1, 2, 3, 4].map(() => {
      const req = http.request(`${server.url}/segment?classes=sky`, {
        method: 'POST', headers: { 'Content-Type': 'image/png' }, agent: false,
      });
      req.on('error', () => undefined);
      req.end(png);
      return req;
    });
    await until(() => held.metrics().queueDepth.batcher === 4);
    for (const req of clients) req.destroy();
    await until(() => held.metrics().queueDepth.batcher === 0 && server.inFlight === 0);
    expect(held.metrics().batches.count).toBe(0);
    await server.close();
  } finally {
    await held.dispose();
  }
});

test('outputSize 16384x16384 is refused with 413 ERR_SAN_TOO_LARGE from the query, before the body is read', async () => {
  const server = await serve({});
  // The head alone: the body (a 1×1 PNG) is never sent, and the answer still comes.
  const raw = await open(server, postHead('classes=sky&outputSize=16384x16384', 90));
  await until(() => raw.received().includes('}'));
  expect(raw.received()).toMatch(/^HTTP\/1.1 413 Payload Too Large\r\n/);
  expect(raw.received()).toContain(`{"error":{"code":"${ErrorCode.TOO_LARGE}","message":"outputSize 16384x16384 is ` +
    `268435456 pixels, more than the ${2 ** 25} allowed (maxOutputPixels)"}}`);
  await good(server);
});

test('the output cap also holds for a form field, and for the image\'s own size without an outputSize', async () => {
  const server = await serve({ maxOutputPixels: 500 });
  // A form whose outputSize comes before the image: refused as soon as the field has arrived (busboy knows a field
  // has ended at the next part's boundary), the image part never sent.
  const boundary = 'b0undary';
  const field = `--${boundary}\r\nContent-Disposition: form-data; name="outputSize"\r\n\r\n100x100\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n`;
  const raw = await open(server, postHead('classes=sky', field.length + 100_000,
    `multipart/form-data; boundary=${boundary}`) + field);
  await until(() => raw.received().includes('}'));
  expect(raw.received()).toMatch(/^HTTP\/1.1 413 [^]*"code":"ERR_SAN_TOO_LARGE","message":"outputSize 100x100 is 10000 pixels/);
  // A 32×24 image is 768 pixels: refused as it is, served at a smaller outputSize.
  const whole = await request(`${server.url}/segment?classes=sky`,
    { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
  expect([whole.status, whole.json().error.code]).toEqual([413, ErrorCode.TOO_LARGE]);
  expect(whole.json().error.message).toMatch(/^The label map would have the image's 32×24 pixels \(ask for a smaller/);
  const smaller = await request(`${server.url}/segment?classes=sky&outputSize=12x16`,
    { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
  expect(smaller.status).toBe(200);
});

test('the library\'s ERR_SAN_TOO_LARGE is answered 413, as a SanError or an argument error', () => {
  expect(errorAnswer(new SanError(ErrorCode.TOO_LARGE, 'over the budget'), 1))
    .toEqual({ status: 413, code: ErrorCode.TOO_LARGE, headers: {} });
  expect(errorAnswer(Object.assign(new RangeError('over the budget'), { code: ErrorCode.TOO_LARGE }), 1).status)
    .toBe(413);
});

test('bytes admission: with maxBytesInFlight held by bodies, another is answered 503 at once', async () => {
  const server = await serve({ maxBodyBytes: 64 * 1024, maxBytesInFlight: 100 * 1024, retryAfterSeconds: 3 });
  // 60 KiB of a 64 KiB body arrive, then nothing: those bytes are held.
  const holder = await open(server, postHead('classes=sky', 64 * 1024) + 'x'.repeat(60 * 1024));
  await until(() => server.inFlight === 1);
  await untilBodyBytes(server, 60 * 1024);
  // By its Content-Length: 50 KiB more would pass 100 KiB.
  const declared = await request(`${server.url}/segment?classes=sky`,
    { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: Buffer.alloc(50 * 1024) });
  expect([declared.status, declared.headers['retry-after'], declared.json().error.code])
    .toEqual([503, '3', ErrorCode.OVERLOADED]);
  expect(declared.json().error.message)
    .toMatch(/ bytes of request bodies and decoded images, near its 102400 \(maxBytesInFlight\)/);
  // A small image still fits, and is served.
  await good(server);
  holder.socket.destroy();
  await until(() => server.inFlight === 0);
  expect(await bodyBytesInFlight(server)).toBe(0);
});

describe('the image decoded from a JSON body counts against maxBytesInFlight', () => {
  const postJson = (server: SanServer, image: Buffer): Promise<Answer> => request(`${server.url}/segment`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ image: image.toString('base64'), classes: ['sky', 'sea'], format: 'rle' }),
  });
  const jsonLength = (image: Buffer): number =>
    Buffer.byteLength(JSON.stringify({ image: image.toString('base64'), classes: ['sky', 'sea'], format: 'rle' }));

  test('a JSON request whose body fits but whose decoded image would not is answered 503, then served', async () => {
    const budget = 64 * 1024;
    const server = await serve({ maxBodyBytes: 64 * 1024, maxBytesInFlight: budget, retryAfterSeconds: 2 });
    const image = await noisePng(90, 90, 1);
    // Another JSON upload still arriving holds enough that this body fits beside it and its decoded image does not:
    // counting the body alone, it was admitted.
    const held = budget - jsonLength(image) - Math.floor(image.length / 2);
    expect(held).toBeLessThanOrEqual(64 * 1024);
    expect(held + jsonLength(image)).toBeLessThanOrEqual(budget);
    expect(held + jsonLength(image) + image.length).toBeGreaterThan(budget);
    const holder = await open(server, postHead('classes=sky', 64 * 1024, 'application/json') + ' '.repeat(held));
    await untilBodyBytes(server, held);

    const refused = await postJson(server, image);
    expect([refused.status, refused.headers['retry-after'], refused.json().error.code])
      .toEqual([503, '2', ErrorCode.OVERLOADED]);
    expect(refused.json().error.message)
      .toMatch(/ bytes of request bodies and decoded images, near its 65536 \(maxBytesInFlight\)/);
    await until(() => server.inFlight === 1);
    expect(await bodyBytesInFlight(server)).toBe(held);

    // Once the other upload is gone the same request fits, and every byte is given back after its answer.
    holder.socket.destroy();
    await until(() => server.inFlight === 0);
    const served = await postJson(server, image);
    expect([served.status, served.json().size]).toEqual([200, [90, 90]]);
    await until(() => server.inFlight === 0);
    expect(await bodyBytesInFlight(server)).toBe(0);
  });

  test('a decoded image that is not an image is answered 400, and its bytes are given back', async () => {
    const server = await serve({ maxBodyBytes: 64 * 1024, maxBytesInFlight: 64 * 1024 });
    const answer = await postJson(server, Buffer.alloc(10 * 1024, 7));
    expect([answer.status, answer.json().error.code]).toEqual([400, ErrorCode.IMAGE]);
    await until(() => server.inFlight === 0);
    expect(await bodyBytesInFlight(server)).toBe(0);
    await good(server);
  });

  test('a JSON body and its decoded image that pass maxBytesInFlight alone get 413, not a 503 to retry', async () => {
    const budget = 24 * 1024;
    const server = await serve({ maxBodyBytes: budget, maxBytesInFlight: budget });
    const image = await noisePng(64, 64, 2);
    expect(jsonLength(image)).toBeLessThanOrEqual(budget);
    expect(jsonLength(image) + image.length).toBeGreaterThan(budget);
    const answer = await postJson(server, image);
    expect([answer.status, answer.json().error.code]).toEqual([413, ErrorCode.TOO_LARGE]);
    expect(answer.json().error.message).toMatch(new RegExp(`^The ${jsonLength(image)}-byte body and the ` +
      `${image.length}-byte image decoded from its base64 would pass the 24576 bytes allowed in memory ` +
      '\\(maxBytesInFlight\\); send the image as the raw body or in multipart/form-data'));
    // As the raw body, the same image needs no decoded copy and is served.
    const raw = await request(`${server.url}/segment?classes=sky;sea&format=rle`,
      { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: image });
    expect(raw.status).toBe(200);
    await until(() => server.inFlight === 0);
    expect(await bodyBytesInFlight(server)).toBe(0);
  });
});

describe('busboy limits on forms', () => {
  const boundary = 'b0undary';
  const part = (name: string, value: string, filename?: string): string =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}` +
    `\r\n\r\n${value}\r\n`;
  const post = (server: SanServer, body: string | Buffer): Promise<Answer> => request(`${server.url}/segment`, {
    method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body });

  test.each([
    ['more parts than the parameters and the image', () => [part('classes', 'sky'), part('format', 'rle'),
      part('templates', 'single'), part('synonyms', 'whole'), part('outputSize', '8x8'), part('timeoutMs', '9000'),
      part('image', 'x', 'a.png'), part('extra', 'x'), `--${boundary}--`].join(''), 400,
    /^Malformed multipart\/form-data body: more than 7 parts$/],
    ['a field over 1 MiB', () => `${part('classes', 'a'.repeat(1024 * 1024 + 1))}--${boundary}--`, 400,
      /^The form field 'classes' is longer than 1048576 bytes$/],
    ['two files', () => `${part('image', 'a', 'a.png')}${part('image', 'b', 'b.png')}--${boundary}--`, 400,
      /^The form has two file parts; it takes one, the image$/],
  ])('%s: refused', async (_, body, status, message) => {
    const server = await serve({});
    const answer = await post(server, (body as () => string)());
    expect(answer.status).toBe(status);
    expect(answer.json().error.message).toMatch(message as RegExp);
    await good(server);
  });

  test('an image part over maxBodyBytes: 413 as its bytes pass the limit, without the whole body read', async () => {
    const server = await serve({ maxBodyBytes: 16 * 1024 });
    // Chunked, so no Content-Length refuses it first.
    let req!: http.ClientRequest;
    const answer = await new Promise<Answer>((resolve, reject) => {
      req = http.request(`${server.url}/segment?classes=sky`, { method: 'POST', agent: false,
        headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text,
          json: () => JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n`);
      req.write(Buffer.alloc(32 * 1024));
      // The rest would follow; the answer comes first.
    });
    req.destroy();
    expect([answer.status, answer.json().error.code]).toEqual([413, ServeErrorCode.BODY_TOO_LARGE]);
    await good(server);
  });
});
