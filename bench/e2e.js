#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * End to end from encoded bytes: how many images/s `segment()` keeps up from JPEG and PNG, against the same calls on
 * images already decoded at model scale (the pipeline without the host's decoding), and the host's decoding alone.
 *
 *   node bench/e2e.js [--model DIR] [--device cuda --dtype bfloat16] [--concurrency 16] [--images 256]
 *                     [--batch 16] [--side 640] [--formats jpeg,png] [--classes 150]
 *                     [--threads N] [--out FILE.json]
 *
 * Every series runs `--images` calls, `--concurrency` at a time, in two passes alternated with the other series', after
 * one untimed pass of 2 × batch calls (the TorchScript profiling executor's warm-up). Series, per format:
 * - `decode`: the host alone, `readImage` to model scale as `segment()` does it (sharp on libuv's pool);
 * - `segment`: `segment(bytes, { classes })`, the whole pipeline;
 * and once: `decoded`: `segment(tensor)` on RGB images already at model scale (`resize: false`, labels at the
 * encoded images' size as from bytes), so sharp only copies them. `segment / decoded` is the share of the model's rate that the host lets through.
 * libuv's pool is sized as the CLI sizes it (lib/cli/host-threads.ts): set UV_THREADPOOL_SIZE to try another size.
 * Images are seeded synthetic photos-alike (gradients, edges, texture), `--side` square, encoded once; the model's
 * manifest decides the scale they are resized to (640 short side for the SAN presets: none at `--side 640`, JPEG
 * shrink-on-load from `--side 1280`).
 * Needs dist/ and the addon (`bash scripts/setup.sh`). Prints a table; `--out` also writes every figure as JSON.
 */
'use strict';

require('../dist/cli/host-threads'); // first: libuv reads UV_THREADPOOL_SIZE when its pool starts

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { performance } = require('node:perf_hooks');
const sharp = require('sharp');
const { SanModel } = require('../dist');
const { modelScaleSize, readImage } = require('../dist/segment/image');

const ROOT = path.resolve(__dirname, '..');
const DISTINCT_IMAGES = 8;
/** Timed passes of each series, alternated. */
const ROUNDS = 2;

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(ROOT, process.env.SAN_TEST_MODELS ?? 'build/test-models', 'tiny') },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string', default: 'float32' },
    threads: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    images: { type: 'string', default: '64' },
    batch: { type: 'string', default: '16' },
    side: { type: 'string', default: '640' },
    formats: { type: 'string', default: 'jpeg,png' },
    classes: { type: 'string', default: '150' },
    out: { type: 'string' },
  },
});

function count(name, min = 1) {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${flags[name]}`);
  return value;
}

const settings = {
  model: path.resolve(flags.model),
  device: flags.device,
  dtype: flags.dtype,
  threads: flags.threads === undefined ? undefined : count('threads'),
  concurrency: count('concurrency'),
  images: count('images'),
  batch: count('batch'),
  side: count('side', 16),
  formats: flags.formats.split(',').map((f) => f.trim()),
  classes: count('classes'),
};
for (const format of settings.formats) {
  if (!['jpeg', 'png'].includes(format)) throw new RangeError(`--formats takes jpeg and png, got ${format}`);
}

/** A seeded photo-alike RGB image: smooth gradients, hard edges and fine texture, so codecs do real work. */
function syntheticPhoto(side, seed) {
  const data = Buffer.alloc(side * side * 3);
  let state = (seed * 2654435761) >>> 0;
  for (let y = 0; y < side; y += 1) {
    for (let x = 0; x < side; x += 1) {
      state = (state * 1103515245 + 12345) >>> 0;
      const i = (y * side + x) * 3;
      const block = (((x + seed * 13) >> 5) + (y >> 5)) & 1 ? 50 : 0;
      data[i] = ((x * 200) / side + block) & 255;
      data[i + 1] = (y * 230) / side + (state >>> 29);
      data[i + 2] = 128 + 80 * Math.sin((x + seed) / 11) * Math.cos(y / 17);
    }
  }
  return data;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `call(i)` for i < n, `concurrency` at a time; the seconds it took and each call's latency in ms. */
async function pass(n, concurrency, call) {
  const latencies = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next;
      next += 1;
      const t0 = performance.now();
      await call(i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return { seconds: (performance.now() - started) / 1000, latencies };
}

/**
 * Times every series in `calls` (name -> call(i)) over `images` calls each, in ROUNDS alternating passes, so that
 * a drifting machine weighs on all of them alike, after one untimed pass each of `warmup` calls.
 * @returns per series: images/s over all its passes, and latency percentiles in ms.
 */
async function timeSeries(calls, { images, concurrency, warmup }) {
  for (const call of Object.values(calls)) await pass(warmup, concurrency, call);
  const totals = Object.fromEntries(Object.keys(calls).map((name) => [name, { seconds: 0, latencies: [] }]));
  for (let round = 0; round < ROUNDS; round += 1) {
    const n = Math.ceil(images / ROUNDS);
    for (const [name, call] of Object.entries(calls)) {
      const { seconds, latencies } = await pass(n, concurrency, call);
      totals[name].seconds += seconds;
      totals[name].latencies.push(...latencies);
    }
  }
  return Object.fromEntries(Object.entries(totals).map(([name, { seconds, latencies }]) => {
    latencies.sort((a, b) => a - b);
    return [name, { imagesPerS: latencies.length / seconds, seconds, n: latencies.length,
      p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }];
  }));
}

async function main() {
  const { side, concurrency, images, batch } = settings;
  const raw = Array.from({ length: DISTINCT_IMAGES }, (_, seed) => syntheticPhoto(side, seed + 1));
  const encoded = {};
  for (const format of settings.formats) {
    encoded[format] = await Promise.all(raw.map((pixels) =>
      sharp(pixels, { raw: { width: side, height: side, channels: 3 } })[format](format === 'jpeg' ? { quality: 90 } : {}).toBuffer()));
  }
  const model = await SanModel.load(settings.model, {
    device: settings.device,
    dtype: settings.dtype,
    ...(settings.threads === undefined ? {} : { threads: settings.threads }),
    verify: false,
    batching: { maxBatchSize: batch, maxQueue: Math.max(256, concurrency) },
  });
  const classes = Array.from({ length: settings.classes }, (_, i) => `class ${i}`);
  const { short_edge: shortSide, max_size: maxLongSide } = model.manifest.resize;
  const scale = (h, w) => modelScaleSize(h, w, { shortSide, maxLongSide });
  const decodeOptions = { resizeTo: scale, maxInputPixels: 1e9, name: 'input' };
  // What `segment` decodes to, as tensors: the `decoded` series' inputs.
  const decodedImages = await Promise.all(raw.map(async (pixels) => {
    const { image } = await readImage(sharp(pixels, { raw: { width: side, height: side, channels: 3 } }), decodeOptions);
    return { type: 'uint8', dims: [image.height, image.width, 3], data: image.data };
  }));
  try {
    await model.encodeText(classes);
    // The labels come back at the input's size either way, so both kinds of series post-process alike.
    const decodedOptions = { classes, resize: false, outputSize: [side, side] };
    const calls = { decoded: (i) => model.segment(decodedImages[i % DISTINCT_IMAGES], decodedOptions) };
    for (const format of settings.formats) {
      const bytes = encoded[format];
      calls[`decode ${format}`] = (i) => readImage(bytes[i % DISTINCT_IMAGES], decodeOptions);
      calls[`segment ${format}`] = (i) => model.segment(bytes[i % DISTINCT_IMAGES], { classes });
    }
    // Warm-up of 2 × batch calls: TorchScript's profiling executor optimises each batch shape over its first calls.
    const results = await timeSeries(calls, { images, concurrency, warmup: 2 * batch });
    for (const [name, r] of Object.entries(results)) {
      console.log(`${name.padEnd(16)} ${r.imagesPerS.toFixed(1).padStart(8)} images/s   p50 ${r.p50Ms.toFixed(1)} ms   p99 ${r.p99Ms.toFixed(1)} ms`);
    }
    const metrics = model.metrics();
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version,
        uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE, sharpConcurrency: sharp.concurrency() },
      settings: { ...settings, modelScale: scale(side, side), device: model.device },
      results,
      ratios: Object.fromEntries(settings.formats.map((f) => [`segment ${f} / decoded`, results[`segment ${f}`].imagesPerS / results.decoded.imagesPerS])),
      batches: metrics.batches,
      memory: metrics.memory,
    };
    for (const [name, ratio] of Object.entries(report.ratios)) console.log(`${name}: ${ratio.toFixed(2)}`);
    console.log(`batch sizes ${JSON.stringify(metrics.batches.sizeHistogram)}; ` +
      `UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE}, sharp concurrency ${sharp.concurrency()}; ` +
      `device memory ${JSON.stringify(metrics.memory.deviceMemory)}`);
    if (flags.out) fs.writeFileSync(flags.out, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await model.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
