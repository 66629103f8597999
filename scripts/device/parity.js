#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * How far CUDA results land from the float32 CPU results, by dtype: the figures behind test/helpers/device.ts's
 * tolerances and the dtype table of docs/benchmarks.md. Run by scripts/device/run-cuda-suite.sh (step `parity`).
 *
 *   node scripts/device/parity.js OUT.json
 *
 * 1. The tiny export's reference cases (written by Python on the CPU in float32) run on cuda in float32, float16 and
 *    bfloat16: the worst absolute difference, the worst difference relative to max(|expected|, 1e-3), and
 *    ‖out − ref‖ / ‖ref‖ per output; for postprocess's labels, the share of pixels that agree.
 * 2. The random-weight ViT-B/16 (build/bench-models/vit_b_16, made by bench/make_random_model.py) segments one
 *    640×640 image with 150 classes on the CPU in float32 (the reference) and on cuda in each dtype: the same
 *    figures for the scores, and the labels' agreement.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { SanModel, TorchModel } = require('../../dist');

const ROOT = path.resolve(__dirname, '..', '..');
const TINY = path.resolve(ROOT, process.env.SAN_TEST_MODELS ?? 'test-models', 'tiny');
const BENCH_MODELS = path.join(ROOT, 'build', 'bench-models');
const DTYPES = ['float32', 'float16', 'bfloat16'];
const TYPED = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, uint8: Uint8Array };

function readTensor(dir, { type, dims, file }) {
  const bytes = fs.readFileSync(path.join(dir, file));
  return { type, dims, data: new TYPED[type](bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
}

/** Worst absolute and relative differences and the relative L2 error of `actual` against `expected`. */
function compare(actual, expected) {
  let maxAbs = 0;
  let maxRel = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < expected.length; i += 1) {
    const d = Math.abs(actual[i] - expected[i]);
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(Math.abs(expected[i]), 1e-3));
    diff2 += d * d;
    ref2 += expected[i] * expected[i];
  }
  return { maxAbs, maxRel, relL2: Math.sqrt(diff2 / Math.max(ref2, 1e-30)) };
}

function agreement(a, b) {
  let same = 0;
  for (let i = 0; i < b.length; i += 1) same += Number(a[i]) === Number(b[i]) ? 1 : 0;
  return same / b.length;
}

async function tinyCases() {
  const dir = path.join(TINY, 'reference');
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
  const results = {};
  for (const dtype of DTYPES) {
    const modules = [...new Set(cases.map((c) => c.module))];
    const model = await TorchModel.load(Object.fromEntries(modules.map((m) => [m, path.join(TINY, m)])),
      { device: 'cuda', dtype });
    results[dtype] = {};
    for (const c of cases) {
      const inputs = c.inputs.map((input) => (input.type === 'int' ? input.value : readTensor(dir, input)));
      const out = await model.run(c.module, c.method, inputs, { float32Outputs: true });
      const tensors = (Array.isArray(out) ? out : [out]).flat();
      c.outputs.forEach((expected, i) => {
        const want = readTensor(dir, expected);
        const key = `${c.module} ${c.method} out${i}`;
        results[dtype][key] = want.type === 'int64'
          ? { labelAgreement: agreement(tensors[i].data, want.data) }
          : compare(tensors[i].data, want.data);
      });
    }
    await model.dispose();
  }
  return results;
}

function noiseImage(side, seed) {
  const data = new Uint8Array(side * side * 3);
  let state = seed;
  for (let i = 0; i < data.length; i += 1) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return { type: 'uint8', dims: [side, side, 3], data };
}

async function vitB16() {
  const dir = path.join(BENCH_MODELS, 'vit_b_16');
  if (!fs.existsSync(path.join(dir, 'manifest.json'))) {
    const made = spawnSync(process.env.SAN_PYTHON ?? 'python3',
      [path.join(ROOT, 'bench', 'make_random_model.py'), '--out', BENCH_MODELS], { cwd: ROOT, stdio: 'inherit' });
    if (made.status !== 0) throw new Error('bench/make_random_model.py failed');
  }
  const classes = Array.from({ length: 150 }, (_, i) => `class number ${i}`);
  const image = noiseImage(640, 7);
  const run = async (device, dtype) => {
    const model = await SanModel.load(dir, { device, dtype, verify: false });
    const result = await model.segment(image, { classes, resize: false, scores: true });
    await model.dispose();
    return result;
  };
  const reference = await run('cpu', 'float32');
  const results = {};
  for (const dtype of DTYPES) {
    const result = await run('cuda', dtype);
    results[dtype] = {
      scores: compare(result.scores.data, reference.scores.data),
      labelAgreement: agreement(result.labels.data, reference.labels.data),
    };
  }
  return results;
}

async function main() {
  const out = process.argv[2] ?? '-';
  const report = { tiny: await tinyCases(), vit_b_16_640: await vitB16() };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (out === '-') process.stdout.write(text);
  else {
    fs.writeFileSync(out, text);
    process.stdout.write(text);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
