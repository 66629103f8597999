// SPDX-License-Identifier: Apache-2.0
// SanModel on the tiny export: parity with the exporter's Python reference path, every input form, the outputs,
// and bad input that must fail typed while the model keeps serving.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { ErrorCode } from '../../lib/errors';
import { SanModel } from '../../lib/segment/model';
import { binding } from '../../lib/runtime/native';
import { Tensor } from '../../lib/runtime/tensor';
import { TextEmbeddingCache } from '../../lib/segment/text-cache';
import { fixtureTolerance, labelTolerance, onCuda, testRuntime } from '../helpers/device';
import { expectLabelsNearArgmax, expectTensorClose, readCases, tinyModelDir } from '../native/support';

const reference = path.join(tinyModelDir, 'reference');
const cases = readCases(path.join(reference, 'cases.json'));
const caseNamed = (method: string) => cases.find((c) => c.method === method && c.module === 'san.pt')!;
const ensemble = JSON.parse(fs.readFileSync(path.join(reference, 'prompt_ensemble.json'), 'utf8')) as {
  class_names: string[];
};
const CLASSES = ensemble.class_names;

/** The reference image, uint8 NCHW [1, 3, H, W], as the HWC tensor segment takes. */
function referenceImage(): Tensor<'uint8'> {
  const { dims, data } = caseNamed('forward').inputs[0] as Tensor<'uint8'>;
  const [, , h, w] = dims;
  const hwc = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c += 1) for (let p = 0; p < h * w; p += 1) hwc[p * 3 + c] = data[c * h * w + p];
  return { type: 'uint8', dims: [h, w, 3], data: hwc };
}

let model: SanModel;
let tmp: string;
beforeAll(async () => {
  model = await SanModel.load(tinyModelDir, testRuntime());
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'san-model-'));
});
afterAll(async () => {
  await model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('parity with the Python reference path', () => {
  test('encodeText equals the prompt ensemble of models.san.text', async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(reference, 'prompt_ensemble.json'), 'utf8'));
    const embeddings = await model.encodeText(CLASSES);
    const { outputs } = { outputs: [fs.readFileSync(path.join(reference, expected.embeddings.file))] };
    const buffer = outputs[0].buffer.slice(outputs[0].byteOffset, outputs[0].byteOffset + outputs[0].byteLength);
    expectTensorClose(embeddings, { type: 'float32', dims: expected.embeddings.dims, data: new Float32Array(buffer) },
      fixtureTolerance());
  });

  test('segment equals forward → classify → postprocess in Python: labels the argmax, scores close', async () => {
    const postprocess = caseNamed('postprocess');
    const [outHeight, outWidth] = [postprocess.inputs[4] as number, postprocess.inputs[5] as number];
    const result = await model.segment(referenceImage(), {
      classes: CLASSES, resize: false, outputSize: [outHeight, outWidth], scores: true,
    });
    const [expectedScores, expectedLabels] = postprocess.outputs;
    // On the CPU the scores land within 1e-4 and the labels are identical; elsewhere see fixtureTolerance.
    const tolerance = onCuda ? fixtureTolerance() : { atol: 1e-4, rtol: 0 };
    expectTensorClose(result.scores!, { ...expectedScores, dims: expectedScores.dims.slice(1) }, tolerance);
    expect(result.labels.dims).toEqual([outHeight, outWidth]);
    expectLabelsNearArgmax(result.labels.data, expectedLabels.data as BigInt64Array, expectedScores, labelTolerance());
    expect(result.classes).toEqual(CLASSES);
  });
});

describe('input forms', () => {
  const classes = ['sky', 'sea', 'sand'];
  let png: Buffer;
  let pixels: Tensor<'uint8'>;
  beforeAll(async () => {
    // Three bands, 90 × 120: at model scale (short side 64) it becomes 64 × 85.
    const bands = new Uint8Array(90 * 120 * 3);
    for (let p = 0; p < 90 * 120; p += 1) bands.set(p < 3600 ? [110, 170, 230] : p < 7200 ? [20, 60, 140] : [220, 200, 150], p * 3);
    pixels = { type: 'uint8', dims: [90, 120, 3], data: bands };
    png = await sharp(bands, { raw: { width: 120, height: 90, channels: 3 } }).png().toBuffer();
  });

  test('a path, a Buffer, a sharp instance and a tensor give one result, at the input size', async () => {
    const file = path.join(tmp, 'bands.png');
    fs.writeFileSync(file, png);
    const inputs = [file, png, sharp(png), pixels];
    const results = await Promise.all(inputs.map((input) => model.segment(input, { classes })));
    for (const result of results) {
      expect(result.labels.dims).toEqual([90, 120]);
      expect(result.labels.type).toBe('uint16');
      expect(result.labels.data).toEqual(results[0].labels.data);
    }
  });

  test('EXIF orientation is applied: a rotated JPEG gives labels of the rotated size', async () => {
    const jpeg = await sharp(png).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const result = await model.segment(jpeg, { classes });
    expect(result.labels.dims).toEqual([120, 90]);
  });

  test('outputSize sets the maps; scores and proposals come on request', async () => {
    const result = await model.segment(png, { classes, outputSize: [30, 40], scores: true, proposals: true });
    const { num_queries: queries } = model.manifest.dims;
    expect(result.labels.dims).toEqual([30, 40]);
    expect(result.scores!.dims).toEqual([3, 30, 40]);
    // Labels are the argmax of the scores.
    const scores = result.scores!.data as Float32Array;
    for (let p = 0; p < 30 * 40; p += 97) {
      const column = [0, 1, 2].map((c) => scores[c * 1200 + p]);
      expect(result.labels.data[p]).toBe(column.indexOf(Math.max(...column)));
    }
    // 64 × 85 at model scale, padded to 64 × 96: a 4 × 6 grid of mask logits.
    expect(result.proposals!.maskLogits.dims).toEqual([queries, 4, 6]);
    expect(result.proposals!.classProbs.dims).toEqual([queries, 4]);
    const sums = Array.from({ length: queries }, (_, q) =>
      (result.proposals!.classProbs.data as Float32Array).slice(q * 4, q * 4 + 4).reduce((a, b) => a + b));
    sums.forEach((sum) => expect(Math.abs(sum - 1)).toBeLessThanOrEqual(Math.max(1e-5, fixtureTolerance().atol)));
    const plain = await model.segment(png, { classes });
    expect(plain.scores).toBeUndefined();
    expect(plain.proposals).toBeUndefined();
  });

  test('toPng draws an overlay or plain colours; labelsPng holds the indices in 16 bits', async () => {
    const result = await model.segment(png, { classes });
    for (const overlay of [true, false]) {
      const meta = await sharp(await result.toPng({ overlay })).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 120, 90]);
    }
    const { data, info } = await sharp(await result.labelsPng()).toColourspace('grey16').raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([120, 90, 1]);
    expect(new Uint16Array(data.buffer, data.byteOffset, 120 * 90)).toEqual(result.labels.data);
    const shares = result.shares();
    expect(shares.map((s) => s.name)).toEqual(classes);
    expect(shares.reduce((sum, s) => sum + s.share, 0)).toBeCloseTo(1, 10);
  });
});

describe('synonyms', () => {
  test("'average' prompts each synonym alone and averages; 'whole' prompts the name as written", async () => {
    const dim = model.manifest.dims.embed_dim;
    const [cat, kitty] = [(await model.encodeText(['cat'])).data, (await model.encodeText(['kitty'])).data];
    const mean = Array.from({ length: dim }, (_, i) => cat[i] + kitty[i]);
    const norm = Math.hypot(...mean);
    const averaged = await model.encodeText(['cat, kitty'], { synonyms: 'average' });
    Array.from(averaged.data).forEach((value, i) => expect(value).toBeCloseTo(mean[i] / norm, 6));
    const whole = await model.encodeText(['cat, kitty']);
    expect(Array.from(whole.data)).not.toEqual(Array.from(averaged.data));
    await expect(model.encodeText(['cat'], { synonyms: 'first' as never })).rejects.toThrow(
      /Expected one of: whole, average for options.synonyms but received 'first'/);
  });
});

describe('text cache', () => {
  test('a vocabulary seen before is served from the cache; order and duplicates kept', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const cached = await SanModel.load(tinyModelDir, { ...testRuntime(), textCache: cache, verify: false });
    try {
      const first = await cached.encodeText(['cat', 'dog']);
      expect(cache.stats()).toMatchObject({ misses: 2, hits: 0 });
      const again = await cached.encodeText(['dog', 'cat', 'dog']);
      expect(cache.stats()).toMatchObject({ misses: 2, hits: 2 });
      const dim = cached.manifest.dims.embed_dim;
      expect(again.dims).toEqual([3, dim]);
      expect(again.data.slice(0, dim)).toEqual(first.data.slice(dim));
      expect(again.data.slice(dim * 2)).toEqual(first.data.slice(dim));
      // Another template set is another cache entry.
      await cached.encodeText(['cat'], { templates: 'single' });
      expect(cache.stats().misses).toBe(3);
    } finally {
      await cached.dispose();
    }
  });
});

/** A PNG whose header declares `width` × `height` (CRC fixed), with no usable pixel data. */
async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } }).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

describe('bad input fails typed, and the model keeps serving', () => {
  const classes = ['sky', 'sea'];
  const image: Tensor<'uint8'> = { type: 'uint8', dims: [8, 8, 3], data: new Uint8Array(192).fill(128) };

  afterEach(async () => {
    const result = await model.segment(image, { classes });
    expect(result.labels.dims).toEqual([8, 8]);
  });

  test.each([
    ['corrupt bytes', () => Buffer.from('this is not an image at all')],
    ['a 0×0 header', () => pngDeclaring(0, 0)],
    ['a 100000×100000 header', () => pngDeclaring(100000, 100000)],
    ['a missing file', () => path.join(os.tmpdir(), 'no-such-image.png')],
  ])('%s: ERR_SAN_IMAGE', async (_, make) => {
    await expect(model.segment(await make(), { classes })).rejects.toMatchObject({
      name: 'SanError', code: ErrorCode.IMAGE, message: expect.stringMatching(/^Could not read input as an image: /),
    });
  });

  test.each([
    ['no classes', { classes: [] }, RangeError, /Expected 1 to 4096 classes for options.classes.length but received 0/],
    ['5000 classes', { classes: Array.from({ length: 5000 }, (_, i) => `class ${i}`) }, RangeError, /received 5000/],
    ['a non-string class', { classes: ['sky', 7] }, TypeError, /Expected a string for options.classes\[1\] but received 7/],
    ['a blank class', { classes: ['sky', '  '] }, RangeError, /options.classes\[1\]/],
    ['no options', undefined, TypeError, /Expected an object with classes for options/],
    ['an unknown template set', { classes, templates: 'fancy' }, RangeError, /one of: vild, single/],
    ['a template without {}', { classes, templates: ['a photo'] }, RangeError, /options.templates\[0\]/],
    ['a bad outputSize', { classes, outputSize: [0, 10] }, RangeError, /options.outputSize\[0\]/],
    ['a non-boolean flag', { classes, scores: 'yes' }, TypeError, /Expected a boolean for options.scores/],
  ])('%s', async (_, options, errorClass, message) => {
    const call = model.segment(image, options as never);
    await expect(call).rejects.toThrow(errorClass as ErrorConstructor);
    await expect(call).rejects.toThrow(message);
  });

  test.each([
    ['a float tensor', { type: 'float32', dims: [8, 8, 3], data: new Float32Array(192) }, ErrorCode.DTYPE],
    ['a CHW tensor', { type: 'uint8', dims: [3, 8, 8], data: new Uint8Array(192) }, ErrorCode.SHAPE],
    ['a number', 42, ErrorCode.INVALID_ARG],
  ])('%s as the image', async (_, input, code) => {
    await expect(model.segment(input as never, { classes })).rejects.toMatchObject({ code });
  });
});

describe('loading', () => {
  test('a missing folder names what is missing', async () => {
    await expect(SanModel.load(path.join(tmp, 'nowhere'))).rejects.toMatchObject({
      code: ErrorCode.MODEL_LOAD, message: expect.stringMatching(/nowhere has no manifest.json/),
    });
  });

  test('a file that differs from its manifest hash is refused', async () => {
    const copy = path.join(tmp, 'altered');
    fs.cpSync(tinyModelDir, copy, { recursive: true });
    fs.appendFileSync(path.join(copy, 'bpe_vocab.txt.gz'), Buffer.from([0]));
    await expect(SanModel.load(copy)).rejects.toMatchObject({
      code: ErrorCode.MODEL_LOAD, message: expect.stringMatching(/bpe_vocab.txt.gz whose sha256 [0-9a-f]{64} differs/),
    });
  });

  test('a manifest of another format version is refused', async () => {
    const copy = path.join(tmp, 'future');
    fs.cpSync(tinyModelDir, copy, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8'));
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify({ ...manifest, format_version: 2 }));
    await expect(SanModel.load(copy)).rejects.toMatchObject({ code: ErrorCode.MODEL_LOAD, message: /format_version 2/ });
  });

  // One of the next two runs: which depends on whether this LibTorch sees a GPU.
  const cudaHere = binding().cudaAvailable();
  const withoutCuda = `CUDA on a machine without it is a device error${cudaHere ? ' (skipped: a GPU is here)' : ''}`;
  const withCuda = `CUDA where LibTorch sees a GPU loads on cuda:0 in float16${cudaHere ? '' : ' (skipped: no GPU here)'}`;
  (cudaHere ? test.skip : test)(withoutCuda, async () => {
    await expect(SanModel.load(tinyModelDir, { device: 'cuda' })).rejects.toMatchObject({ code: ErrorCode.DEVICE });
  });

  (cudaHere ? test : test.skip)(withCuda, async () => {
    const gpu = await SanModel.load(tinyModelDir, { device: 'cuda', dtype: 'float16', verify: false });
    try {
      expect(gpu.device).toBe('cuda:0');
      const result = await gpu.segment({ type: 'uint8', dims: [8, 8, 3], data: new Uint8Array(192).fill(128) },
        { classes: ['sky', 'sea'] });
      expect(result.labels.dims).toEqual([8, 8]);
      expect(gpu.metrics().memory).toMatchObject({
        device: 'cuda:0', deviceMemory: { allocatedBytes: expect.any(Number) },
      });
    } finally {
      await gpu.dispose();
    }
  });
});
