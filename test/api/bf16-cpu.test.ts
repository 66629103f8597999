// SPDX-License-Identifier: Apache-2.0
// bfloat16 on the CPU: accepted where the CPU has AVX512-BF16 or AMX-BF16, with mixed precision (products in
// bfloat16; norms, softmax, reductions and post-processing in float32) that keeps the scores near float32's; refused
// with ERR_SAN_DTYPE naming the instruction sets elsewhere.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SanModel } from '../../lib/segment/model';
import { agreement, Agreement } from '../../lib/eval/agreement';
import { binding } from '../../lib/runtime/native';
import { repoRoot } from '../helpers/paths';
import { useTempDir } from '../helpers/temp-dir';
import { tinyModelDir } from '../native/support';

/** Measured on an AMD EPYC with AVX512-BF16: 1.2e-2 (default, labels 99.97 % equal) and 4.8e-3 (tiny) of the
 * largest score, and 3e-3 on ViT-B/16 (npm run bench). Issue 18 aims at 5e-3: the small trained default model stays
 * over it, a floor set by rounding the products' operands to bfloat16 (docs/models.md, "Precision and devices"). */
const SCORE_TOLERANCE = 2e-2;
const LABELS_EQUAL = 0.999;
const missing = binding().cpuBfloat16();
const onBf16Cpu = missing === null ? test : test.skip;
if (missing !== null) console.log(`bfloat16 accuracy tests skipped: this CPU lacks ${missing}`);

const DEFAULT_DIR = path.join(repoRoot, 'models', 'default');
const SCENE = path.join(repoRoot, 'assets', 'procedural-scene.png');
const SCENE_CLASSES = fs.readFileSync(path.join(repoRoot, 'assets', 'procedural-scene-classes.txt'), 'utf8')
  .split('\n').filter(Boolean);

async function compare(dir: string, input: string | Buffer, classes: string[]): Promise<Agreement> {
  const results = [];
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const model = await SanModel.load(dir, { device: 'cpu', dtype, threads: 1, textCache: false });
    try {
      results.push(await model.segment(input, { classes, scores: true }));
    } finally {
      await model.dispose();
    }
  }
  return agreement(results[0], results[1]);
}

onBf16Cpu('bfloat16 on the tiny reference image: scores near float32, labels equal', async () => {
  const image = fs.readFileSync(path.join(repoRoot, 'assets', 'procedural-scene.png'));
  const { scoreError, labelsEqual } = await compare(tinyModelDir, image, ['sky', 'tree', 'road', 'car', 'person']);
  console.log(`tiny: scores ${scoreError.toExponential(2)} of the largest, labels ${(labelsEqual * 100).toFixed(2)} % equal`);
  expect(scoreError).toBeLessThanOrEqual(SCORE_TOLERANCE);
  expect(labelsEqual).toBeGreaterThanOrEqual(LABELS_EQUAL);
}, 120_000);

onBf16Cpu('bfloat16 on models/default and its sample scene: scores near float32, labels equal', async () => {
  const { scoreError, labelsEqual } = await compare(DEFAULT_DIR, SCENE, SCENE_CLASSES);
  console.log(`default: scores ${scoreError.toExponential(2)} of the largest, labels ${(labelsEqual * 100).toFixed(2)} % equal`);
  expect(scoreError).toBeLessThanOrEqual(SCORE_TOLERANCE);
  expect(labelsEqual).toBeGreaterThanOrEqual(LABELS_EQUAL);
}, 120_000);

const tmp = useTempDir('san-bf16-');

onBf16Cpu('a bfloat16 model encodes text in float32: the embeddings of a float32 model, and its cache file', async () => {
  const file = path.join(tmp(), 'text-cache.bin');
  const classes = ['sky', 'tree', 'road'];
  const encode = async (dtype: 'float32' | 'bfloat16', textCache: false | { file: string }) => {
    const model = await SanModel.load(tinyModelDir, { device: 'cpu', dtype, threads: 1, textCache });
    try {
      return { embeddings: (await model.encodeText(classes)).data, misses: model.textCache?.stats().misses };
    } finally {
      await model.dispose(); // saves the cache file, when it has one
    }
  };
  const float32 = await encode('float32', { file });
  expect(fs.existsSync(file)).toBe(true);
  expect((await encode('bfloat16', false)).embeddings).toEqual(float32.embeddings);
  // The bfloat16 model finds the float32 model's embeddings in the file: nothing to encode.
  expect(await encode('bfloat16', { file })).toEqual({ embeddings: float32.embeddings, misses: 0 });
}, 60_000);

test('bfloat16 is refused with ERR_SAN_DTYPE on a CPU without AVX512-BF16 or AMX-BF16 (forced)', () => {
  // In a child process: the addon reads SAN_TEST_HIDE_CPU_BF16 from the real environment, which jest's is not.
  const script = `require(${JSON.stringify(path.join(repoRoot, 'dist'))}).SanModel.load(${JSON.stringify(tinyModelDir)},
    { device: 'cpu', dtype: 'bfloat16', threads: 1 }).then(() => console.log('loaded'),
    (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
  const output = execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, SAN_TEST_HIDE_CPU_BF16: '1' },
  });
  expect(JSON.parse(output)).toEqual({
    code: 'ERR_SAN_DTYPE',
    message: "dtype bfloat16 on the CPU needs the AVX512-BF16 or AMX-BF16 instruction set, which this CPU lacks " +
      "(neither avx512_bf16 nor amx_bf16 among its flags); device 'cpu' is the CPU here, so use float32",
  });
});

test('float16 stays CUDA-only', async () => {
  await expect(SanModel.load(tinyModelDir, { device: 'cpu', dtype: 'float16', threads: 1 })).rejects.toMatchObject({
    code: 'ERR_SAN_DTYPE',
  });
});
