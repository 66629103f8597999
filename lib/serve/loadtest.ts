// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run loadtest`: a bounded load test of `san-seg serve` on loopback. Not part of `npm test`.
 *
 * It starts `san-seg serve` (dist/cli/main.js) on a free port as a child process, so that the clients do not share its
 * event loop, with a connection cap of 256 and a body timeout of 2 s (HOSTILE_SERVE_FLAGS). Then:
 * 1. `--clients` good clients each POST their own generated PNG, one request after another on a keep-alive
 *    connection, until `--requests` have been answered (or `--seconds` have passed); every request still out at
 *    the end is awaited.
 * 2. Three hostile phases of `--phase-seconds` each, while the good clients go on: a client that asks again and
 *    again for a 16384×16384 label map of a 1×1 PNG; 64 uploads that send their headers and then nothing; 1,000
 *    connections that send nothing at all. The good clients' latency is recorded per phase.
 * 3. Shutdown under load: one more request per client is sent at once, and as soon as the server's counters show it
 *    has received them all, it is sent SIGTERM. It must answer each of them and exit 0.
 *
 * "dropped" counts good requests that got no answer at all (a reset or closed connection); it must be 0, as must
 * the good requests answered other than 200, and every 16384² request must be answered 413; the exit status is 1
 * otherwise, or when the server does not exit 0. The whole run is bounded: the server is killed and the run fails
 * when it takes more than `--seconds` + 3 × `--phase-seconds` + 120 s. The result, a markdown table, is printed and
 * written between the `<!-- loadtest:begin -->` and `<!-- loadtest:end -->` markers of docs/benchmarks.md (`--out
 * FILE`, or `--out -` to only print it).
 *
 * ```sh
 * npm run loadtest -- --clients 8 --requests 10000
 * npm run loadtest -- --model models/vit_b_16 --device cuda --size 480x640 --requests 2000 --out -
 * ```
 * @module
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { PACKAGE_ROOT } from '../package-root';
import { noisePng } from './noise-image';
import { decodeRle, LabelsBody } from './server';

const ROOT = PACKAGE_ROOT;
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const TINY = path.join(ROOT, process.env.SAN_TEST_MODELS ?? path.join('build', 'test-models'), 'tiny');
const REPORT = path.join(ROOT, 'docs', 'benchmarks.md');
const CLASSES = 'sky;sea;sand;boat';
/** Time allowed beyond the phases for start-up, the last answers and the drain. */
const GRACE_MS = 120_000;
/** The server's limits under which the hostile phases run: the cap is passed by the silent connections. */
const HOSTILE_SERVE_FLAGS = ['--max-connections', '256', '--body-timeout-ms', '2000'];
const STALLED_UPLOADS = 64;
const SILENT_SOCKETS = 1000;
const HUGE_OUTPUT = '16384x16384';
/** `npm run bench`'s writer of one marked region of docs/benchmarks.md, leaving the other tools' regions alone. */
const { writeRegion } = require(path.join(PACKAGE_ROOT, 'bench', 'report')) as {
  writeRegion: (file: string, name: string, markdown: string) => void;
};

const USAGE = `Usage: npm run loadtest -- [options]

Runs san-seg serve on loopback and N clients against it until they have sent --requests requests,
then three hostile phases while they go on (a ${HUGE_OUTPUT} output, ${STALLED_UPLOADS} stalled uploads, ${SILENT_SOCKETS}
silent sockets), then stops it with SIGTERM while one request per client is in flight. Prints
the good clients' p50/p99 latency per phase, errors, dropped requests (must be 0) and the server's
RSS, and writes them into docs/benchmarks.md.

  --model DIR        model folder (default: the tiny test model, ${path.relative(ROOT, TINY)})
  --clients N        concurrent clients, each one request at a time (default 8)
  --requests N       requests the clients send before the hostile phases (default 10000)
  --seconds S        at most this long for those requests (default 300)
  --phase-seconds S  how long each hostile phase lasts (default 5)
  --size HxW         size of the generated PNGs (default 120x160)
  --format F         label format asked for: png or rle (default png)
  --device NAME      cpu, cuda, cuda:N or auto (default: san-seg serve's)
  --threads N        LibTorch intra-op threads (default: san-seg serve's)
  --max-batch-size N images per batch (default: san-seg serve's)
  --out FILE         file whose loadtest markers get the result (default docs/benchmarks.md;
                     '-' to only print it)
  --note TEXT        a sentence added to the result, e.g. what else the machine was doing
`;

interface Options {
  model: string;
  clients: number;
  requests: number;
  seconds: number;
  phaseSeconds: number;
  size: [number, number];
  format: 'png' | 'rle';
  /** Passed on to `san-seg serve` as they are. */
  serveFlags: string[];
  out: string | undefined;
  note: string | undefined;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, clients: { type: 'string' }, requests: { type: 'string' },
      seconds: { type: 'string' }, 'phase-seconds': { type: 'string' }, size: { type: 'string' },
      format: { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' },
      'max-batch-size': { type: 'string' }, out: { type: 'string' }, note: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const positive = (flag: string, value: string | undefined, fallback: number): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} takes a positive integer, not '${value}'`);
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(values.size ?? '120x160');
  if (size === null) throw new Error(`--size takes HxW, e.g. 120x160, not '${values.size}'`);
  const format = values.format ?? 'png';
  if (format !== 'png' && format !== 'rle') throw new Error(`--format takes png or rle, not '${format}'`);
  const serveFlags: string[] = [];
  for (const flag of ['device', 'threads', 'max-batch-size'] as const) {
    if (values[flag] !== undefined) serveFlags.push(`--${flag}`, values[flag]);
  }
  return {
    model: path.resolve(values.model ?? TINY),
    clients: positive('clients', values.clients, 8),
    requests: positive('requests', values.requests, 10_000),
    seconds: positive('seconds', values.seconds, 300),
    phaseSeconds: positive('phase-seconds', values['phase-seconds'], 5),
    size: [positive('size', size[1], 1), positive('size', size[2], 1)],
    format,
    serveFlags,
    out: values.out === '-' ? undefined : path.resolve(values.out ?? REPORT),
    note: values.note,
  };
}

/** How one request ended: its status and milliseconds, or the connection error that left it unanswered. */
interface Outcome {
  ms: number;
  status: number | undefined;
  error: string | undefined;
}

/** One POST on `agent`; resolves with its status, or with the error that left it unanswered. Checks a 200's body. */
function post(agent: http.Agent, url: string, image: Buffer, pixels: number): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (status: number | undefined, error: string | undefined): void =>
      resolve({ ms: performance.now() - started, status, error });
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'image/png' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return done(res.statusCode, undefined);
        done(200, answerProblem(Buffer.concat(chunks).toString('utf8'), pixels));
      });
      res.on('error', (error: NodeJS.ErrnoException) => done(undefined, error.code ?? error.message));
    });
    req.on('error', (error: NodeJS.ErrnoException) => done(undefined, error.code ?? error.message));
    req.end(image);
  });
}

/** What is wrong with a 200 answer, if anything: it must carry a label map of the image's size. */
function answerProblem(text: string, pixels: number): string | undefined {
  let body: { size: [number, number]; labels: LabelsBody };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (error) {
    return `an answer that is not JSON (${(error as Error).message})`;
  }
  const { size, labels } = body;
  if (size[0] * size[1] !== pixels) return `a label map of ${size.join('×')}`;
  if (labels.format === 'rle' && decodeRle(labels.data).length !== pixels) return 'RLE labels of the wrong length';
  if (labels.format === 'png' && labels.data.length === 0) return 'an empty label PNG';
  return undefined;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; }).on('end', () => resolve(text));
    }).on('error', reject);
  });
}

/** A sample's value in Prometheus text, e.g. `san_batch_size_sum`. */
function sample(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? NaN : Number(match[1]);
}

interface Server {
  child: ChildProcess;
  url: string;
  /** What the server wrote to stderr. */
  log: () => string;
  exited: Promise<number | null>;
}

/** Starts `san-seg serve` and resolves with its URL, the first line it writes to stdout. */
function startServe(options: Options): Promise<Server> {
  const args = [CLI, 'serve', '--model', options.model, '--port', '0', ...HOSTILE_SERVE_FLAGS, ...options.serveFlags];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { log += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve({ child, url: out.split('\n')[0], log: () => log, exited });
    });
    void exited.then((code) => reject(new Error(`san-seg serve exited with status ${code} before listening:\n${log}`)));
  });
}

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/**
 * Shutdown under load: one request per client at once, SIGTERM as soon as the server has received them all (its
 * `san_http_requests_total` has counted them, besides the /metrics requests that watch it), then every answer.
 */
async function shutdownUnderLoad(server: Server, target: string, images: Buffer[],
  pixels: number): Promise<{ outcomes: Outcome[]; exitCode: number | null; drainMs: number }> {
  const metricsUrl = `${server.url}/metrics`;
  const before = sample(await get(metricsUrl), 'san_http_requests_total');
  const outcomes = Promise.all(images.map((image) => post(new http.Agent(), target, image, pixels)));
  for (let polls = 1; sample(await get(metricsUrl), 'san_http_requests_total') < before + images.length + polls;) {
    polls += 1;
  }
  const signalled = performance.now();
  server.child.kill('SIGTERM');
  const [answered, exitCode] = await Promise.all([outcomes, server.exited]);
  return { outcomes: answered, exitCode, drainMs: performance.now() - signalled };
}

/** What the good clients got while one phase ran. */
interface Phase {
  name: string;
  good: Outcome[];
  elapsedS: number;
  /** What the hostile clients did and got; empty for the baseline. */
  hostile: string;
  rssEnd: number;
}

interface Measured {
  options: Options;
  device: string;
  phases: Phase[];
  /** Each answer to the 16384² output requests, by status. */
  hugeOutput: Map<string, number>;
  drain: { outcomes: Outcome[]; exitCode: number | null; drainMs: number };
  rssStart: number;
  meanBatch: number;
  /** The machine's 1-minute load average when the clients started and when they stopped. */
  load: [number, number];
}

/**
 * The good clients: each posts its own image, one request after another on a keep-alive connection, until `done`
 * says so (asked after each answer, with the answers so far).
 */
async function goodClients(images: Buffer[], target: string, pixels: number,
  done: (answered: number) => boolean): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(images.map(async (image) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (!done(outcomes.length)) outcomes.push(await post(agent, target, image, pixels));
    agent.destroy();
  }));
  return outcomes;
}

/** Runs the good clients for `seconds` while `attack` does its worst until the same deadline. */
async function phase(name: string, server: Server, images: Buffer[], target: string, pixels: number, seconds: number,
  attack: (deadline: number) => Promise<string>): Promise<Phase> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const [good, hostile] = await Promise.all([
    goodClients(images, target, pixels, () => performance.now() >= deadline), attack(deadline)]);
  const elapsedS = (performance.now() - started) / 1000;
  const rssEnd = sample(await get(`${server.url}/metrics`), 'san_process_resident_memory_bytes');
  return { name, good, elapsedS, hostile, rssEnd };
}

function sleepUntil(deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - performance.now())));
}

/** Raw connections to the server, each sending `first` (if anything), with what came back and whether it closed. */
async function rawConnections(url: string, count: number, first: string): Promise<Array<{ socket: net.Socket;
  answer: () => string; closed: () => boolean }>> {
  const { hostname, port } = new URL(url);
  const sockets = [];
  for (let i = 0; i < count; i += 1) {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    let closed = false;
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.on('close', () => { closed = true; });
    await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
    if (first !== '') socket.write(first);
    sockets.push({ socket, answer: () => answer, closed: () => closed });
  }
  return sockets;
}

/** One client that asks, again and again until the deadline, for a 16384×16384 label map of a 1×1 PNG. */
async function hugeOutputAttack(server: Server, deadline: number, statuses: Map<string, number>): Promise<string> {
  const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const target = `${server.url}/segment?classes=${encodeURIComponent(CLASSES)}&outputSize=${HUGE_OUTPUT}`;
  let sent = 0;
  while (performance.now() < deadline) {
    const { status, error } = await post(agent, target, tiny, 1);
    const key = status === undefined ? error ?? 'no answer' : String(status);
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    sent += 1;
  }
  agent.destroy();
  return `a ${tiny.length}-byte 1×1 PNG with outputSize=${HUGE_OUTPUT}, sent ${sent} times one after another: ` +
    `${[...statuses].map(([key, count]) => `${key} × ${count}`).join(', ')}`;
}

/** Uploads that send their headers (a 1 MB Content-Length) and then nothing, held until the deadline. */
async function stalledUploadsAttack(server: Server, deadline: number): Promise<string> {
  const head = `POST /segment?classes=sky HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n` +
    'Content-Length: 1000000\r\n\r\n';
  const uploads = await rawConnections(server.url, STALLED_UPLOADS, head);
  await sleepUntil(deadline);
  const timedOut = uploads.filter((upload) => upload.answer().startsWith('HTTP/1.1 408 ') &&
    upload.answer().includes('ERR_SAN_BODY_TIMEOUT') && upload.closed()).length;
  const open = uploads.filter((upload) => !upload.closed()).length;
  for (const upload of uploads) upload.socket.destroy();
  return `${STALLED_UPLOADS} uploads sent their headers and no body: ${timedOut} answered 408 ERR_SAN_BODY_TIMEOUT ` +
    `and closed by the server, ${open} still open at the end of the phase`;
}

/** Connections that send nothing at all, held until the deadline. */
async function silentSocketsAttack(server: Server, deadline: number): Promise<string> {
  const silent = await rawConnections(server.url, SILENT_SOCKETS, '');
  await sleepUntil(deadline);
  const closed = silent.filter((socket) => socket.closed()).length;
  for (const socket of silent) socket.socket.destroy();
  return `${SILENT_SOCKETS} connections that send nothing: ${closed} closed by the server (the connection cap, then ` +
    `the headers timeout), ${SILENT_SOCKETS - closed} still open at the end of the phase`;
}

async function measure(options: Options, server: Server): Promise<Measured> {
  const pixels = options.size[0] * options.size[1];
  const images = await Promise.all(Array.from({ length: options.clients }, (_, i) => noisePng(...options.size, i)));
  const target = `${server.url}/segment?classes=${encodeURIComponent(CLASSES)}&format=${options.format}`;
  // One request first, so that the text encoding and the first run's set-up are not in the figures.
  const warm = await post(new http.Agent(), target, images[0], pixels);
  if (warm.status !== 200 || warm.error !== undefined) {
    throw new Error(`the warm-up request failed: ${warm.status ?? ''} ${warm.error ?? ''}\n${server.log()}`);
  }
  const rssStart = sample(await get(`${server.url}/metrics`), 'san_process_resident_memory_bytes');

  const loadStart = os.loadavg()[0];
  const started = performance.now();
  const timeLimit = started + options.seconds * 1000;
  const baseline = await goodClients(images, target, pixels,
    (answered) => answered >= options.requests || performance.now() >= timeLimit);
  const baselineS = (performance.now() - started) / 1000;
  const metrics = await get(`${server.url}/metrics`);
  const phases: Phase[] = [{ name: 'good clients alone', good: baseline, elapsedS: baselineS, hostile: '',
    rssEnd: sample(metrics, 'san_process_resident_memory_bytes') }];
  const meanBatch = sample(metrics, 'san_batch_size_sum') / sample(metrics, 'san_batch_size_count');
  const hugeOutput = new Map<string, number>();
  const hostile: Array<[string, (deadline: number) => Promise<string>]> = [
    [`a ${HUGE_OUTPUT} output asked for`, (deadline) => hugeOutputAttack(server, deadline, hugeOutput)],
    [`${STALLED_UPLOADS} stalled uploads`, (deadline) => stalledUploadsAttack(server, deadline)],
    [`${SILENT_SOCKETS.toLocaleString('en')} silent sockets`, (deadline) => silentSocketsAttack(server, deadline)],
  ];
  for (const [name, attack] of hostile) {
    phases.push(await phase(name, server, images, target, pixels, options.phaseSeconds, attack));
  }
  const load: [number, number] = [loadStart, os.loadavg()[0]];
  const drain = await shutdownUnderLoad(server, target, images, pixels);
  const device = /\(\S+ on (\S+)\)/.exec(server.log())?.[1] ?? 'unknown';
  return { options, device, phases, hugeOutput, drain, rssStart, meanBatch, load };
}

/** The markdown of a run, and whether it passed. */
function report(run: Measured): { markdown: string; passed: boolean } {
  const { options, phases, drain } = run;
  const good = [...phases.flatMap((p) => p.good), ...drain.outcomes];
  const dropped = good.filter((o) => o.status === undefined).length;
  const errors = good.filter((o) => o.status !== undefined && (o.status !== 200 || o.error !== undefined)).length;
  const byOutcome = new Map<string, number>();
  for (const o of good) {
    const key = o.status === undefined ? o.error ?? 'no answer' : `${o.status}${o.error ? ` with ${o.error}` : ''}`;
    byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
  }
  const hugeRefused = run.hugeOutput.size === 1 && run.hugeOutput.has('413');
  const drainedOk = drain.outcomes.filter((o) => o.status === 200 && o.error === undefined).length;
  const passed = dropped === 0 && errors === 0 && hugeRefused && drain.exitCode === 0;
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  const ms = (value: number): string => value.toFixed(1);
  const cpus = os.cpus();
  const command = ['npm run loadtest --', '--clients', options.clients, '--requests', options.requests,
    '--phase-seconds', options.phaseSeconds, '--size', options.size.join('x'), '--format', options.format,
    ...options.serveFlags, ...(options.model === TINY ? [] : ['--model', path.relative(ROOT, options.model)])].join(' ');
  const row = (p: Phase): string => {
    const ok = p.good.filter((o) => o.status === 200 && o.error === undefined);
    const latencies = ok.map((o) => o.ms).sort((a, b) => a - b);
    const failed = p.good.filter((o) => o.status !== undefined && (o.status !== 200 || o.error !== undefined));
    return `| ${p.name} | ${p.elapsedS.toFixed(1)} | ${p.good.length} | ${(ok.length / p.elapsedS).toFixed(1)} | ` +
      `${ms(percentile(latencies, 0.5))} | ${ms(percentile(latencies, 0.99))} | ${ms(latencies.at(-1) ?? NaN)} | ` +
      `${failed.length} | ${p.good.filter((o) => o.status === undefined).length} | ${mib(p.rssEnd)} |`;
  };
  const markdown = [
    `Load test of \`san-seg serve\`, ${new Date().toISOString().slice(0, 10)}: \`${command}\`.`,
    `${options.clients} good clients on loopback, each one request at a time on a keep-alive connection; a ` +
      `${options.size.join('×')} noise PNG per request, classes \`${CLASSES}\`, labels as ${options.format}; model ` +
      `${path.relative(ROOT, options.model) || options.model} on ${run.device}; the server run with ` +
      `\`${HOSTILE_SERVE_FLAGS.join(' ')}\`. First ${options.requests} requests from the good clients alone, then ` +
      `three hostile phases of ${options.phaseSeconds} s each while the good clients go on. ` +
      `Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'} × ${cpus.length}, ` +
      `${mib(os.totalmem())} MiB, Node ${process.version}, ${os.platform()} ${os.release()}; 1-minute load ` +
      `average ${run.load.map((value) => value.toFixed(1)).join(' at the start, ')} at the end.` +
      `${options.note === undefined ? '' : ` ${options.note}`}`,
    '',
    '| phase | s | good requests | answered/s | p50 ms | p99 ms | max ms | errors | dropped | RSS end MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...phases.map(row),
    '',
    `RSS after the warm-up request: ${mib(run.rssStart)} MiB. Mean batch of the good clients alone: ` +
      `${run.meanBatch.toFixed(2)}. What the hostile clients got:`,
    '',
    ...phases.filter((p) => p.hostile !== '').map((p) => `- ${p.name}: ${p.hostile}.`),
    '',
    `Shutdown under load: SIGTERM once the server had received one more request per client ` +
      `(${drain.outcomes.length}); ${drainedOk} of them answered 200, server exit status ${drain.exitCode}, ` +
      `${drain.drainMs.toFixed(0)} ms from SIGTERM to exit. ` +
      `Every good answer: ${[...byOutcome].map(([key, count]) => `${key} × ${count}`).join(', ')}. ` +
      `${passed ? 'Passed' : 'FAILED'}: no good request dropped, none failed, every ${HUGE_OUTPUT} request ` +
      'refused with 413, clean exit.',
  ].join('\n');
  return { markdown, passed };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build:ts (or bash scripts/setup.sh)`);
  const server = await startServe(options);
  // Stopped by hand: the server goes too, rather than being left listening.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      server.child.kill('SIGKILL');
      process.exit(128 + os.constants.signals[signal]);
    });
  }
  const limitS = options.seconds + 3 * options.phaseSeconds + GRACE_MS / 1000;
  const watchdog = setTimeout(() => {
    console.error(`loadtest: no end after ${limitS} s; killing the server`);
    server.child.kill('SIGKILL');
    process.exit(1);
  }, limitS * 1000);
  try {
    const { markdown, passed } = report(await measure(options, server));
    console.log(markdown);
    if (options.out !== undefined) {
      writeRegion(options.out, 'loadtest', markdown);
      console.log(`\nWritten into ${path.relative(process.cwd(), options.out)}.`);
    }
    if (!passed) console.error(`\nThe server's log:\n${server.log()}`);
    return passed ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
}

main().then((code) => {
  process.exitCode = code;
}, (error: Error) => {
  console.error(`loadtest: ${error.message}`);
  process.exitCode = 1;
});
