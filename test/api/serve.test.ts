// SPDX-License-Identifier: Apache-2.0
// startServer on the tiny model: the three body forms (raw, multipart, JSON) and both label formats, every refusal
// with its status and code, /healthz and /metrics, a client that goes away, and a graceful shutdown while requests
// are in flight. Nothing here depends on how fast the machine is: requests are held in the batcher (a long
// maxDelayMs) until the test lets them run, and every wait polls a counter.
import * as http from 'node:http';
import * as net from 'node:net';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { ErrorCode } from '../../lib/errors';
import { SanModel, SanModelMetrics, SanModelOptions } from '../../lib/segment/model';
import {
  decodeRle, encodeRle, registerModelMetrics, SanServer, SegmentBody, ServeErrorCode, startServer,
} from '../../lib/serve/server';
import { noisePng } from '../../lib/serve/noise-image';
import { testRuntime } from '../helpers/device';
import { Answer, request, until } from '../helpers/http';
import { tinyModelDir } from '../native/support';

const classes = ['sky', 'sea', 'sand'];
const LONG_DELAY = 60_000;

async function load(options: SanModelOptions = {}): Promise<SanModel> {
  return SanModel.load(tinyModelDir, { ...testRuntime(), verify: false, ...options });
}

function postImage(server: SanServer, image: Buffer, query: string, type = 'image/png'): Promise<Answer> {
  return request(`${server.url}/segment?${query}`, { method: 'POST', headers: { 'Content-Type': type }, body: image });
}

/** A multipart/form-data body written by hand, for cases no encoder would produce. */
function multipart(boundary: string, parts: Array<{ headers: string[]; data: Buffer | string }>,
  { preamble = '', epilogue = '' } = {}): Buffer {
  const chunks: Buffer[] = [Buffer.from(preamble)];
  parts.forEach(({ headers, data }, i) => {
    chunks.push(Buffer.from(`${i === 0 && preamble === '' ? '' : '\r\n'}--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`));
    chunks.push(Buffer.from(data));
  });
  chunks.push(Buffer.from(`\r\n--${boundary}--${epilogue}`));
  return Buffer.concat(chunks);
}

/** The 16-bit label PNG of an answer, as labels. */
async function pngLabels(base64: string): Promise<Uint16Array> {
  const data = await sharp(Buffer.from(base64, 'base64')).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
  return new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
}

let model: SanModel;
let server: SanServer;
let png: Buffer;
beforeAll(async () => {
  model = await load({ batching: { maxBatchSize: 1, maxDelayMs: 0 } });
  server = await startServer(model, { port: 0, maxBodyBytes: 64 * 1024, maxImagePixels: 200 * 200 });
  png = await noisePng(48, 64, 1);
});
afterAll(async () => {
  await server.close();
  await model.dispose();
});

describe('POST /segment', () => {
  test('a raw PNG body with classes in the query: labels, shares and size as segment() gives them', async () => {
    const answer = await postImage(server, png, 'classes=sky;sea;sand');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = answer.json();
    expect(body).toMatchObject({ classes, size: [48, 64], labels: { format: 'png' } });
    expect(body.ms).toBeGreaterThan(0);
    const direct = await model.segment(png, { classes });
    expect(await pngLabels(body.labels.data)).toEqual(direct.labels.data);
    expect(body.shares).toEqual(Object.fromEntries(direct.shares().map(({ name, share }) => [name, share])));
  });

  test("classes without ';' are split at ','; spaces and empty entries are dropped", async () => {
    const answer = await postImage(server, png, `classes=${encodeURIComponent(' sky, sea ,sand,')}`,
      'application/octet-stream');
    expect(answer.status).toBe(200);
    expect(answer.json().classes).toEqual(classes);
  });

  test('format=rle decodes to the same labels as format=png', async () => {
    const [asPng, asRle] = await Promise.all(['png', 'rle'].map((format) =>
      postImage(server, png, `classes=sky;sea;sand&format=${format}`).then((a) => a.json())));
    expect(asRle.labels.format).toBe('rle');
    expect(asRle.labels.data.length % 2).toBe(0);
    expect(decodeRle(asRle.labels.data)).toEqual(await pngLabels(asPng.labels.data));
    expect(asRle.shares).toEqual(asPng.shares);
  });

  test('multipart/form-data from FormData: a file field image and a classes field as a JSON array', async () => {
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), 'noise.png');
    form.append('classes', JSON.stringify(['sky', 'sea, ocean', 'sand']));
    form.append('format', 'rle');
    form.append('outputSize', '24x32');
    form.append('templates', 'single');
    const answer = await fetch(`${server.url}/segment`, { method: 'POST', body: form });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as SegmentBody;
    expect(body).toMatchObject({ classes: ['sky', 'sea, ocean', 'sand'], size: [24, 32] });
    const direct = await model.segment(png, { classes: body.classes, outputSize: [24, 32], templates: 'single' });
    expect(decodeRle(body.labels.data as number[])).toEqual(direct.labels.data);
  });

  test('a hand-written multipart body: preamble, epilogue, CRLF inside the image bytes, query parameters too', async () => {
    // PNG bytes start with \x89PNG\r\n\x1a\n: the CRLF inside a part must not end it.
    const body = multipart('b0undary', [
      { headers: ['Content-Disposition: form-data; name="image"; filename="a.png"', 'Content-Type: image/png'], data: png },
      { headers: ['Content-Disposition: form-data; name="format"'], data: 'rle' },
    ], { preamble: 'ignored preamble', epilogue: '\r\nignored epilogue' });
    const answer = await request(`${server.url}/segment?classes=sky;sea;sand`, {
      method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary="b0undary"' }, body,
    });
    expect(answer.status).toBe(200);
    const direct = await model.segment(png, { classes });
    expect(decodeRle(answer.json().labels.data)).toEqual(direct.labels.data);
  });

  test('a JSON body: the image in base64 (or a data: URL), classes as an array, outputSize as [h, w]', async () => {
    const direct = await model.segment(png, { classes, outputSize: [24, 32] });
    for (const image of [png.toString('base64'), `data:image/png;base64,${png.toString('base64')}`]) {
      const answer = await request(`${server.url}/segment`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ image, classes, outputSize: [24, 32], format: 'rle' }),
      });
      expect(answer.status).toBe(200);
      expect(answer.json()).toMatchObject({ classes, size: [24, 32], labels: { format: 'rle' } });
      expect(decodeRle(answer.json().labels.data)).toEqual(direct.labels.data);
    }
  });

  test.each([
    ['not JSON', '{"image": ', ServeErrorCode.MALFORMED_BODY, /^Malformed JSON body: /],
    ['not an object', '[1, 2]', ServeErrorCode.MALFORMED_BODY, /^Malformed JSON body: expected an object/],
    ['no image', '{"classes": ["sky"]}', ErrorCode.INVALID_ARG, /^The JSON body has no image field/],
    ['an image that is not base64', '{"image": "a*b", "classes": "sky"}', ErrorCode.INVALID_ARG,
      /^Expected the image as a base64 string or a data: URL for image but received 'a\*b'/],
    ['classes of the wrong type', '{"image": "AAAA", "classes": 3}', ErrorCode.INVALID_ARG,
      /^Expected an array of class names or a string for classes but received 3 of type number$/],
    ['an unknown field', '{"image": "AAAA", "classes": "sky", "colour": "red"}', ErrorCode.INVALID_ARG,
      /^Unknown JSON field 'colour'; expected one of: classes, .*, image$/],
  ])('a JSON body with %s is refused with 400', async (_, body, code, message) => {
    const answer = await request(`${server.url}/segment`, {
      method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: body as string,
    });
    expect(answer.status).toBe(400);
    expect(answer.json()).toEqual({ error: { code, message: expect.stringMatching(message as RegExp) } });
  });

  test.each([
    ['no closing boundary', (b: Buffer) => b.subarray(0, b.length - 12), /it ends before its closing boundary$/],
    ['no boundary line at all', () => Buffer.from('just some bytes'), /it ends before its closing boundary$/],
    ['a header line without a colon', () => multipart('b0undary', [{ headers: ['Content-Disposition form-data'],
      data: 'x' }]), /a part has a malformed header$/],
  ])('a malformed multipart body (%s) is refused with 400 ERR_SAN_MALFORMED_BODY', async (_, make, why) => {
    const good = multipart('b0undary', [{ headers: ['Content-Disposition: form-data; name="image"; filename="a.png"'],
      data: png }]);
    const answer = await request(`${server.url}/segment?classes=sky`, {
      method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b0undary' }, body: make(good),
    });
    expect(answer.status).toBe(400);
    expect(answer.json().error).toMatchObject({ code: ServeErrorCode.MALFORMED_BODY,
      message: expect.stringMatching(new RegExp(`^Malformed multipart/form-data body: ${(why as RegExp).source}`)) });
  });

  test.each([
    ['a part without Content-Disposition (skipped)', ['Content-Type: image/png'], /^The form has no image field/],
    ['an image sent as a text field', ['Content-Disposition: form-data; name="image"'],
      /^The form's image field is text, not a file part/],
    ['a parameter sent as a file', ['Content-Disposition: form-data; name="classes"; filename="c.txt"'],
      /^The form has a file part 'classes'; only the image is sent as a file/],
  ])('a form with %s is refused with 400 ERR_SAN_INVALID_ARG', async (_, headers, message) => {
    const answer = await request(`${server.url}/segment`, {
      method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b0undary' },
      body: multipart('b0undary', [{ headers: headers as string[], data: png }]),
    });
    expect(answer.status).toBe(400);
    expect(answer.json().error).toEqual({ code: ErrorCode.INVALID_ARG, message: expect.stringMatching(message as RegExp) });
  });

  test.each([
    ['missing classes', 'format=png', /^No classes: /],
    ['blank classes', 'classes=%20;%20', /^No classes: the classes parameter names none/],
    ['repeated classes', 'classes=sky;sky', /^Expected distinct class names for classes/],
    ['a bad format', 'classes=sky&format=jpeg',
      /^Expected one of: png, rle for format but received 'jpeg' of type string$/],
    ['unknown templates', 'classes=sky&templates=mine', /^Expected one of: vild, single for templates/],
    ['a bad outputSize', 'classes=sky&outputSize=12', /^Expected HxW, e.g. 480x640 for outputSize/],
    ['an outputSize out of range', 'classes=sky&outputSize=0x10',
      /^Expected an integer between 1 and 16384 for options.outputSize\[0\] but received 0/],
    ['a bad timeoutMs', 'classes=sky&timeoutMs=soon', /^Expected an integer between 1 and/],
    ['an unknown parameter', 'classes=sky&class=sea', /^Unknown query parameter 'class'; expected one of: classes/],
    ['a parameter given twice', 'classes=sky&classes=sea', /^The query gives classes 2 times/],
  ])('%s is refused with 400 ERR_SAN_INVALID_ARG', async (_, query, message) => {
    const answer = await postImage(server, png, query as string);
    expect(answer.status).toBe(400);
    expect(answer.json()).toEqual({ error: { code: ErrorCode.INVALID_ARG, message: expect.stringMatching(message) } });
  });

  test('bytes that are no image are refused with 400 ERR_SAN_IMAGE; an empty body with 400', async () => {
    const junk = await postImage(server, Buffer.from('not an image at all'), 'classes=sky');
    expect(junk.status).toBe(400);
    expect(junk.json().error).toMatchObject({ code: ErrorCode.IMAGE, message: expect.stringMatching(/^Could not read the image: /) });
    const empty = await postImage(server, Buffer.alloc(0), 'classes=sky');
    expect(empty.status).toBe(400);
    expect(empty.json().error.message).toMatch(/^The request has no image/);
  });

  test('an SVG is refused with 400 ERR_SAN_IMAGE before it is rendered', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>');
    const answer = await postImage(server, svg, 'classes=sky', 'image/svg+xml');
    expect(answer.status).toBe(400);
    expect(answer.json().error).toMatchObject({ code: ErrorCode.IMAGE, message: expect.stringMatching(/but received svg$/) });
  });

  test('an image over maxImagePixels is refused with 413 ERR_SAN_IMAGE from its header', async () => {
    // 1 × 50000 compresses to a few hundred bytes, well under maxBodyBytes.
    const wide = await sharp({ create: { width: 50_000, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
    const answer = await postImage(server, wide, 'classes=sky');
    expect(answer.status).toBe(413);
    expect(answer.json().error).toMatchObject({ code: ErrorCode.IMAGE,
      message: 'The image has 50000×1 pixels, more than the 40000 allowed (maxImagePixels)' });
  });

  test('a body over maxBodyBytes is refused with 413: by its Content-Length, or once its bytes pass the limit', async () => {
    const big = Buffer.alloc(200 * 1024);
    const declared = await postImage(server, big, 'classes=sky');
    expect(declared.status).toBe(413);
    expect(declared.headers.connection).toBe('close');
    expect(declared.json().error).toEqual({ code: ServeErrorCode.BODY_TOO_LARGE,
      message: 'The body is larger than 65536 bytes (maxBodyBytes)' });
    // Chunked: no Content-Length, so the bytes are counted as they come.
    const streamed = await request(`${server.url}/segment?classes=sky`, {
      method: 'POST', headers: { 'Content-Type': 'image/png' }, body: Array.from({ length: 20 }, () => Buffer.alloc(10_000)),
    });
    expect(streamed.status).toBe(413);
    expect(streamed.json().error.code).toBe(ServeErrorCode.BODY_TOO_LARGE);
    // The server goes on serving.
    expect((await postImage(server, png, 'classes=sky')).status).toBe(200);
  });

  test('a Content-Type other than image/*, octet-stream or multipart is refused with 415', async () => {
    const answer = await postImage(server, png, 'classes=sky', 'application/x-www-form-urlencoded');
    expect(answer.status).toBe(415);
    expect(answer.json().error.code).toBe(ServeErrorCode.MEDIA_TYPE);
  });
});

describe('other routes', () => {
  test('unknown routes answer 404, wrong methods 405 with Allow', async () => {
    const missing = await request(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ error: { code: ServeErrorCode.NOT_FOUND, message: 'No route /nope' } });
    const wrong = await request(`${server.url}/segment`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.json().error.code).toBe(ServeErrorCode.METHOD_NOT_ALLOWED);
    expect((await request(`${server.url}/toString`)).status).toBe(404);
  });

  test('GET /healthz answers 200 {status: ok}', async () => {
    const answer = await request(`${server.url}/healthz`);
    expect([answer.status, answer.json()]).toEqual([200, { status: 'ok' }]);
  });

  test('GET /metrics answers the Prometheus text format with HELP and TYPE for every san_ metric', async () => {
    await postImage(server, png, 'classes=sky;sea;sand');
    const answer = await request(`${server.url}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const names = [
      'san_info', 'san_requests_total', 'san_batches_total', 'san_batch_size', 'san_request_duration_seconds',
      'san_request_duration_max_seconds', 'san_images_per_second', 'san_queue_depth', 'san_text_cache_hits_total',
      'san_text_cache_misses_total', 'san_text_cache_evictions_total', 'san_text_cache_bytes',
      'san_text_cache_entries', 'san_process_resident_memory_bytes', 'san_http_requests_total', 'san_http_requests_in_flight',
      'san_http_responses_total',
    ];
    for (const name of names) {
      expect(answer.body).toContain(`# HELP ${name} `);
      expect(answer.body).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|histogram|summary)$`, 'm'));
    }
    expect(answer.body).toMatch(/^san_requests_total\{outcome="succeeded"\} [1-9]\d*$/m);
    expect(answer.body).toMatch(/^san_batch_size_bucket\{le="1"\} [1-9]\d*$/m);
    expect(answer.body).toMatch(/^san_batch_size_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect(answer.body).toMatch(/^san_request_duration_seconds\{quantile="0.99"\} \d/m);
    expect(answer.body).toMatch(/^san_http_responses_total\{code="200"\} [1-9]\d*$/m);
    expect(answer.body).toMatch(/^san_http_requests_in_flight 1$/m); // this request itself
    expect(answer.body).toMatch(/^san_process_resident_memory_bytes [1-9]\d*$/m);
    // _sum and _count of the histogram and the summary.
    expect(answer.body).toMatch(/^san_batch_size_sum [1-9]\d*$/m);
    expect(answer.body).toMatch(/^san_request_duration_seconds_sum \d/m);
    expect(answer.body).toMatch(/^san_request_duration_seconds_count [1-9]\d*$/m);
    // Every line is blank (between families), a comment or `name{labels} value`.
    for (const line of answer.body.trimEnd().split('\n')) {
      expect(line).toMatch(/^(|# (HELP|TYPE) san_\w+ .+|san_\w+(\{\w+="[^"]*"(,\w+="[^"]*")*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?))$/);
    }
  });
});

describe('helpers', () => {
  test('registerModelMetrics: GPU memory as san_device_memory_bytes when the model runs on a GPU, nothing on the CPU',
    async () => {
    const metrics = model.metrics();
    const textOf = (read: SanModelMetrics): Promise<string> => {
      const registry = new Registry();
      registerModelMetrics(registry, () => read);
      return registry.metrics();
    };
    const onCpu = { ...metrics, memory: { ...metrics.memory, device: 'cpu',
      deviceMemory: { unavailable: 'the model runs on the cpu' } } };
    expect(await textOf(onCpu)).not.toContain('san_device_memory_bytes');
    const onGpu = { ...metrics, memory: { ...metrics.memory, device: 'cuda:0',
      deviceMemory: { allocatedBytes: 1024, reservedBytes: 4096, peakAllocatedBytes: 2048 } } };
    const text = await textOf(onGpu);
    expect(text).toContain('san_info{device="cuda:0"} 1\n');
    expect(text).toContain('# TYPE san_device_memory_bytes gauge\nsan_device_memory_bytes{kind="allocated"} 1024\n' +
      'san_device_memory_bytes{kind="reserved"} 4096\nsan_device_memory_bytes{kind="peak_allocated"} 2048\n');
    expect(text).not.toContain('san_http_');
  });

  test('encodeRle and decodeRle are inverses', () => {
    const labels = new Uint16Array([0, 0, 0, 2, 2, 1, 65535, 65535]);
    expect(encodeRle(labels)).toEqual([0, 3, 2, 2, 1, 1, 65535, 2]);
    expect(decodeRle(encodeRle(labels))).toEqual(labels);
    expect(encodeRle(new Uint16Array(0))).toEqual([]);
    expect(() => decodeRle([1])).toThrow(RangeError);
    expect(() => decodeRle([1, 0])).toThrow(/Expected a positive integer count for runs\[1\] but received 0/);
  });

  test('startServer refuses bad options', async () => {
    await expect(startServer(model, { port: 70000 })).rejects.toThrow(
      /^Expected an integer between 0 and 65535 for options.port but received 70000 of type number$/);
    await expect(startServer(model, { maxBodyBytes: '1' as unknown as number })).rejects.toThrow(TypeError);
    await expect(startServer({} as SanModel)).rejects.toThrow(/Expected a loaded SanModel for model/);
    await expect(startServer(model, { devise: 'cpu' } as never)).rejects.toThrow(
      /^Expected only the options port, host, .*, onError for options but received 'devise'/);
    await expect(startServer(model, { headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).rejects.toThrow(
      /^Expected an integer between 5000 and 2147483647 for options.requestTimeoutMs but received 1000/);
  });
});

describe('requests in flight', () => {
  let held: SanModel;
  let heldServer: SanServer;
  beforeEach(async () => {
    // Requests wait for a batch of 4 that only the test completes.
    held = await load({ batching: { maxBatchSize: 4, maxDelayMs: LONG_DELAY } });
    heldServer = await startServer(held, { port: 0 });
  });
  afterEach(async () => {
    await heldServer.close();
    await held.dispose();
  });

  test('a client that goes away aborts its request: it leaves the batcher queue', async () => {
    const req = http.request(`${heldServer.url}/segment?classes=sky`, {
      method: 'POST', headers: { 'Content-Type': 'image/png' }, agent: false,
    });
    req.on('error', () => undefined);
    req.end(png);
    await until(() => held.metrics().queueDepth.batcher === 1);
    req.destroy();
    await until(() => held.metrics().queueDepth.batcher === 0 && heldServer.inFlight === 0);
    expect(held.metrics().batches.count).toBe(0);
  });

  test('close() answers every accepted request, refuses new ones with 503, and leaves the model usable', async () => {
    // A connection that has sent one whole request and the start of a second: busy, so close() keeps it open.
    const raw = net.connect(heldServer.port, '127.0.0.1');
    let received = '';
    raw.on('data', (chunk) => { received += chunk.toString('latin1'); });
    const rawClosed = new Promise((resolve) => raw.on('close', resolve));
    raw.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\n');
    await until(() => received.includes('{"status":"ok"}'));

    const accepted = [1, 2, 3].map(() => postImage(heldServer, png, 'classes=sky;sea&format=rle'));
    await until(() => held.metrics().queueDepth.batcher === 3);
    const closing = heldServer.close();
    let closed = false;
    void closing.then(() => { closed = true; });

    // The busy connection finishes its second request: 503, draining, and the connection is closed.
    raw.write('Host: localhost\r\n\r\n');
    await rawClosed;
    expect(received).toMatch(/HTTP\/1.1 503 Service Unavailable[^]*Connection: close[^]*\{"status":"draining"\}$/);
    // A new connection is refused (or, were it accepted, answered 503).
    const late = await request(`${heldServer.url}/healthz`).then((a) => a.status, (error) => error.code);
    expect([503, 'ECONNREFUSED']).toContain(late);
    expect(closed).toBe(false);

    // The fourth image of the batch, straight to the model: the batch runs and the three are answered.
    const direct = await held.segment(png, { classes: ['sky', 'sea'] });
    const answers = await Promise.all(accepted);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    for (const answer of answers) expect(decodeRle(answer.json().labels.data)).toEqual(direct.labels.data);
    await closing;
    expect(heldServer.inFlight).toBe(0);
    expect(held.metrics().batches.sizeHistogram).toEqual({ 4: 1 });
  });

  test('more than maxInFlight requests are refused with 503 and Retry-After', async () => {
    await heldServer.close();
    heldServer = await startServer(held, { port: 0, maxInFlight: 1, retryAfterSeconds: 7 });
    const first = postImage(heldServer, png, 'classes=sky');
    await until(() => held.metrics().queueDepth.batcher === 1);
    const refused = await postImage(heldServer, png, 'classes=sky');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('7');
    expect(refused.json().error.code).toBe(ErrorCode.OVERLOADED);
    await Promise.all([1, 2, 3].map(() => held.segment(png, { classes: ['sky'] })));
    expect((await first).status).toBe(200);
  });

  test('a request past its timeoutMs is answered 504 ERR_SAN_TIMEOUT', async () => {
    const answer = await postImage(heldServer, png, 'classes=sky&timeoutMs=20');
    expect(answer.status).toBe(504);
    expect(answer.json().error.code).toBe(ErrorCode.TIMEOUT);
  });
});
