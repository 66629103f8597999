// SPDX-License-Identifier: Apache-2.0
/**
 * Timing helpers and the addon-side measurements of `npm run bench`: the network through `TorchModel.run`, the
 * whole `SanModel.segment()` path, text encoding cold and cached, and LibTorch's matmul rate. Timings are plain
 * numbers (milliseconds, medians over repeats after warm-up calls) for bench/report.js to print.
 */
'use strict';

const { performance } = require('node:perf_hooks');
const { SanModel, TorchModel, tensor } = require('../dist');
const { promptsFor } = require('../dist/segment/prompts');
const { textCacheScope } = require('../dist/segment/model');

/** Median of a non-empty list of numbers. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs `fn` `warmup` times untimed, then `repeats` times timed.
 * @returns `{ ms, n, samples }`: the median in milliseconds, the number of timed repeats and every sample.
 */
async function sample(fn, { warmup, repeats }) {
  for (let i = 0; i < warmup; i += 1) await fn();
  const samples = [];
  for (let i = 0; i < repeats; i += 1) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return { ms: median(samples), n: repeats, samples };
}

/** Deterministic uniform [0, 1) numbers (mulberry32), so that every run sees the same inputs. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `rows` unit vectors of `dim` float32 values, seeded: stand-in class embeddings for the network's inputs. */
function unitRows(rows, dim, seed) {
  const next = random(seed);
  const data = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r += 1) {
    const row = data.subarray(r * dim, (r + 1) * dim);
    let squares = 0;
    for (let i = 0; i < dim; i += 1) {
      row[i] = next() * 2 - 1;
      squares += row[i] * row[i];
    }
    for (let i = 0; i < dim; i += 1) row[i] /= Math.sqrt(squares);
  }
  return data;
}

/**
 * The arguments of san.pt's `segment` exactly as `SanModel` builds them for `batch` copies of `image` (each at the
 * canvas's full size), or of `forward` (NCHW).
 */
function networkArgs(method, batch, image, outputSize, embeddings) {
  const { data, height, width } = image;
  if (method === 'forward') {
    const nchw = new Uint8Array(batch * 3 * height * width);
    for (let p = 0; p < height * width; p += 1) {
      for (let c = 0; c < 3; c += 1) nchw[c * height * width + p] = data[p * 3 + c];
    }
    for (let i = 1; i < batch; i += 1) nchw.copyWithin(i * 3 * height * width, 0, 3 * height * width);
    return [tensor('uint8', [batch, 3, height, width], nchw)];
  }
  const canvas = new Uint8Array(batch * data.length);
  for (let i = 0; i < batch; i += 1) canvas.set(data, i * data.length);
  // Sizes as integer lists: the bench's models are exported by the current code (capability segment_size_lists).
  const repeat = (size) => Array.from({ length: batch }, () => [...size]);
  return [tensor('uint8', [batch, height, width, 3], canvas), repeat([height, width]), repeat(outputSize), embeddings,
    false, false];
}

/** `fn` wrapped to resolve with the milliseconds its call took. */
function timed(fn) {
  return async () => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };
}

/**
 * Times several calls side by side: each entry of `calls` (an async function resolving with the milliseconds of one
 * call, see {@link timed}) runs `warmup` times, then they take turns `repeats` times, so that a load that drifts on a
 * shared machine weighs on every entry alike.
 * @returns for each key, `{ ms, n, samples }`: the median, the number of timed calls and every sample.
 */
async function interleave(calls, { warmup, repeats }) {
  for (const call of Object.values(calls)) {
    for (let i = 0; i < warmup; i += 1) await call();
  }
  const samples = Object.fromEntries(Object.keys(calls).map((key) => [key, []]));
  for (let i = 0; i < repeats; i += 1) {
    for (const [key, call] of Object.entries(calls)) samples[key].push(await call());
  }
  return Object.fromEntries(Object.entries(samples).map(([key, list]) => [key, { ms: median(list), n: list.length,
    samples: list }]));
}

/** One call of san.pt's `method` through `TorchModel.run`, as `SanModel` makes it. */
function networkCall(torch, method, args) {
  return () => torch.run('san', method, args, { float32Outputs: true });
}

/**
 * A `SanModel` of `dir` whose batcher forms batches of exactly `batch`, sharing `textCache`; `round()` makes
 * `batch` concurrent `segment(png)` calls, and `check()` throws unless every batch had that size and no class name
 * missed the cache (so that the timings are of what they claim).
 */
async function batchedModel(dir, batch, textCache, loadOptions) {
  const batchSizes = [];
  const model = await SanModel.load(dir, {
    ...loadOptions,
    verify: false,
    textCache,
    batching: { maxBatchSize: batch, maxDelayMs: 1000 },
    onBatch: ({ size }) => batchSizes.push(size),
  });
  const misses = textCache.stats().misses;
  return {
    model,
    round: (png, classes) => Promise.all(Array.from({ length: batch }, () => model.segment(png, { classes }))),
    check() {
      if (textCache.stats().misses !== misses) {
        throw new Error('segment() encoded class names the bench had put in the text cache: bench/measure.js fills '
          + 'the cache under another key than lib/model.ts uses');
      }
      if (batchSizes.some((size) => size !== batch)) {
        throw new Error(`segment() ran batches of ${[...new Set(batchSizes)].join(', ')} where ${batch} was wanted`);
      }
    },
  };
}

/**
 * Text encoding of `classes` under `templates`: cold (every prompt through text_encoder.pt, as a cache miss does,
 * on `cold`, a model without a cache), the same prompts padded only to the longest of each chunk instead of to the
 * context length (what shorter padding would save; the causal mask makes the result equal), and a cached lookup
 * (on `cached`, after putting the cold result in its cache).
 */
async function timeTextEncoding({ cold, cached, torch, tokenizer, classes, plan }) {
  const { templates, context_length: contextLength } = cold.manifest.text;
  let embeddings;
  for (let i = 0; i < plan.warmup; i += 1) await cold.encodeText(['warm-up class']);
  const coldTiming = await sample(async () => { embeddings = await cold.encodeText(classes); },
    { warmup: 0, repeats: plan.repeats });
  await fillTextCache(cached.textCache, cached.manifest, cached, classes, embeddings.data);
  const misses = cached.textCache.stats().misses;
  const cachedTiming = await sample(() => cached.encodeText(classes), { warmup: 1, repeats: plan.cachedRepeats });
  if (cached.textCache.stats().misses !== misses) {
    throw new Error('the cached lookup missed: bench/measure.js fills the cache under another key than lib/model.ts');
  }
  // The same prompts in the same chunks of 256 (lib/model.ts's TEXT_BATCH), each chunk cut after its longest row.
  const prompts = classes.flatMap((name) => promptsFor(name, templates));
  const chunks = [];
  for (let start = 0; start < prompts.length; start += 256) {
    const rows = Math.min(256, prompts.length - start);
    const { ids } = tokenizer.tokenize(prompts.slice(start, start + rows), contextLength);
    let longest = 1;
    for (let r = 0; r < rows; r += 1) {
      for (let c = contextLength - 1; c >= longest; c -= 1) {
        if (ids[r * contextLength + c] !== 0n) {
          longest = c + 1;
          break;
        }
      }
    }
    const trimmed = new BigInt64Array(rows * longest);
    for (let r = 0; r < rows; r += 1) {
      trimmed.set(ids.subarray(r * contextLength, r * contextLength + longest), r * longest);
    }
    chunks.push({ tokens: tensor('int64', [rows, longest], trimmed), longest });
  }
  const trimmedTiming = await sample(async () => {
    for (const { tokens } of chunks) await torch.run('text_encoder', 'forward', [tokens], { float32Outputs: true });
  }, { warmup: 1, repeats: plan.repeats });
  return {
    classes: classes.length,
    prompts: prompts.length,
    contextLength,
    cold: coldTiming,
    trimmed: { ...trimmedTiming, longest: Math.max(...chunks.map((chunk) => chunk.longest)) },
    cached: cachedTiming,
  };
}

/**
 * Puts `rows` (row-major [classes.length, dim]) into `cache` under the scope a model of `manifest` on `runtime`
 * ({ device }) looks them up in, as if it had encoded them.
 */
async function fillTextCache(cache, manifest, runtime, classes, rows) {
  const scope = textCacheScope(manifest, runtime.device, manifest.text.templates);
  await cache.lookup(scope, classes, async (names) => {
    const out = new Float32Array(names.length * scope.dim);
    names.forEach((name, i) => {
      const at = classes.indexOf(name);
      out.set(rows.subarray(at * scope.dim, (at + 1) * scope.dim), i * scope.dim);
    });
    return out;
  });
}

/**
 * LibTorch's matmul rate on the model's device and dtype: the probe's `forward(like, n, reps)` minus
 * `forward(like, n, 0)` (which makes the same random inputs), in FLOP/s (2n³ per product). `like` is a one-element
 * float32 tensor, which the addon moves and casts to the model's device and dtype.
 */
async function timeMatmul(probeFile, loadOptions, { n, reps, repeats }) {
  const torch = await TorchModel.load({ probe: probeFile }, loadOptions);
  const like = tensor('float32', [1], new Float32Array(1));
  try {
    const full = await sample(() => torch.run('probe', 'forward', [like, n, reps]), { warmup: 1, repeats });
    const base = await sample(() => torch.run('probe', 'forward', [like, n, 0]), { warmup: 1, repeats });
    return { n, reps, ms: full.ms, baseMs: base.ms, repeats, flops: (2 * n ** 3 * reps) / ((full.ms - base.ms) / 1000) };
  } finally {
    await torch.dispose();
  }
}

module.exports = {
  median, sample, timed, interleave, random, unitRows, networkArgs, networkCall, batchedModel, timeTextEncoding,
  fillTextCache, timeMatmul,
};
