// SPDX-License-Identifier: Apache-2.0
/**
 * The CPU comparison of `npm run bench` (issue 18's measure): at 640×640 on `--threads` threads, san-node's
 * `segment()` in float32 and in bfloat16 (where the CPU has AVX512-BF16 or AMX-BF16) against the same weights in
 * the project's models/san run eagerly in PyTorch, which matches the official code layer for layer; minor page faults
 * per call on both sides; and text encoding (classes × the 14 vild templates) cold and cached against the eager text
 * tower. Every series is interleaved call by call, so that a load that drifts on a shared machine weighs on both.
 */
'use strict';

const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { SanModel, agreement, cpuAllocatorStats } = require('../dist');
const { binding } = require('../dist/runtime/native');
const measure = require('./measure');

/** The issue's targets: how many times the official code's speed. */
const TARGETS = { float32: 2.5, bfloat16: 5, text: 5 };
/** The issue's bfloat16 accuracy: scores within this fraction of the largest float32 score, and labels equal. */
const BF16_TARGETS = { scoreError: 5e-3, labelsEqual: 0.999 };

const faults = () => process.resourceUsage().minorPageFault;

/** One `segment()` call: milliseconds and minor page faults of this process during it. */
function faultCounted(fn) {
  const calls = [];
  const call = async () => {
    const before = faults();
    const start = performance.now();
    await fn();
    const ms = performance.now() - start;
    calls.push(faults() - before);
    return ms;
  };
  return { call, faults: calls };
}

const median = (values) => measure.median(values);

/**
 * Runs the comparison on the model folder `dir` (its manifest's resize keeps a 640×640 `png` at 640×640) and returns
 * what report() renders. `python` is a PythonBaseline already `load`ed with the image and class embeddings.
 */
async function compareCpu({ dir, png, classes, textClasses, args, python, log }) {
  const repeats = args.repeats ?? (args.quick ? 1 : 3);
  const warmup = args.warmup ?? 1;
  const threads = args.threads;
  const bf16Missing = binding().cpuBfloat16();
  const dtypes = bf16Missing === null ? ['float32', 'bfloat16'] : ['float32'];
  log(`cpu comparison: eager models/san in Python, then ${dtypes.join(' and ')} segment(), ${repeats} calls each`);
  await python.request('eager_load', { model_dir: dir });
  const models = {};
  for (const dtype of dtypes) {
    models[dtype] = await SanModel.load(dir, { device: 'cpu', dtype, threads, verify: false });
    await models[dtype].encodeText(classes);  // cached: these rows time the image path
  }
  try {
    const counted = Object.fromEntries(dtypes.map((dtype) => [dtype,
      faultCounted(() => models[dtype].segment(png, { classes }))]));
    const pythonFaults = [];
    const calls = {
      eager: async () => {
        const { seconds, minflt } = await python.request('eager_time', { warmup: 0, repeats: 1 });
        pythonFaults.push(minflt[0]);
        return seconds[0] * 1000;
      },
      ...Object.fromEntries(dtypes.map((dtype) => [dtype, counted[dtype].call])),
    };
    const timing = await measure.interleave(calls, { warmup, repeats });
    const steady = (list) => median(list.slice(-repeats));
    const image = { eager: { ...timing.eager, faults: steady(pythonFaults) } };
    for (const dtype of dtypes) image[dtype] = { ...timing[dtype], faults: steady(counted[dtype].faults) };
    log(`cpu comparison: ${Object.entries(image).map(([k, t]) => `${k} ${t.ms.toFixed(0)} ms, ${t.faults} faults`).join('; ')}`);

    // bfloat16's cost in accuracy, on the same image and classes: both with scores.
    let bf16Accuracy = null;
    if (models.bfloat16) {
      const reference = await models.float32.segment(png, { classes, scores: true });
      bf16Accuracy = agreement(reference, await models.bfloat16.segment(png, { classes, scores: true }));
      log(`cpu comparison: bfloat16 scores within ${bf16Accuracy.scoreError.toExponential(2)} of the largest, `
        + `labels ${(100 * bf16Accuracy.labelsEqual).toFixed(3)} % equal`);
    }

    // Text: a model without a cache for cold encodings, the float32 model's cache for hits.
    const cold = await SanModel.load(dir, { device: 'cpu', threads, verify: false, textCache: false });
    let text;
    try {
      const names = classes.slice(0, textClasses);
      const textTiming = await measure.interleave({
        eager: async () => (await python.request('eager_text', { model_dir: dir, classes: names })).seconds * 1000,
        cold: measure.timed(() => cold.encodeText(names)),
      }, { warmup: 1, repeats: Math.max(2, repeats) });
      const cached = await measure.sample(() => models.float32.encodeText(names), { warmup: 1, repeats: 20 });
      text = { classes: names.length, templates: 14, ...textTiming, cached };
      log(`cpu comparison: text ${names.length} classes: eager ${text.eager.ms.toFixed(0)} ms, cold ${text.cold.ms.toFixed(0)} ms`);
    } finally {
      await cold.dispose();
    }
    return { threads, repeats, bf16Missing, image, bf16Accuracy, classes: classes.length, text,
      allocator: cpuAllocatorStats(), openblas: process.env.OPENBLAS_NUM_THREADS ?? null,
      ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null };
  } finally {
    await Promise.all(Object.values(models).map((model) => model.dispose()));
  }
}

const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const times = (ratio, target) => `**${ratio.toFixed(2)}×** (target ${target}×: ${ratio >= target ? 'met' : 'not met'})`;

/** What bfloat16 moved against float32 on the bench image, against the issue's targets. */
function bf16AccuracyLine({ bf16Accuracy: { scoreError, labelsEqual }, classes }) {
  const met = (ok) => (ok ? 'met' : 'not met');
  return `bfloat16 against float32 on this image and its ${classes} classes: scores within `
    + `${scoreError.toExponential(2)} of the largest float32 score (target ${BF16_TARGETS.scoreError}: `
    + `${met(scoreError <= BF16_TARGETS.scoreError)}), labels ${(100 * labelsEqual).toFixed(3)} % equal (target `
    + `${100 * BF16_TARGETS.labelsEqual} %: ${met(labelsEqual >= BF16_TARGETS.labelsEqual)}).\n`;
}

/** Markdown for the comparison, under a heading of its own. */
function report(result, { label, load }) {
  const { image, text } = result;
  const rows = [['eager models/san (PyTorch, float32)', image.eager, '1.00× (baseline)']];
  rows.push(['san-node `segment()`, float32', image.float32, times(image.eager.ms / image.float32.ms, TARGETS.float32)]);
  if (image.bfloat16) {
    rows.push(['san-node `segment()`, bfloat16', image.bfloat16, times(image.eager.ms / image.bfloat16.ms, TARGETS.bfloat16)]);
  }
  const lines = [
    `### CPU: san-node against the official code's layers (${label}, ${result.threads} threads)`,
    '',
    `Interleaved call by call, median of ${result.repeats}; 1-minute load average ${load.start.toFixed(1)} at the start, `
      + `${load.mean.toFixed(1)} on average, ${load.max.toFixed(1)} at most (other work on the machine slows both sides `
      + 'alike; the ratios are what count). OPENBLAS_NUM_THREADS='
      + `${result.openblas ?? 'unset'} and OMP_WAIT_POLICY=${result.ompWaitPolicy ?? 'unset'} on both sides.`,
    '',
    '| run | per image | images/s | minor page faults per call | speed-up |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(([name, t, ratio]) => `| ${name} | ${fmt(t.ms)} | ${(1000 / t.ms).toFixed(3)} | ${t.faults} | ${ratio} |`),
    '',
    result.bf16Missing === null ? bf16AccuracyLine(result) : `bfloat16 not measured: this CPU lacks ${result.bf16Missing}.\n`,
    `Text encoding of ${text.classes} classes × ${text.templates} templates (vild):`,
    '',
    '| run | time | speed-up |',
    '| --- | --- | --- |',
    `| eager models/san text tower (each template's prompts padded to the context) | ${fmt(text.eager.ms)} | 1.00× (baseline) |`,
    `| san-node, cold (prompts grouped by length, each call cut at its longest) | ${fmt(text.cold.ms)} | ${times(text.eager.ms / text.cold.ms, TARGETS.text)} |`,
    `| san-node, cached | ${fmt(text.cached.ms)} | ${(text.eager.ms / text.cached.ms).toFixed(0)}× |`,
    '',
    `The CPU allocator after the run: ${(result.allocator.cachedBytes / 2 ** 20).toFixed(0)} MiB cached of a `
      + `${(result.allocator.limitBytes / 2 ** 20).toFixed(0)} MiB limit, ${result.allocator.hits} hits and `
      + `${result.allocator.misses} misses (allocations of 64 KiB and more).`,
  ];
  return lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n');
}

module.exports = { compareCpu, report, TARGETS };
