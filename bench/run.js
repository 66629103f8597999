#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench`: measures san-node on this machine and writes the bench region of docs/benchmarks.md.
 *
 *   npm run bench -- [--device cuda --dtype float16] [--threads N] [--models tiny,vit_b_16] [--batches 1,2,4]
 *                    [--warmup N] [--repeats N] [--quick] [--out FILE]          (`--help` says more)
 *
 * For the `tiny` test model and a random-weight SAN ViT-B/16 at 640×640 it measures, in one run: images/s and
 * latency by batch size (addon, `segment()` end to end, Python on the same export), the overhead of `segment()` over
 * the network alone, text encoding cold and cached, and the network's FLOP/s against the machine's matmul rate.
 * Needs the addon, dist/ and the tiny model (`bash scripts/setup.sh`); it writes build/bench-models/ on first use.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const sharp = require('sharp');
const { SanModel, TorchModel, TextEmbeddingCache, ClipTokenizer, tensor, modelScaleSize } = require('../dist');
const { readImage } = require('../dist/segment/image');
const { binding } = require('../dist/runtime/native');
const { parseArgs, usage } = require('./options');
const measure = require('./measure');
const { PythonBaseline } = require('./python');

// The addon first: it sets OPENBLAS_NUM_THREADS and OMP_WAIT_POLICY for itself unless they are set
// (lib/runtime/native.ts), and the Python baseline, started later, inherits the same values.
binding();
const report = require('./report');
const cpuCompare = require('./cpu_compare');

const ROOT = path.resolve(__dirname, '..');
const PYTHON = process.env.SAN_PYTHON ?? '/usr/bin/python3';
const TINY_DIR = path.resolve(ROOT, process.env.SAN_TEST_MODELS ?? 'test-models', 'tiny');
const BENCH_MODELS = path.join(ROOT, 'build', 'bench-models');
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
const ADE150 = path.resolve(ROOT, '..', 'shared', 'reference', 'classes', 'ade150.txt');
const IMAGE_SIDE = 640;
const LABELS = { tiny: 'tiny', vit_b_16: 'ViT-B/16' };

/**
 * What each model runs by default: batch sizes, warm-up calls, timed repeats by batch size, the batch sizes that
 * also run end to end and in Python ('all' or a list), and the classes and repeats of cold text encoding. The
 * ViT-B/16 on a CPU takes seconds an image, so it runs fewer and smaller series there.
 */
function defaultPlan(name, device, quick) {
  const cpu = device === 'cpu';
  // TorchScript's profiling executor profiles and optimises a method over its first calls: 2 warm-up calls at
  // least, more where they are cheap.
  if (name === 'tiny') {
    // Post-processing 150 classes to 640×640 dominates tiny's `segment` (about 0.3 s an image on two cores).
    return { batches: cpu ? [1, 2, 4] : [1, 2, 4, 8, 16], warmup: quick ? 2 : 3, repeats: () => (quick ? 3 : cpu ? 10 : 20),
      e2eBatches: 'all', pythonBatches: 'all', textClasses: 150, textRepeats: quick ? 2 : 5 };
  }
  if (!cpu) {
    return { batches: quick ? [1, 2, 4] : [1, 2, 4, 8, 16], warmup: quick ? 2 : 5, repeats: () => (quick ? 5 : 20),
      e2eBatches: 'all', pythonBatches: 'all', textClasses: 150, textRepeats: quick ? 2 : 5 };
  }
  // The ViT-B/16 on a CPU: seconds an image.
  if (quick) {
    return { batches: [1, 2], warmup: 1, repeats: () => 1, e2eBatches: [1], pythonBatches: [1], textClasses: 5,
      textRepeats: 1 };
  }
  return { batches: [1, 2, 4], warmup: 2, repeats: (batch) => (batch === 1 ? 3 : batch === 2 ? 2 : 1),
    e2eBatches: [1], pythonBatches: [1, 2], textClasses: 10, textRepeats: 2 };
}

/** The default plan with the command line's overrides; batch 1 always runs (the overhead and text rows use it). */
function planFor(name, args) {
  const plan = defaultPlan(name, args.device, args.quick);
  const batches = args.batches ? [...new Set([1, ...args.batches])].sort((a, b) => a - b) : plan.batches;
  const within = (list) => (list === 'all' ? batches : list.filter((b) => batches.includes(b)));
  return {
    batches,
    warmup: args.warmup ?? plan.warmup,
    repeats: args.repeats === undefined ? plan.repeats : () => args.repeats,
    e2eBatches: within(plan.e2eBatches),
    pythonBatches: within(plan.pythonBatches),
    textClasses: args.textClasses ?? plan.textClasses,
    textRepeats: args.repeats ?? plan.textRepeats,
  };
}

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

async function waitIdle(seconds) {
  const until = Date.now() + seconds * 1000;
  while (os.loadavg()[0] >= 1 && Date.now() < until) {
    log(`load average ${os.loadavg()[0].toFixed(2)}: waiting for it to fall below 1`);
    await new Promise((resolve) => setTimeout(resolve, 15000));
  }
}

/** Samples the 1-minute load average every 10 s, for the report's honesty about other work on the machine. */
function watchLoad() {
  const samples = [os.loadavg()[0]];
  const timer = setInterval(() => samples.push(os.loadavg()[0]), 10000);
  timer.unref();
  return () => {
    clearInterval(timer);
    samples.push(os.loadavg()[0]);
    return { start: samples[0], end: samples.at(-1), mean: samples.reduce((a, b) => a + b, 0) / samples.length,
      max: Math.max(...samples) };
  };
}

/** Fails early, before minutes of addon timings, when the Python baseline cannot use the device. */
function checkPythonDevice(device) {
  if (device === 'cpu') return;
  const probe = spawnSync(PYTHON, ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'],
    { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (probe.status !== 0) {
    throw new Error(`${PYTHON} cannot use CUDA (torch.cuda.is_available() is false or torch is missing), so the `
      + 'Python baseline cannot run on it: set SAN_PYTHON to a Python whose PyTorch has CUDA');
  }
}

/** The B/16 folder and the matmul probe, written by bench/make_random_model.py unless already up to date. */
function ensureModels() {
  if (!fs.existsSync(path.join(TINY_DIR, 'manifest.json'))) {
    throw new Error(`${TINY_DIR} is missing: run \`bash scripts/setup.sh\` first`);
  }
  const made = spawnSync(PYTHON, [path.join(__dirname, 'make_random_model.py'), '--out', BENCH_MODELS],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (made.status !== 0) throw new Error(`bench/make_random_model.py failed (exit ${made.status})`);
  return JSON.parse(made.stdout.trim().split('\n').pop());
}

/** The input: the sample scene at 640×640 with seeded noise, as a PNG file in `dir`; returns its path. */
async function makePng(dir) {
  const { data, info } = await sharp(path.join(ROOT, 'assets', 'sample-scene.svg'))
    .resize(IMAGE_SIDE, IMAGE_SIDE, { fit: 'cover' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const next = measure.random(1);
  for (let i = 0; i < data.length; i += 1) data[i] = Math.max(0, Math.min(255, data[i] + Math.round(next() * 16 - 8)));
  const file = path.join(dir, `scene-${IMAGE_SIDE}.png`);
  await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toFile(file);
  return file;
}

function readClasses() {
  if (fs.existsSync(ADE150)) {
    return { names: fs.readFileSync(ADE150, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean), source: 'ADE-150' };
  }
  return { names: Array.from({ length: 150 }, (_, i) => `class number ${i}`), source: `150 made-up names (${ADE150} absent)` };
}

/** Hands the decoded image and the class embeddings to Python as raw files, and loads the model there. */
async function loadPython(python, { name, dir, image, originalSize, embeddings, tmp }) {
  const imageFile = path.join(tmp, `${name}-image.bin`);
  const embedsFile = path.join(tmp, `${name}-embeds.bin`);
  fs.writeFileSync(imageFile, image.data);
  fs.writeFileSync(embedsFile, Buffer.from(embeddings.data.buffer, embeddings.data.byteOffset, embeddings.data.byteLength));
  await python.request('load', {
    model_dir: dir, output_size: originalSize,
    image: { path: imageFile, dims: [image.height, image.width, 3] },
    embeds: { path: embedsFile, dims: embeddings.dims },
  });
}

/**
 * Everything measured for one model folder. Each batch size's series interleave the addon's network call,
 * `segment()` end to end and the same call in Python; `elapsed()` and `args.budgetS` bound the batch sizes.
 */
async function benchModel({ name, dir, plan, png, classes, args, python, tmp, elapsed }) {
  const loadOptions = { device: args.device, dtype: args.dtype, threads: args.threads };
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const dim = manifest.dims.embed_dim;
  const policy = { shortSide: manifest.resize.short_edge, maxLongSide: manifest.resize.max_size };
  const readOptions = { resizeTo: (h, w) => modelScaleSize(h, w, policy), maxInputPixels: 2 ** 28, name: 'input' };
  const { image, originalSize } = await readImage(png, readOptions);
  const embeddings = tensor('float32', [classes.length, dim], measure.unitRows(classes.length, dim, 7));
  const result = { name, label: `${LABELS[name]} (${image.height}×${image.width})`, throughput: [], pythonRows: [],
    plan: { ...plan, repeats: Object.fromEntries(plan.batches.map((b) => [b, plan.repeats(b)])) } };
  log(`${result.label}: loading (addon and Python)`);
  await loadPython(python, { name, dir, image, originalSize, embeddings, tmp });
  const torch = await TorchModel.load({ san: path.join(dir, 'san.pt'), text_encoder: path.join(dir, 'text_encoder.pt') },
    loadOptions);
  // segment() finds the class embeddings cached: the end-to-end rows time the image path, the text rows the encoder.
  const textCache = new TextEmbeddingCache({ maxBytes: 2 ** 26 });
  await measure.fillTextCache(textCache, manifest, loadOptions, classes, embeddings.data);

  /** One batch size's interleaved series; keeps the end-to-end model when `keep` (batch 1's, for the text rows). */
  const series = async (batch, keep) => {
    const args2 = (method) => measure.networkArgs(method, batch, image, originalSize, embeddings);
    const calls = { addon: measure.timed(measure.networkCall(torch, 'segment', args2('segment'))) };
    const e2e = plan.e2eBatches.includes(batch) ? await measure.batchedModel(dir, batch, textCache, loadOptions) : undefined;
    try {
      if (e2e) calls.e2e = measure.timed(() => e2e.round(png, classes));
      // The network alone in the same series, so that segment() / forward compares calls made side by side.
      if (e2e && batch === 1) calls.forward = measure.timed(measure.networkCall(torch, 'forward', args2('forward')));
      if (plan.pythonBatches.includes(batch)) calls.python = () => python.timeCall('segment', batch);
      const timing = await measure.interleave(calls, { warmup: plan.warmup, repeats: plan.repeats(batch) });
      e2e?.check();
      log(`${result.label}: batch ${batch}: ${Object.entries(timing).map(([k, t]) => `${k} ${t.ms.toFixed(1)} ms`)
        .join(', ')} (n=${plan.repeats(batch)})`);
      result.throughput.push({ batch, ...timing });
      if (timing.python) result.pythonRows.push({ method: 'segment', batch, addon: timing.addon, python: timing.python });
      if (keep) return e2e.model;
      await e2e?.model.dispose();
      return undefined;
    } catch (error) {
      await e2e?.model.dispose();
      throw error;
    }
  };

  let e2eModel;
  try {
    // Batch 1 first, then the network alone (`forward`) and the image decoding on their own.
    e2eModel = await series(1, true);
    const forward = await measure.interleave({
      addon: measure.timed(measure.networkCall(torch, 'forward', measure.networkArgs('forward', 1, image, originalSize, embeddings))),
      python: () => python.timeCall('forward', 1),
    }, { warmup: plan.warmup, repeats: plan.repeats(1) });
    log(`${result.label}: forward batch 1: addon ${forward.addon.ms.toFixed(1)} ms, python ${forward.python.ms.toFixed(1)} ms`);
    result.pythonRows.push({ method: 'forward', batch: 1, ...forward });
    const decode = await measure.sample(() => readImage(png, readOptions),
      { warmup: 2, repeats: Math.max(5, plan.repeats(1)) });

    // Text encoding: a second model without a cache for the cold path, batch 1's model and its cache for hits.
    const cold = await SanModel.load(dir, { ...loadOptions, verify: false, textCache: false });
    try {
      const textClasses = classes.slice(0, plan.textClasses);
      log(`${result.label}: text encoding of ${textClasses.length} classes`);
      result.text = await measure.timeTextEncoding({
        cold, cached: e2eModel, torch, tokenizer: ClipTokenizer.fromFile(path.join(dir, 'bpe_vocab.txt.gz')),
        classes: textClasses, plan: { warmup: 2, repeats: plan.textRepeats, cachedRepeats: 20 },
      });
    } finally {
      await cold.dispose();
    }
    const batch1 = result.throughput[0];
    result.overhead = { e2e: batch1.e2e, raw: batch1.addon, forward: batch1.forward ?? forward.addon, decode,
      ratio: batch1.e2e.ms / batch1.addon.ms };
    await e2eModel.dispose();
    e2eModel = undefined;

    // Larger batches, while the predicted time fits the budget.
    const perImageMs = batch1.addon.ms;
    for (const batch of plan.batches.filter((b) => b > 1)) {
      const sides = 1 + Number(plan.e2eBatches.includes(batch)) + Number(plan.pythonBatches.includes(batch));
      const predictedMs = perImageMs * batch * (plan.warmup + plan.repeats(batch)) * sides;
      if (elapsed() + predictedMs > args.budgetS * 1000) {
        result.throughput.push({ batch, skipped: `about ${(predictedMs / 1000).toFixed(0)} s would pass --budget-s ${args.budgetS}` });
        log(`${result.label}: batch ${batch} skipped (time budget)`);
        continue;
      }
      await series(batch, false);
    }
  } finally {
    await e2eModel?.dispose();
    await torch.dispose();
  }

  log(`${result.label}: FLOP count (Python)`);
  const flops = await python.request('flops', { methods: ['forward', 'segment'], context_length: manifest.text.context_length });
  result.flops = { forward: flops.forward, segment: flops.segment };
  result.textFlops = flops.text_prompt;
  return result;
}

/** The matmul probe's rate through the addon and through Python, on the bench's device and dtype. */
async function benchMatmul(probe, args, python) {
  // A few seconds of products on either device: 2048² on a CPU, 8192² (1.1 TFLOP each) on a GPU.
  const plan = args.device === 'cpu'
    ? { n: 2048, reps: args.quick ? 2 : 4, repeats: args.quick ? 1 : 3 }
    : { n: 8192, reps: 20, repeats: args.quick ? 2 : 5 };
  log(`matmul rate (${plan.n}×${plan.n}, ${args.dtype}): addon, then Python`);
  const loadOptions = { device: args.device, dtype: args.dtype, threads: args.threads };
  const addon = await measure.timeMatmul(probe, loadOptions, plan);
  const m = await python.request('matmul', { probe, ...plan });
  const pythonRate = { n: plan.n, reps: plan.reps, repeats: m.seconds.length,
    flops: (2 * plan.n ** 3 * plan.reps) / (measure.median(m.seconds) - measure.median(m.base_seconds)) };
  return { addon, python: pythonRate };
}

/**
 * The CPU comparison on the random-weight ViT-B/16 (bench/cpu_compare.js), rendered. The eager baseline runs in a
 * Python process of its own, as the official code does: glibc raises its mmap threshold as a process frees large
 * blocks, so the same baseline run after the other series page-faulted a fifth as often and took 3.3 s, not 5.7.
 */
async function benchCpu({ dir, png, classes, args, tmp, load }) {
  const python = new PythonBaseline(PYTHON, args);
  try {
    return await compareOnCpu({ dir, png, classes, args, python, tmp, load });
  } finally {
    await python.close();
  }
}

async function compareOnCpu({ dir, png, classes, args, python, tmp, load }) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const policy = { shortSide: manifest.resize.short_edge, maxLongSide: manifest.resize.max_size };
  const { image, originalSize } = await readImage(png, { resizeTo: (h, w) => modelScaleSize(h, w, policy),
    maxInputPixels: 2 ** 28, name: 'input' });
  const dim = manifest.dims.embed_dim;
  const embeddings = tensor('float32', [classes.length, dim], measure.unitRows(classes.length, dim, 7));
  await loadPython(python, { name: 'cpu', dir, image, originalSize, embeddings, tmp });
  const textClasses = args.textClasses ?? 10;
  const result = await cpuCompare.compareCpu({ dir, png, classes, textClasses, args, python, log });
  return cpuCompare.report(result, { label: `${LABELS.vit_b_16} (${image.height}×${image.width}), ${classes.length} classes`,
    load: load() });
}

/** Writes `markdown` where `args.out` says: the bench region of docs/benchmarks.md, a file of its own, or nowhere. */
function writeReport(markdown, args, region = 'bench') {
  if (args.out === '-') return;
  if (args.out !== undefined) {
    fs.writeFileSync(args.out, `# san-node benchmarks\n\n${markdown}\n`);
    log(`wrote ${args.out}`);
    return;
  }
  report.writeRegion(DOCS, region, markdown);
  log(`wrote the ${region} region of ${path.relative(process.cwd(), DOCS)}`);
}

async function main(argv, args) {
  if (args.help) {
    process.stdout.write(usage);
    return;
  }
  if (args.waitIdleS > 0) await waitIdle(args.waitIdleS);
  const started = new Date();
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const stopWatchingLoad = watchLoad();
  if (os.loadavg()[0] >= 1) {
    log(`warning: load average ${os.loadavg()[0].toFixed(2)}; other work on this machine skews the timings`);
  }
  checkPythonDevice(args.device);
  const made = ensureModels();
  const dirs = { tiny: TINY_DIR, vit_b_16: made.vit_b_16 };
  const { names: classes, source: classSource } = readClasses();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'san-bench-'));
  const python = new PythonBaseline(PYTHON, args);
  try {
    const png = await makePng(tmp);
    if (args.only === 'cpu') {
      const markdown = await benchCpu({ dir: made.vit_b_16, png, classes, args, tmp, load: stopWatchingLoad });
      process.stdout.write(`${markdown}\n`);
      writeReport(markdown, args, 'cpu');
      return;
    }
    const results = [];
    for (const name of args.models) {
      results.push(await benchModel({ name, dir: dirs[name], plan: planFor(name, args), png, classes, args, python,
        tmp, elapsed }));
    }
    const matmul = await benchMatmul(made.probe, args, python);
    const pythonEnv = await python.request('env');
    const markdown = report.render({
      args,
      command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
      started: `${started.toISOString().replace('T', ' ').slice(0, 16)} UTC`,
      elapsedS: elapsed() / 1000,
      load: stopWatchingLoad(),
      classSource,
      env: { machine: report.machine(), node: report.nodeSide(binding(), args), python: pythonEnv },
      models: results,
      matmul,
    });
    process.stdout.write(`${markdown}\n`);
    writeReport(markdown, args);
    if (args.device === 'cpu' && args.dtype === 'float32' && args.models.includes('vit_b_16')) {
      const cpu = await benchCpu({ dir: made.vit_b_16, png, classes, args, tmp, load: watchLoad() });
      process.stdout.write(`${cpu}\n`);
      writeReport(cpu, { ...args, out: args.out === undefined ? undefined : '-' }, 'cpu');
    }
  } finally {
    await python.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
let args;
try {
  args = parseArgs(argv);
} catch (error) {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exit(2);
}
main(argv, args).catch((error) => {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exit(1);
});
