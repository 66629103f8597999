// SPDX-License-Identifier: Apache-2.0
// san-seg serve in-process on the tiny model: its flags, and a stop while a request is still arriving, which must be
// answered before the command returns. The stop is handed in as a Promise, not sent as a signal, so that nothing
// signals the test runner; `npm run loadtest` stops the real command with SIGTERM. Every wait is on a condition.
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import sharp from 'sharp';
import { CliIo, UsageError } from '../../lib/cli/common';
import { parseServeArgs, SERVE_USAGE, serveCommand } from '../../lib/cli/serve';
import { ErrorCode } from '../../lib/errors';
import { SAN_MODEL_DEFAULTS } from '../../lib/segment/model';
import { decodeRle } from '../../lib/serve/server';
import { resolvedTestDevice, testDevice } from '../helpers/device';
import { tinyModelDir } from '../native/support';

const RUN = ['--model', tinyModelDir, '--port', '0', '--device', testDevice, '--threads', '1'];

/** A CliIo kept in strings, with a way to wait for what gets written. */
function recordingIo(): CliIo & { out: string; err: string; written: (pattern: RegExp) => Promise<string> } {
  const waiters: Array<() => void> = [];
  const io = {
    out: '',
    err: '',
    stdout: { write: (text: string) => { io.out += text; waiters.splice(0).forEach((wake) => wake()); } },
    stderr: { write: (text: string) => { io.err += text; waiters.splice(0).forEach((wake) => wake()); } },
    /** Resolves with the first match of `pattern` in stdout + stderr, once it is there. */
    async written(pattern: RegExp): Promise<string> {
      for (;;) {
        const match = pattern.exec(`${io.out}${io.err}`);
        if (match !== null) return match[0];
        await new Promise<void>((wake) => waiters.push(wake));
      }
    },
  };
  return io;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

describe('parseServeArgs', () => {
  test('defaults: loopback, port 8080 and the server and batching defaults', () => {
    const job = parseServeArgs(['--model', 'models/m']);
    expect(job).toEqual({
      modelDir: path.resolve('models/m'),
      load: { batching: { maxBatchSize: SAN_MODEL_DEFAULTS.batching.maxBatchSize,
        maxDelayMs: SAN_MODEL_DEFAULTS.batching.maxDelayMs, maxQueue: SAN_MODEL_DEFAULTS.batching.maxQueue },
      device: 'auto' },
      serve: { port: undefined, host: undefined, maxBodyBytes: undefined, maxImagePixels: undefined,
        maxOutputPixels: undefined, maxInFlight: undefined, maxBytesInFlight: undefined, maxConnections: undefined,
        headersTimeoutMs: undefined, bodyTimeoutMs: undefined, requestTimeoutMs: undefined,
        keepAliveTimeoutMs: undefined, drainTimeoutMs: undefined },
    });
  });

  test('every flag', () => {
    const job = parseServeArgs(['--model', 'm', '--port', '0', '--host', '::1', '--max-body-bytes', '1000',
      '--max-image-pixels', '5000', '--max-in-flight', '3', '--max-batch-size', '8', '--max-delay-ms', '0',
      '--max-queue', '9', '--device', 'cuda:1', '--dtype', 'float16', '--threads', '2', '--max-output-pixels', '4000',
      '--max-bytes-in-flight', '2000', '--max-connections', '50', '--headers-timeout-ms', '700',
      '--body-timeout-ms', '800', '--request-timeout-ms', '900', '--keep-alive-timeout-ms', '600',
      '--drain-timeout-ms', '0']);
    expect(job).toEqual({
      modelDir: path.resolve('m'),
      load: { batching: { maxBatchSize: 8, maxDelayMs: 0, maxQueue: 9 }, device: 'cuda:1', dtype: 'float16', threads: 2 },
      serve: { port: 0, host: '::1', maxBodyBytes: 1000, maxImagePixels: 5000, maxInFlight: 3, maxOutputPixels: 4000,
        maxBytesInFlight: 2000, maxConnections: 50, headersTimeoutMs: 700, bodyTimeoutMs: 800, requestTimeoutMs: 900,
        keepAliveTimeoutMs: 600, drainTimeoutMs: 0 },
    });
    expect(parseServeArgs(['-h'])).toBe('help');
  });

  test.each([
    [[], /^--model is required$/],
    [['--model', 'm', '--port', 'eighty'], /^--port must be a whole number \(got 'eighty'\)$/],
    [['--model', 'm', '--max-queue', '1.5'], /^--max-queue must be a whole number \(got '1.5'\)$/],
    [['--model', 'm', '--colour', 'red'], /^unknown option '--colour'$/],
    [['--model', 'm', 'extra'], /^unexpected argument 'extra'$/],
  ])('%j is a usage error', (args, message) => {
    expect(() => parseServeArgs(args as string[])).toThrow(UsageError);
    expect(() => parseServeArgs(args as string[])).toThrow(message);
  });

  test('a value out of range is refused before the model loads, in the API\'s words', () => {
    expect(() => parseServeArgs(['--model', 'm', '--port', '70000'])).toThrow(
      /^Expected an integer between 0 and 65535 for options.port but received 70000 of type number$/);
    expect(() => parseServeArgs(['--model', 'm', '--max-in-flight', '0'])).toThrow(
      expect.objectContaining({ name: 'RangeError', code: ErrorCode.INVALID_ARG }));
  });
});

describe('serveCommand', () => {
  test('--help prints the usage', async () => {
    const io = recordingIo();
    await expect(serveCommand(['--help'], io)).resolves.toBe(0);
    expect(io.out).toBe(SERVE_USAGE);
    expect(io.out).toMatch(/^Usage: san-seg serve --model DIR /);
  });

  test('stopped while a request is still arriving: it stops listening, answers that request, then returns 0', async () => {
    const io = recordingIo();
    let stop!: (reason: string) => void;
    const command = serveCommand(RUN, io, () => new Promise((resolve) => { stop = resolve; }));
    const url = await io.written(/^http:\/\/127\.0\.0\.1:\d+(?=\n)/);
    expect(io.err.startsWith('san-seg: serving ')).toBe(true);
    expect(io.err).toContain(`tiny (tiny on ${resolvedTestDevice}) at ${url}: POST /segment, GET /healthz, GET /metrics`);
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: '{"status":"ok"}' });

    // The request's headers and half its body: accepted, and held by the client, not by a clock.
    const png = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3a7' } }).png().toBuffer();
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${url}/segment?classes=sky;sea&format=rle`, {
        method: 'POST', agent: false, headers: { 'Content-Type': 'image/png', 'Content-Length': png.length },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write(png.subarray(0, 10));
      void io.written(/stopped accepting/).then(() => req.end(png.subarray(10)));
    });
    // In flight: the held request and this /metrics request itself.
    while (!/^san_http_requests_in_flight 2$/m.test((await get(`${url}/metrics`)).body)) { /* poll */ }

    stop('test stop');
    await io.written(/stopped accepting/);
    expect(io.err).toContain('san-seg: test stop: stopped accepting; answering the 1 request in flight\n');
    await expect(get(`${url}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const { status, body } = await answer;
    expect(status).toBe(200);
    const parsed = JSON.parse(body);
    expect(parsed).toMatchObject({ classes: ['sky', 'sea'], size: [24, 32], labels: { format: 'rle' } });
    expect(decodeRle(parsed.labels.data)).toHaveLength(24 * 32);
    await expect(command).resolves.toBe(0);
    expect(io.err).toMatch(/san-seg: stopped\n$/);
  });

  test('a stop with an upload that trickles in: at --drain-timeout-ms its connection is closed and logged', async () => {
    const io = recordingIo();
    let stop!: (reason: string) => void;
    const command = serveCommand([...RUN, '--drain-timeout-ms', '200'], io,
      () => new Promise((resolve) => { stop = resolve; }));
    const url = new URL(await io.written(/^http:\/\/127\.0\.0\.1:\d+(?=\n)/));
    const trickle = net.connect(Number(url.port), '127.0.0.1');
    trickle.on('error', () => undefined);
    const closed = new Promise((resolve) => trickle.once('close', resolve));
    trickle.write('POST /segment?classes=sky HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 999\r\n\r\n');
    const drip = setInterval(() => trickle.write('x'), 50);
    try {
      while (!/^san_http_requests_in_flight 2$/m.test((await get(`${url.origin}/metrics`)).body)) { /* poll */ }
      stop('test stop');
      await expect(command).resolves.toBe(0);
      await closed;
    } finally {
      clearInterval(drip);
    }
    expect(io.err).toContain('san-seg: the drain deadline (200 ms) passed: closed 1 connection with 1 request ' +
      'unanswered\nsan-seg: stopped\n');
  });

  test('EXPECTED FAILURE - a port in use: the system error, and no URL on stdout', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const io = recordingIo();
      await expect(serveCommand([...RUN.slice(0, 2), '--port', String(port), ...RUN.slice(4)], io))
        .rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'listen' });
      expect(io.out).toBe('');
    } finally {
      blocker.close();
    }
  });
});
