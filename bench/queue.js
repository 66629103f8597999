#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * `node bench/queue.js`: what the worker fleet costs and gives, side by side in one run. A benchmark, not a test.
 *
 * It starts its own redis-server on a free loopback port (a temporary folder, removed after), then measures on the
 * same images and options:
 * 1. Latency, one job at a time: `segment()` called directly in this process, against a job's round trip through the
 *    queue (`add` → a `san-seg worker` process → `result()`). The difference is the queue's cost per job.
 * 2. Throughput, all jobs at once: `segment()` with `--concurrency` calls in flight in this process, against
 *    `--jobs` jobs added at once and taken by 1, then 2 worker processes, each with `--concurrency` jobs in flight.
 * Every process runs the model with `--threads` LibTorch threads. The result is printed and written between the
 * `<!-- queue:begin -->` and `<!-- queue:end -->` markers of docs/benchmarks.md (`--out FILE`, or `--out -` to only
 * print it). Run `bash scripts/setup.sh` first: it uses dist/.
 *
 *   node bench/queue.js [--jobs 600] [--serial 50] [--size 120x160] [--concurrency 8] [--threads 1] [--model DIR]
 */
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const report = require('./report');

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
const CLASSES = ['sky', 'sea', 'sand', 'boat'];
const { SanModel, SegmentQueue } = require(path.join(ROOT, 'dist', 'index.js'));
const noiseImage = require(path.join(ROOT, 'dist', 'serve', 'noise-image.js'));

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '600' },
    serial: { type: 'string', default: '50' },
    size: { type: 'string', default: '120x160' },
    concurrency: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
    model: { type: 'string', default: path.join(ROOT, process.env.SAN_TEST_MODELS ?? 'build/test-models', 'tiny') },
    out: { type: 'string', default: DOCS },
  },
});
const JOBS = Number(args.jobs);
const SERIAL = Number(args.serial);
const CONCURRENCY = Number(args.concurrency);
const [HEIGHT, WIDTH] = args.size.split('x').map(Number);
const OPTIONS = { classes: CLASSES, resize: false };
const log = (line) => process.stderr.write(`bench/queue: ${line}\n`);

const noisePng = (seed) => noiseImage.noisePng(HEIGHT, WIDTH, seed);

/** Resolves once `child` has written `pattern` to stdout or stderr; rejects if it exits first. */
function written(child, pattern, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk) => {
      text += chunk.toString();
      if (pattern.test(text)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready:\n${text}`)));
  });
}

/** redis-server on a free loopback port, without persistence: nothing here outlives the run. */
async function startRedis() {
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'san-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await written(child, /Ready to accept connections/, 'redis-server');
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await stop(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startWorker(redisUrl, queue) {
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', redisUrl, '--queue', queue, '--model', args.model,
    '--device', 'cpu', '--threads', args.threads, '--concurrency', String(CONCURRENCY)],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  await written(child, /taking jobs from queue/, 'san-seg worker');
  return child;
}

/** SIGTERM, and resolves once the process has exited. */
function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Median ms of `count` calls of `call(i)`, one after another, after 5 warm-up calls. */
async function serialMs(count, call) {
  for (let i = 0; i < 5; i += 1) await call(i);
  const times = [];
  for (let i = 0; i < count; i += 1) {
    const start = performance.now();
    await call(i);
    times.push(performance.now() - start);
  }
  return median(times);
}

/** Items per second for `count` calls of `call(i)` with `inFlight` at a time. */
async function rate(count, inFlight, call) {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) await call(next++);
  }));
  return count / ((performance.now() - start) / 1000);
}

/** Jobs per second through `workers` worker processes: every job added at once, timed until the last result. */
async function queueRate(redisUrl, name, workers, images) {
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker(redisUrl, name)));
  const queue = new SegmentQueue(name, { connection: redisUrl });
  try {
    // Warm-up: every worker's first batches and text embeddings.
    const warm = await queue.addBulk(images.slice(0, 8 * workers).map((image) => ({ image, options: { ...OPTIONS, format: 'rle' } })));
    await Promise.all(warm.map((job) => job.result()));
    const start = performance.now();
    const jobs = await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ image: images[i % images.length],
      options: { ...OPTIONS, format: 'rle' } })));
    const results = await Promise.all(jobs.map((job) => job.result()));
    const seconds = (performance.now() - start) / 1000;
    return { jobsPerSecond: JOBS / seconds, workers: new Set(results.map((result) => result.worker)).size };
  } finally {
    await queue.close();
    await Promise.all(children.map(stop));
  }
}

async function main() {
  const started = new Date();
  const loadStart = os.loadavg()[0];
  const images = await Promise.all(Array.from({ length: 16 }, (_, i) => noisePng(i)));
  const redis = await startRedis();
  let model = await SanModel.load(args.model, { device: 'cpu', threads: Number(args.threads),
    batching: { maxQueue: Math.max(256, CONCURRENCY) } });
  try {
    log('latency, one at a time');
    const directMs = await serialMs(SERIAL, (i) => model.segment(images[i % images.length], OPTIONS));
    const worker = await startWorker(redis.url, 'serial');
    const queue = new SegmentQueue('serial', { connection: redis.url });
    let queuedMs;
    try {
      queuedMs = await serialMs(SERIAL, async (i) => (await queue.add(images[i % images.length],
        { ...OPTIONS, format: 'rle' })).result());
    } finally {
      await queue.close();
      await stop(worker);
    }
    log('throughput');
    await rate(16, CONCURRENCY, (i) => model.segment(images[i % images.length], OPTIONS));
    const direct = await rate(JOBS, CONCURRENCY, (i) => model.segment(images[i % images.length], OPTIONS));
    await model.dispose();
    model = undefined;
    const one = await queueRate(redis.url, 'one', 1, images);
    const two = await queueRate(redis.url, 'two', 2, images);
    const loadEnd = os.loadavg()[0];
    const machine = report.machine();
    const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
    const markdown = [
      `## The worker fleet: \`node bench/queue.js\``,
      '',
      `${started.toISOString().slice(0, 10)}, \`node bench/queue.js --jobs ${JOBS} --serial ${SERIAL} --size ${args.size} ` +
        `--concurrency ${CONCURRENCY} --threads ${args.threads}\`: model ${path.relative(ROOT, args.model)} on the CPU, ` +
        `${HEIGHT}×${WIDTH} noise PNGs, classes \`${CLASSES.join(';')}\`, labels as RLE; redis-server on loopback. ` +
        `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB.toFixed(0)} GiB, Node ${process.version}; ` +
        `1-minute load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end.`,
      '',
      '| one at a time | median ms a job |',
      '| --- | ---: |',
      `| \`segment()\` in this process | ${fmt(directMs)} |`,
      `| through the queue: \`add\` → 1 worker → \`result()\` | ${fmt(queuedMs)} |`,
      `| **the queue's cost per job** | **${fmt(queuedMs - directMs)}** |`,
      '',
      `| ${JOBS} at once, ${CONCURRENCY} in flight a process | jobs/s | against \`segment()\` |`,
      '| --- | ---: | ---: |',
      `| \`segment()\` in this process | ${fmt(direct)} | 1.00 |`,
      `| queue, 1 worker | ${fmt(one.jobsPerSecond)} | ${(one.jobsPerSecond / direct).toFixed(2)} |`,
      `| queue, 2 workers | ${fmt(two.jobsPerSecond)} | ${(two.jobsPerSecond / direct).toFixed(2)} |`,
      '',
      `Per job in throughput terms, the queue adds ${fmt(1000 / one.jobsPerSecond - 1000 / direct)} ms with one worker ` +
        `(1/rate through the queue minus 1/rate of \`segment()\`). The tiny model's own work is small, so these figures ` +
        'are mostly the queue: Redis round trips, the job in and the result out as JSON, BullMQ\'s locks and events. ' +
        `The workers, Redis and this process share the machine's ${machine.cores} cores.`,
    ].join('\n');
    process.stdout.write(`${markdown}\n`);
    if (args.out !== '-') {
      report.writeRegion(args.out, 'queue', markdown);
      log(`wrote the queue region of ${path.relative(process.cwd(), args.out)}`);
    }
  } finally {
    await model?.dispose();
    await redis.stop();
  }
}

main().catch((error) => {
  process.stderr.write(`bench/queue: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
