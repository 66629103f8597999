// SPDX-License-Identifier: Apache-2.0
// evaluate(): label maps read in every form the benchmarks use, the metric path against hand-computed matrices,
// pairing by stem, and the tiny model end to end against segment() + ConfusionMatrix; resume; bad folders.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { ErrorCode, SanError } from '../../lib/errors';
import {
  evaluate, EvaluationPair, ImageCounts, pairFiles, readLabelMap, scoreLabelMaps,
} from '../../lib/eval/evaluate';
import { ConfusionMatrix } from '../../lib/eval/metrics';
import { SanModel } from '../../lib/segment/model';
import { bandLabels, bandsImage, writeLabels } from '../helpers/label-maps';
import { pythonBin } from '../helpers/paths';
import { useTempDir } from '../helpers/temp-dir';
import { tinyModelDir } from '../native/support';

const CLASSES = ['sky', 'sea, ocean', 'sand'];

const tmp = useTempDir('san-eval-');

describe('readLabelMap', () => {
  const values8 = [0, 1, 2, 255, 7, 9];
  const values16 = [0, 1, 300, 65535, 846, 9];

  test.each([
    ['an 8-bit greyscale PNG', 'png8', values8, 8, 255],
    ['an 8-bit greyscale TIFF', 'tiff8', values8, 8, 255],
    ['an RGB PNG whose channels are equal', 'rgb8', values8, 8, 255],
    ['a 16-bit greyscale PNG (sharp would make it 8-bit sRGB unless told)', 'png16', values16, 16, 65535],
    ['a 16-bit greyscale TIFF, as ADE-847 and PC-459 are prepared', 'tiff16', values16, 16, 65535],
  ] as const)('reads %s value for value, with its default ignore value', async (_, form, values, bits, ignore) => {
    const file = await writeLabels(path.join(tmp(), `read-${form}.${form.startsWith('tiff') ? 'tif' : 'png'}`),
      [...values], 3, form);
    const label = await readLabelMap(file);
    expect(label).toMatchObject({ width: 3, height: 2, bits, ignore });
    expect(Array.from(label.data)).toEqual(values);
    expect(label.data).toBeInstanceOf(bits === 16 ? Uint16Array : Uint8Array);
  });

  test("reads the files PIL writes in the reference's preparation scripts: mode L PNG and I;16 TIFF", async () => {
    // As prepare_ade20k_sem_seg.py (uint8, 0 shifted to 255) and the ADE-847 / PC-459 scripts (uint16 TIFF) do.
    const [png, tiff] = [path.join(tmp(), 'pil-l.png'), path.join(tmp(), 'pil-i16.tif')];
    execFileSync(pythonBin, ['-c', [
      'import sys, numpy as np; from PIL import Image',
      'Image.fromarray(np.array([[0, 1, 149], [255, 7, 2]], dtype=np.uint8)).save(sys.argv[1])',
      'Image.fromarray(np.array([[0, 846, 300], [65535, 1, 2]], dtype=np.uint16)).save(sys.argv[2])',
    ].join('\n'), png, tiff]);
    await expect(readLabelMap(png, { numClasses: 150 })).resolves.toMatchObject({ bits: 8, ignore: 255, width: 3 });
    expect(Array.from((await readLabelMap(png)).data)).toEqual([0, 1, 149, 255, 7, 2]);
    await expect(readLabelMap(tiff, { numClasses: 847 })).resolves.toMatchObject({ bits: 16, ignore: 65535, height: 2 });
    expect(Array.from((await readLabelMap(tiff)).data)).toEqual([0, 846, 300, 65535, 1, 2]);
  });

  test('takes the ignore value given', async () => {
    const file = await writeLabels(path.join(tmp(), 'ignore-0.png'), [0, 1, 2, 3], 2);
    expect((await readLabelMap(file, { ignore: 0, numClasses: 4 })).ignore).toBe(0);
  });

  test('EXPECTED FAILURE - a value neither a class nor the ignore value: the file, the pixel and the value', async () => {
    const file = await writeLabels(path.join(tmp(), 'out-of-range.png'), [0, 1, 2, 255, 7, 1], 3);
    await expect(readLabelMap(file, { numClasses: 3 })).rejects.toThrow(new RegExp(
      `^The label map ${file} has the value 7 at x 1, y 1, neither a class index in \\[0, 2\\] nor the ignore value 255`));
    await expect(readLabelMap(file, { numClasses: 3 })).rejects.toMatchObject({ name: 'SanError', code: ErrorCode.IMAGE });
    // 255 is a class when told another ignore value, and 7 still is not.
    await expect(readLabelMap(file, { numClasses: 8 })).resolves.toMatchObject({ ignore: 255 });
    await expect(readLabelMap(file, { numClasses: 3, ignore: 7 })).rejects.toThrow(/the value 255 at x 0, y 1/);
  });

  test('EXPECTED FAILURE - a palette PNG, colour pixels, a corrupt file and a missing one name the file', async () => {
    const palette = path.join(tmp(), 'palette.png');
    await sharp(Buffer.from([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]), { raw: { width: 2, height: 2, channels: 3 } })
      .png({ palette: true, colours: 4 }).toFile(palette);
    const colour = path.join(tmp(), 'colour.png');
    await sharp(Buffer.from([1, 1, 1, 1, 2, 1]), { raw: { width: 2, height: 1, channels: 3 } }).png().toFile(colour);
    const corrupt = path.join(tmp(), 'corrupt.png');
    fs.writeFileSync(corrupt, 'not a PNG');
    const missing = path.join(tmp(), 'missing.png');
    for (const [file, reason] of [
      [palette, /it is a palette \(indexed-colour\) PNG, whose indices sharp cannot read/],
      [colour, /it has colour pixels, e\.g\. \(1, 2, 1\) at x 1, y 0; expected greyscale class indices/],
      [corrupt, /.+/],
      [missing, /.+/],
    ] as const) {
      const error = await readLabelMap(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SanError);
      expect(error).toMatchObject({ code: ErrorCode.IMAGE });
      expect((error as Error).message).toMatch(new RegExp(`^Could not read the label map ${file}: `));
      expect((error as Error).message).toMatch(reason);
    }
  });

  test('BAD CALL - a file that is not a path', async () => {
    await expect(readLabelMap('')).rejects.toThrow(/^Expected a file path for file but received '' of type string$/);
  });
});

describe('scoreLabelMaps: the metric without a model', () => {
  test('equals a hand-computed matrix with ignored pixels and a class only predicted', () => {
    // 10 pixels over 2 images, 4 classes; 255 ignored; class 2 predicted once, never labelled; class 3 absent.
    const result = scoreLabelMaps([
      { prediction: Uint8Array.from([0, 0, 1, 1, 2]), label: Uint8Array.from([0, 1, 1, 255, 0]) },
      { prediction: Uint8Array.from([1, 0, 0, 1, 1]), label: Uint8Array.from([1, 0, 255, 1, 0]) },
    ], { classes: ['a', 'b', 'c', 'd'] });
    // [predicted][true]: (0,0) 2, (0,1) 1, (1,1) 3, (1,0) 1, (2,0) 1.
    expect(Array.from(result.matrix.counts)).toEqual([2, 1, 0, 0, 1, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    // labelled: a 4, b 4; predicted: a 3, b 4, c 1; tp: a 2, b 3.
    const [iouA, iouB] = [2 / (4 + 3 - 2), 3 / (4 + 4 - 3)];
    expect(result.iou).toEqual([expect.closeTo(100 * iouA, 10), expect.closeTo(100 * iouB, 10), null, null]);
    expect(result.mIoU).toBeCloseTo((100 * (iouA + iouB)) / 3, 10); // c is predicted: it counts, as 0
    expect(result.mIoULabelled).toBeCloseTo((100 * (iouA + iouB)) / 2, 10);
    expect(result.fwIoU).toBeCloseTo(100 * (iouA * 0.5 + iouB * 0.5), 10);
    expect(result.mACC).toBeCloseTo(100 * ((2 / 4 + 3 / 4) / 2), 10);
    expect(result.pACC).toBeCloseTo((100 * 5) / 8, 10);
    expect(result.iouByClass).toEqual({ a: result.iou[0], b: result.iou[1], c: null, d: null });
    expect(result.accByClass).toEqual({ a: 50, b: 75, c: null, d: null });
    expect(result).toMatchObject({ images: 2, pixels: 8, classes: ['a', 'b', 'c', 'd'] });
  });

  test('16-bit labels with 65535 ignored', () => {
    const result = scoreLabelMaps([
      { prediction: Uint16Array.from([846, 846, 0, 5]), label: Uint16Array.from([846, 65535, 0, 846]) },
    ], { classes: Array.from({ length: 847 }, (_, i) => `class ${i}`), ignore: 65535 });
    expect(result.iouByClass['class 846']).toBeCloseTo(50, 10);
    expect(result.iouByClass['class 0']).toBe(100);
    expect(result.iouByClass['class 5']).toBeNull();
    expect(result.pACC).toBeCloseTo((100 * 2) / 3, 10);
    expect(result.mIoU).toBeCloseTo(100 * (1 + 0.5) / 3, 10); // 0, 846 labelled; 5 only predicted
    expect(result.mIoULabelled).toBeCloseTo(75, 10);
  });

  test("agrees with detectron2's formulas, v0.6's and today's, computed in numpy over random maps", () => {
    // 12 classes; 9 to 11 never labelled, 10 also predicted; a tenth of the pixels ignored.
    let seed = 7;
    const random = (n: number): number => { // MINSTD: exact in doubles
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const maps = Array.from({ length: 4 }, () => {
      const label = Uint16Array.from({ length: 3000 }, (_, p) => (p % 10 === 0 ? 255 : random(9)));
      const prediction = Uint16Array.from({ length: 3000 }, (_, p) => (p < 40 ? 10 : random(12)));
      return { prediction, label };
    });
    const result = scoreLabelMaps(maps, { classes: Array.from({ length: 12 }, (_, c) => `class ${c}`) });
    // The confusion matrix and the figures as detectron2's SemSegEvaluator.evaluate() writes them, in numpy.
    const script = [
      'import json, sys, numpy as np',
      'maps, n = json.load(sys.stdin), 12',
      'cm = np.zeros((n + 1, n + 1), dtype=np.int64)',
      'for pred, gt in maps:',
      '    pred, gt = np.array(pred), np.array(gt)',
      '    gt[gt == 255] = n',
      '    cm += np.bincount((n + 1) * pred + gt, minlength=(n + 1) ** 2).reshape(n + 1, n + 1)',
      'tp = cm.diagonal()[:-1].astype(float)',
      'pos_gt, pos_pred = cm[:-1, :-1].sum(0).astype(float), cm[:-1, :-1].sum(1).astype(float)',
      'valid = pos_gt > 0',
      'iou = tp[valid] / (pos_gt + pos_pred - tp)[valid]',
      'print(json.dumps({"v06": 100 * iou.sum() / ((pos_gt + pos_pred) > 0).sum(), "now": 100 * iou.mean(),',
      '  "fwIoU": 100 * (iou * pos_gt[valid] / pos_gt.sum()).sum(), "mACC": 100 * (tp[valid] / pos_gt[valid]).mean(),',
      '  "pACC": 100 * tp.sum() / pos_gt.sum()}))',
    ].join('\n');
    const input = JSON.stringify(maps.map(({ prediction, label }) => [Array.from(prediction), Array.from(label)]));
    const numpy = JSON.parse(execFileSync(pythonBin, ['-c', script], { input }).toString()) as Record<string, number>;
    expect(result.mIoU).toBeCloseTo(numpy.v06, 10);
    expect(result.mIoULabelled).toBeCloseTo(numpy.now, 10);
    expect(result.mIoULabelled).toBeGreaterThan(result.mIoU); // class 10 is only predicted: v0.6 counts it as 0
    expect(result.fwIoU).toBeCloseTo(numpy.fwIoU, 10);
    expect(result.mACC).toBeCloseTo(numpy.mACC, 10);
    expect(result.pACC).toBeCloseTo(numpy.pACC, 10);
  });

  test('nothing labelled: NaN figures, no class IoU', () => {
    const result = scoreLabelMaps([{ prediction: Uint8Array.from([0, 1]), label: Uint8Array.from([255, 255]) }],
      { classes: ['a', 'b'] });
    expect(result).toMatchObject({ mIoU: NaN, mIoULabelled: NaN, pACC: NaN, iou: [null, null], pixels: 0 });
  });

  test.each([
    ['no classes', [], { classes: [] }, /^Expected a non-empty Array of class names for options\.classes/],
    ['a class twice', [], { classes: ['a', 'a'] }, /^Expected a class name not given before for options\.classes\[1\]/],
    ['a bad ignore value', [], { classes: ['a'], ignore: 70000 },
      /^Expected an integer between 0 and 65535 for options\.ignore but received 70000/],
    ['maps of two sizes', [{ prediction: new Uint8Array(2), label: new Uint8Array(3) }], { classes: ['a'] },
      /^pairs\[0\]: Expected a prediction of 3 pixels, as its label map, but received 2$/],
    ['a label out of range', [{ prediction: new Uint8Array(1), label: Uint8Array.from([4]) }], { classes: ['a'] },
      /^pairs\[0\]: Label value 4 at pixel 0 is neither a class in \[0, 0\] nor the ignore value 255$/],
  ])('BAD CALL - %s', (_, pairs, options, message) => {
    expect(() => scoreLabelMaps(pairs, options as { classes: string[] })).toThrow(message);
    expect(() => scoreLabelMaps(pairs, options as { classes: string[] }))
      .toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARG }));
  });
});

describe('pairFiles', () => {
  let images: string;
  let labels: string;
  beforeAll(async () => {
    images = path.join(tmp(), 'pair-images');
    labels = path.join(tmp(), 'pair-labels');
    fs.mkdirSync(images);
    fs.mkdirSync(labels);
    for (const name of ['b.jpg', 'a.PNG', 'c.jpeg', 'notes.txt']) fs.writeFileSync(path.join(images, name), '');
    for (const name of ['a.png', 'b.tif', 'c.tiff', 'readme.md']) fs.writeFileSync(path.join(labels, name), '');
    fs.mkdirSync(path.join(images, 'sub.png'));
  });

  test('pairs by stem, in order of stem, skipping other files and folders', async () => {
    await expect(pairFiles(images, labels)).resolves.toEqual([
      { image: path.join(images, 'a.PNG'), label: path.join(labels, 'a.png'), id: 'a' },
      { image: path.join(images, 'b.jpg'), label: path.join(labels, 'b.tif'), id: 'b' },
      { image: path.join(images, 'c.jpeg'), label: path.join(labels, 'c.tiff'), id: 'c' },
    ]);
    await expect(pairFiles(images, labels, { limit: 2 })).resolves.toHaveLength(2);
  });

  test("pairBy 'labels' leaves out images without a label map; 'images' refuses them, naming both paths", async () => {
    const extra = path.join(tmp(), 'pair-extra');
    fs.mkdirSync(extra);
    for (const name of ['a.jpg', 'b.jpg', 'z.jpg']) fs.writeFileSync(path.join(extra, name), '');
    await expect(pairFiles(extra, labels, { pairBy: 'labels', limit: 2 })).resolves.toEqual([
      { image: path.join(extra, 'a.jpg'), label: path.join(labels, 'a.png'), id: 'a' },
      { image: path.join(extra, 'b.jpg'), label: path.join(labels, 'b.tif'), id: 'b' },
    ]);
    await expect(pairFiles(extra, labels, { pairBy: 'labels' })).rejects.toThrow(
      `No image for the label map ${path.join(labels, 'c.tiff')}: expected ${path.join(extra, 'c')} with one of .jpg`);
    const error = await pairFiles(extra, labels).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SanError);
    expect(error).toMatchObject({
      code: ErrorCode.INVALID_ARG,
      message: `No label map for the image ${path.join(extra, 'z.jpg')}: expected ${path.join(labels, 'z')}.png, ` +
        '.tif or .tiff',
    });
  });

  test('EXPECTED FAILURE - an empty folder, a missing one, and two files with one stem', async () => {
    const empty = path.join(tmp(), 'pair-empty');
    fs.mkdirSync(empty);
    await expect(pairFiles(empty, labels)).rejects.toThrow(
      new RegExp(`^The folder ${empty} holds no images \\(files ending \\.jpg, \\.jpeg, \\.png`));
    await expect(pairFiles(images, empty, { pairBy: 'labels' })).rejects.toThrow(/holds no label maps \(files ending \.png, \.tif, \.tiff\)/);
    const missing = path.join(tmp(), 'no-such-folder');
    await expect(pairFiles(missing, labels)).rejects.toThrow(new RegExp(`^Could not list the images in ${missing}: ENOENT`));
    const twice = path.join(tmp(), 'pair-twice');
    fs.mkdirSync(twice);
    fs.writeFileSync(path.join(twice, 'a.png'), '');
    fs.writeFileSync(path.join(twice, 'a.tif'), '');
    await expect(pairFiles(images, twice)).rejects.toThrow(/^Two label maps share the stem 'a': .*a\.(png|tif) and .*a\.(png|tif)/);
  });

  test.each([
    ['pairBy', { pairBy: 'both' }, /^Expected one of: images, labels for options\.pairBy but received 'both'/],
    ['limit', { limit: 0 }, /^Expected a positive integer for options\.limit but received 0/],
  ])('BAD CALL - %s', async (_, options, message) => {
    await expect(pairFiles(images, labels, options as object)).rejects.toThrow(message);
  });
});

describe('evaluate on the tiny model', () => {
  let model: SanModel;
  let images: string;
  let labels: string;
  /** [stem, image size, label size, ignored pixels] */
  const dataset = [
    ['beach', [48, 64], [48, 64], 0],
    ['cove', [40, 30], [40, 30], 5],
    ['dune', [33, 50], [33, 50], 50],
  ] as const;

  beforeAll(async () => {
    model = await SanModel.load(tinyModelDir, { device: 'cpu', threads: 1 });
    images = path.join(tmp(), 'images');
    labels = path.join(tmp(), 'labels');
    fs.mkdirSync(images);
    fs.mkdirSync(labels);
    for (const [stem, [h, w], [lh, lw], ignored] of dataset) {
      await bandsImage(h, w).toFormat(stem === 'cove' ? 'jpeg' : 'png').toFile(path.join(images, `${stem}.${stem === 'cove' ? 'jpg' : 'png'}`));
      await writeLabels(path.join(labels, `${stem}.png`), bandLabels(lh, lw, ignored), lw);
    }
  });
  afterAll(async () => {
    await model?.dispose();
  });

  /** The same figures computed independently: segment() one image at a time, then ConfusionMatrix.add. */
  async function independently(pairs: EvaluationPair[]): Promise<ConfusionMatrix> {
    const matrix = new ConfusionMatrix(CLASSES.length);
    for (const pair of pairs) {
      const { data } = await readLabelMap(pair.label);
      const result = await model.segment(pair.image, { classes: CLASSES });
      matrix.add(result.labels.data, data);
    }
    return matrix;
  }

  test('equals segment() + ConfusionMatrix over the same pairs; figures are percentages', async () => {
    const records: ImageCounts[] = [];
    const result = await evaluate(model, { images, labels }, {
      classes: CLASSES, onImage: (record) => { records.push(record); },
    });
    const expected = await independently(await pairFiles(images, labels));
    expect(result.matrix.counts).toEqual(expected.counts);
    const metrics = expected.metrics();
    expect(result).toMatchObject({ mIoU: metrics.mIoU, fwIoU: metrics.fwIoU, mACC: metrics.mACC, pACC: metrics.pACC });
    expect(result.iou).toEqual(metrics.iou);
    for (const figure of [result.mIoU, result.fwIoU, result.mACC, result.pACC, result.mIoULabelled]) {
      expect(figure).toBeGreaterThanOrEqual(0);
      expect(figure).toBeLessThanOrEqual(100);
    }
    const pixels = dataset.reduce((sum, [, , [lh, lw], ignored]) => sum + lh * lw - ignored, 0);
    expect(result).toMatchObject({ images: 3, pixels, classes: CLASSES });
    expect(Object.keys(result.iouByClass)).toEqual(CLASSES);
    // One record per image, in order, whose counts add up to the matrix.
    expect(records.map((record) => record.image)).toEqual(['beach', 'cove', 'dune']);
    const summed = new Float64Array(CLASSES.length ** 2);
    for (const { counts } of records) for (const [p, t, n] of counts) summed[p * CLASSES.length + t] += n;
    expect(summed).toEqual(result.matrix.counts);
  });

  test('resuming from the records of a partial run gives the same figures as one full run', async () => {
    const full = await evaluate(model, { images, labels }, { classes: CLASSES, concurrency: 1 });
    const first: ImageCounts[] = [];
    await evaluate(model, { images, labels }, { classes: CLASSES, limit: 2, onImage: (r) => { first.push(r); } });
    expect(first.map((r) => r.image)).toEqual(['beach', 'cove']);
    const segmented: string[] = [];
    const resumed = await evaluate(model, { images, labels }, {
      classes: CLASSES, previous: [...first, { image: 'elsewhere', counts: [[0, 0, 99]] }],
      onImage: (record) => { segmented.push(record.image); },
    });
    expect(segmented).toEqual(['dune']); // the others came from the records; 'elsewhere' is not in this evaluation
    expect(resumed.matrix.counts).toEqual(full.matrix.counts);
    expect(resumed).toMatchObject({ mIoU: full.mIoU, fwIoU: full.fwIoU, mACC: full.mACC, pACC: full.pACC, images: 3 });
  });

  test('a list of pairs, with ids, and the 16-bit TIFF labels of ADE-847', async () => {
    const tiff = path.join(tmp(), 'beach16.tif');
    const [, , [lh, lw]] = dataset[0];
    await writeLabels(tiff, bandLabels(lh, lw, 10).map((v) => (v === 255 ? 65535 : v)), lw, 'tiff16');
    const pairs = [{ image: path.join(images, 'beach.png'), label: tiff, id: 'first' }];
    const result = await evaluate(model, pairs, { classes: CLASSES });
    const png = await evaluate(model, [{ image: path.join(images, 'beach.png'), label: path.join(labels, 'beach.png') }],
      { classes: CLASSES });
    expect(result.pixels).toBe(lh * lw - 10);
    expect(png.pixels).toBe(lh * lw);
    expect(result.images).toBe(1);
  });

  test('EXPECTED FAILURE - a label value out of range names the file, the pixel and the value', async () => {
    const bad = path.join(tmp(), 'bad-labels');
    fs.cpSync(labels, bad, { recursive: true });
    const values = bandLabels(40, 30);
    values[3 * 30 + 7] = 9;
    await writeLabels(path.join(bad, 'cove.png'), values, 30);
    const counted: string[] = [];
    const error = await evaluate(model, { images, labels: bad }, {
      classes: CLASSES, onImage: (record) => { counted.push(record.image); },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SanError);
    expect(error).toMatchObject({ code: ErrorCode.IMAGE });
    expect((error as Error).message).toBe(`The label map ${path.join(bad, 'cove.png')} has the value 9 at x 7, y 3, ` +
      'neither a class index in [0, 2] nor the ignore value 255 (is the class list complete, and is the ignore value right?)');
    expect(counted).toEqual(['beach']); // images before the bad one were scored; none after
  });

  test('EXPECTED FAILURE - a label map of another size than its image names both files and sizes', async () => {
    const small = path.join(tmp(), 'small-labels');
    fs.cpSync(labels, small, { recursive: true });
    await writeLabels(path.join(small, 'dune.png'), bandLabels(33, 49), 49);
    const error = await evaluate(model, { images, labels: small }, { classes: CLASSES }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SanError);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_ARG });
    expect((error as Error).message).toBe(`The image ${path.join(images, 'dune.png')} is 50×33 pixels but its label ` +
      `map ${path.join(small, 'dune.png')} is 49×33: a label map must have its image's size`);
  });

  test('EXPECTED FAILURE - an image without its label map, an unreadable image', async () => {
    const partial = path.join(tmp(), 'partial-labels');
    fs.mkdirSync(partial);
    fs.copyFileSync(path.join(labels, 'beach.png'), path.join(partial, 'beach.png'));
    await expect(evaluate(model, { images, labels: partial }, { classes: CLASSES })).rejects.toThrow(
      `No label map for the image ${path.join(images, 'cove.jpg')}: expected ${path.join(partial, 'cove')}.png, .tif or .tiff`);
    const corrupt = path.join(tmp(), 'corrupt.jpg');
    fs.writeFileSync(corrupt, 'not a JPEG');
    const error = await evaluate(model, [{ image: corrupt, label: path.join(labels, 'beach.png') }], { classes: CLASSES })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'SanError', code: ErrorCode.IMAGE });
    expect((error as Error).message).toMatch(new RegExp(`^${corrupt}: Could not read input as an image: `));
  });

  test.each([
    ['options', null, /^Expected an object with classes for options but received null/],
    ['concurrency', { classes: CLASSES, concurrency: 0 }, /^Expected an integer between 1 and 1024 for options\.concurrency/],
    ['onImage', { classes: CLASSES, onImage: 'log' }, /^Expected a function for options\.onImage but received 'log'/],
    ['previous', { classes: CLASSES, previous: [{ image: 'beach', counts: [[0, 3, 1]] }] },
      /^Expected \[predicted, true, pixels\] with classes in \[0, 2\] for options\.previous\[0\]\.counts\[0\] but received '\[0,3,1\]'/],
    ['a duplicate class', { classes: ['sky', 'sky'] }, /for options\.classes\[1\]/],
  ])('BAD CALL - %s', async (_, options, message) => {
    const error = await evaluate(model, { images, labels }, options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_ARG });
  });

  test('BAD CALL - input that is neither folders nor pairs; pairs sharing an id', async () => {
    await expect(evaluate(model, 'images' as never, { classes: CLASSES })).rejects.toThrow(
      /^Expected \{ images, labels \} folders or an iterable of \{ image, label \} pairs for input/);
    const pair = { image: path.join(images, 'beach.png'), label: path.join(labels, 'beach.png') };
    await expect(evaluate(model, [pair, pair], { classes: CLASSES })).rejects.toThrow(
      /^Expected an id no other pair has .* for input\[1\]\.id but received 'beach'/);
    await expect(evaluate(model, [], { classes: CLASSES })).rejects.toThrow(/the list of pairs is empty/);
  });
});
