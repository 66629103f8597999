// SPDX-License-Identifier: Apache-2.0
/**
 * Benchmark evaluation: a model over a folder of images and their label maps, scored as detectron2's
 * `SemSegEvaluator` scores it (mIoU, fwIoU, mACC, pACC and per-class IoU), so that figures compare with SAN's.
 *
 * Images are paired with label maps by file stem. The images stream through `model.segmentMany`: several are in
 * flight at once, so decoding overlaps inference and images of one shape batch, and each is segmented at the model's
 * scale with its prediction produced at its own size, as SAN's evaluation does. Label maps are read as they are
 * (8- or 16-bit greyscale PNG or TIFF, as the reference's preparation scripts write them) and must have their
 * image's size. Results are counted in input order. Without a model, {@link scoreLabelMaps} scores label maps
 * already in memory.
 * @module
 */
import { Dirent, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp, { Metadata, OutputInfo } from 'sharp';
import { ErrorCode, SanError, withCode } from '../errors';
import * as is from '../is';
import { ConfusionMatrix, LabelArray, SegmentationMetrics } from './metrics';
import type { SanModel, SegmentOptions } from '../segment/model';
import type { SegmentResult } from '../segment/result';

/** An image file and its label map file. */
export interface EvaluationPair {
  /** Path of the image, any format sharp reads. */
  readonly image: string;
  /** Path of the label map: a greyscale PNG or TIFF of class indices, 8- or 16-bit. */
  readonly label: string;
  /** The key of the image in {@link ImageCounts} records. @defaultValue the image's file stem */
  readonly id?: string;
}

/** Two folders whose files pair up by stem: `images/x.jpg` with `labels/x.png` (or `.tif`, `.tiff`). */
export interface EvaluationFolders {
  readonly images: string;
  readonly labels: string;
}

/**
 * Which folder lists the images to evaluate: `'images'` (every image needs a label map) or `'labels'` (every label
 * map needs an image; other images are left out, as for VOC, whose JPEGImages also holds the training images).
 */
export type PairBy = 'images' | 'labels';

/** Options of {@link pairFiles}. */
export interface PairFilesOptions {
  /** The folder whose files are evaluated. @defaultValue `'images'` */
  pairBy?: PairBy;
  /** Evaluate only the first `limit` pairs, in order of stem (1 or more). @defaultValue all */
  limit?: number;
}

/** One image's confusion counts: how many pixels of true class `t` were predicted as class `p`. */
export interface ImageCounts {
  /** The pair's id: the image's file stem unless given. */
  readonly image: string;
  /** Sparse `[p, t, pixels]` triples, sorted by `p`, then `t`; ignored pixels are not counted. */
  readonly counts: readonly (readonly [number, number, number])[];
}

/** Options of {@link evaluate}: those of `SanModel.segment` (classes, templates, ...), and these. */
export interface EvaluateOptions extends Omit<SegmentOptions, 'outputSize' | 'scores' | 'proposals'>, PairFilesOptions {
  /**
   * The label value of pixels left out of the scores, 0 to 65535.
   * @defaultValue 255 for 8-bit label maps, 65535 for 16-bit ones (as the reference registers ADE-847 and PC-459)
   */
  ignore?: number;
  /** Images decoded or segmented at once, 1 to 1024. @defaultValue `4` */
  concurrency?: number;
  /**
   * Counts from an earlier run (from `onImage`): images with these ids are not segmented again and their counts
   * are added, so an interrupted evaluation resumes. Records for ids outside this evaluation are left out.
   */
  previous?: Iterable<ImageCounts>;
  /** Called with each image's counts as it is scored, in input order; awaited before the next is counted. */
  onImage?: (record: ImageCounts, pair: EvaluationPair) => void | Promise<void>;
}

/** What {@link evaluate} and {@link scoreLabelMaps} resolve to; figures are percentages. */
export interface EvaluationResult extends SegmentationMetrics {
  /**
   * Mean IoU over the classes present in the labels only: detectron2's definition since July 2022, which the
   * official SAN logs print. `mIoU` (detectron2 v0.6, which SAN's install.sh pins) also counts classes only
   * predicted, as 0. See docs/evaluation.md.
   */
  mIoULabelled: number;
  /** The class names, in label-value order. */
  classes: readonly string[];
  /** IoU of each class by name; null for a class absent from the labels. */
  iouByClass: Record<string, number | null>;
  /** Accuracy of each class by name; null for a class absent from the labels. */
  accByClass: Record<string, number | null>;
  /** Images scored, resumed ones included. */
  images: number;
  /** Labelled (not ignored) pixels scored. */
  pixels: number;
  /** The accumulated counts. */
  matrix: ConfusionMatrix;
}

/** A label map read from a file. */
export interface LabelMapFile {
  /** Row-major class indices, `height × width`. */
  readonly data: Uint8Array | Uint16Array;
  readonly height: number;
  readonly width: number;
  /** Bits per value in the file. */
  readonly bits: 8 | 16;
  /** The ignore value in effect for this file. */
  readonly ignore: number;
}

/** Options of {@link readLabelMap}. */
export interface ReadLabelMapOptions {
  /** The ignore value. @defaultValue 255 for an 8-bit file, 65535 for a 16-bit one */
  ignore?: number;
  /** When given, every value must be below it or be the ignore value. */
  numClasses?: number;
}

export const EVALUATE_DEFAULTS = Object.freeze({
  pairBy: 'images' as PairBy,
  concurrency: 4,
  ignore8: 255,
  ignore16: 65535,
});

/** What the reference's preparation scripts write label maps as: PNG (8-bit) and TIFF (16-bit). */
export const LABEL_EXTENSIONS: readonly string[] = Object.freeze(['.png', '.tif', '.tiff']);
/** Image files {@link pairFiles} lists. */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(
  ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);
const PAIR_BY: readonly PairBy[] = ['images', 'labels'];
const MAX_CONCURRENCY = 1024;
const MAX_LABEL = 65535;

/**
 * Pairs the files of two folders by stem, in order of stem.
 * @param images - folder of images (.jpg, .jpeg, .png, .webp, .tif, .tiff, .gif, .avif); subfolders are not read.
 * @param labels - folder of label maps (.png, .tif, .tiff).
 * @param options - `pairBy`: which folder's files are evaluated; `limit`: only the first pairs.
 * @returns the pairs, each with its stem as `id`.
 * @throws TypeError or RangeError for bad options; SanError ERR_SAN_INVALID_ARG for a folder that cannot be read or
 *   lists no files, two files with one stem in a folder, or a file without its partner (naming both paths).
 * @example
 * ```ts
 * const pairs = await pairFiles('ADEChallengeData2016/images/validation',
 *   'ADEChallengeData2016/annotations_detectron2/validation');
 * ```
 * @example
 * ```ts
 * const voc = await pairFiles('VOC2012/JPEGImages', 'VOC2012/annotations_detectron2/val', { pairBy: 'labels' });
 * ```
 */
export async function pairFiles(images: string, labels: string, options: PairFilesOptions = {}): Promise<EvaluationPair[]> {
  if (!is.string(images) || images.length === 0) throw is.invalidParameterError('images', 'a folder path', images);
  if (!is.string(labels) || labels.length === 0) throw is.invalidParameterError('labels', 'a folder path', labels);
  const { pairBy, limit } = checkPairOptions(options);
  const [imageFiles, labelFiles] = await Promise.all([
    listByStem(images, IMAGE_EXTENSIONS, 'images'),
    listByStem(labels, LABEL_EXTENSIONS, 'label maps'),
  ]);
  const [driver, driverDir, kind] = pairBy === 'images'
    ? [imageFiles, images, 'images'] as const
    : [labelFiles, labels, 'label maps'] as const;
  if (driver.size === 0) {
    const extensions = pairBy === 'images' ? IMAGE_EXTENSIONS : LABEL_EXTENSIONS;
    throw new SanError(ErrorCode.INVALID_ARG,
      `The folder ${path.resolve(driverDir)} holds no ${kind} (files ending ${extensions.join(', ')})`);
  }
  const stems = [...driver.keys()].sort(compareStems).slice(0, limit);
  return stems.map((stem) => {
    const image = imageFiles.get(stem);
    const label = labelFiles.get(stem);
    if (image === undefined) {
      throw new SanError(ErrorCode.INVALID_ARG, `No image for the label map ${label}: expected ` +
        `${path.join(path.resolve(images), stem)} with one of ${IMAGE_EXTENSIONS.join(', ')}`);
    }
    if (label === undefined) {
      throw new SanError(ErrorCode.INVALID_ARG, `No label map for the image ${image}: expected ` +
        `${path.join(path.resolve(labels), stem)}.png, .tif or .tiff`);
    }
    return { image, label, id: stem };
  });
}

/**
 * Reads a label map: a greyscale PNG or TIFF, 8- or 16-bit, of class indices (an RGB file whose three channels are
 * equal is read as greyscale). Palette PNGs are refused: sharp reads their colours, not their indices.
 * @param file - the file's path.
 * @param options - the ignore value, and the number of classes to check the values against.
 * @throws SanError ERR_SAN_IMAGE naming the file when it cannot be read or decoded, is not a greyscale map, or
 *   (with `numClasses`) holds a value that is neither a class nor the ignore value, naming its pixel.
 * @example
 * ```ts
 * const { data, height, width } = await readLabelMap('annotations_detectron2/validation/ADE_val_00000001.png');
 * ```
 * @example
 * ```ts
 * const ade847 = await readLabelMap('ADE_frame_00000001.tif', { numClasses: 847 }); // ignore 65535
 * ```
 */
export async function readLabelMap(file: string, options: ReadLabelMapOptions = {}): Promise<LabelMapFile> {
  if (!is.string(file) || file.length === 0) throw is.invalidParameterError('file', 'a file path', file);
  const label = await decodeLabelMap(file, options.ignore);
  if (options.numClasses !== undefined) checkLabelValues(file, label, options.numClasses);
  return label;
}

/**
 * Scores predicted label maps against true ones without a model: the metric path of {@link evaluate}.
 * @param pairs - each `prediction` and `label` a row-major map of the same size (any integer typed array).
 * @param options - `classes`, the class names in label-value order; `ignore`, the label value left out.
 * @returns the metrics and per-class figures over all pairs.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for bad options, maps of different sizes, or a value that
 *   is not a class nor the ignore value.
 * @example
 * ```ts
 * const { mIoU, iouByClass } = scoreLabelMaps([{ prediction, label }], { classes: ['sky', 'sea'] });
 * ```
 * @example
 * ```ts
 * const result = scoreLabelMaps(maps, { classes: ade847, ignore: 65535 });
 * ```
 */
export function scoreLabelMaps(pairs: Iterable<{ prediction: LabelArray; label: LabelArray }>,
  options: { classes: readonly string[]; ignore?: number }): EvaluationResult {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object with classes', options);
  const classes = checkClassNames(options.classes);
  const ignore = checkIgnore(options.ignore) ?? EVALUATE_DEFAULTS.ignore8;
  const matrix = new ConfusionMatrix(classes.length, ignore);
  let images = 0;
  for (const { prediction, label } of pairs) {
    try {
      matrix.add(prediction, label);
    } catch (error) {
      throw withCode(new RangeError(`pairs[${images}]: ${(error as Error).message}`), ErrorCode.INVALID_ARG);
    }
    images += 1;
  }
  return evaluationResult(matrix, classes, images);
}

/**
 * Evaluates a model on images with label maps, as detectron2's SemSegEvaluator does for SAN's benchmarks.
 *
 * The images stream through `model.segmentMany` (`concurrency` in flight, batched by the model's batcher). Each is
 * segmented with `options` (at the model's scale: short side 640 for the official models), its prediction made at
 * its own size and compared with its label map, and the pixels counted into one confusion matrix. Any failure stops
 * the evaluation once the images in flight have settled: a score over part of a benchmark would mislead. Use
 * `onImage` and `previous` to resume instead of starting over.
 * @param model - a loaded {@link SanModel}.
 * @param input - `{ images, labels }` folders (paired by stem, see {@link pairFiles}) or a list of pairs.
 * @param options - `classes` (in label-value order) and the other options of `segment`; `ignore`, `limit`,
 *   `pairBy`, `concurrency`, `previous` and `onImage`.
 * @returns the metrics, per-class IoU and accuracy by name, and the confusion matrix.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for bad options; SanError ERR_SAN_INVALID_ARG for a folder
 *   problem, a missing label map or a label map of another size than its image; SanError ERR_SAN_IMAGE for a file that cannot be read or a label value that is
 *   neither a class nor the ignore value (naming the file, the pixel and the value); the model's errors.
 * @example
 * ```ts
 * const classes = fs.readFileSync('assets/classes/ade150.txt', 'utf8').split('\n').filter(Boolean);
 * const result = await evaluate(model, {
 *   images: 'datasets/ADEChallengeData2016/images/validation',
 *   labels: 'datasets/ADEChallengeData2016/annotations_detectron2/validation',
 * }, { classes });
 * console.log(result.mIoU, result.iouByClass.wall);
 * ```
 * @example
 * ```ts
 * // Resumable: keep each image's counts, and pass them back after an interruption.
 * const done: ImageCounts[] = loadSomewhere();
 * await evaluate(model, pairs, { classes, previous: done, onImage: (record) => saveSomewhere(record) });
 * ```
 */
export async function evaluate(model: SanModel, input: Iterable<EvaluationPair> | EvaluationFolders,
  options: EvaluateOptions): Promise<EvaluationResult> {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object with classes', options);
  const {
    ignore: ignoreOption, limit: _limit, pairBy: _pairBy, concurrency: concurrencyOption, previous, onImage,
    // Not evaluate's to set, even from JavaScript: the prediction must have its image's size, and only labels count.
    outputSize: _outputSize, scores: _scores, proposals: _proposals,
    ...segmentOptions
  } = options as EvaluateOptions & Pick<SegmentOptions, 'outputSize' | 'scores' | 'proposals'>;
  const classes = checkClassNames(options.classes);
  const ignore = checkIgnore(ignoreOption);
  const concurrency = concurrencyOption ?? EVALUATE_DEFAULTS.concurrency;
  if (!is.integer(concurrency) || !is.inRange(concurrency, 1, MAX_CONCURRENCY)) {
    throw is.invalidParameterError('options.concurrency', `an integer between 1 and ${MAX_CONCURRENCY}`,
      concurrencyOption, 'range');
  }
  if (onImage !== undefined && typeof onImage !== 'function') {
    throw is.invalidParameterError('options.onImage', 'a function', onImage);
  }
  const pairs = await resolvePairs(input, options);
  const matrix = new ConfusionMatrix(classes.length, ignore ?? EVALUATE_DEFAULTS.ignore8);
  const done = addPrevious(matrix, previous, new Set(pairs.map((pair) => pair.id)));
  const todo = pairs.filter((pair) => !done.has(pair.id));
  const counter = new SparseCounter(classes.length);
  // Each label map is read while its image is decoded and segmented; segmentMany pulls the images as it has room,
  // so the reads stay as far ahead as the images in flight.
  const labels: Promise<Settled<LabelMapFile>>[] = [];
  async function* images(): AsyncGenerator<string> {
    for (const pair of todo) {
      labels.push(settle(readLabelMap(pair.label, { ignore, numClasses: classes.length })));
      yield pair.image;
    }
  }
  try {
    for await (const item of model.segmentMany(images(), { ...segmentOptions, concurrency })) {
      const pair = todo[item.index];
      const label = unsettle(await (labels.shift() as Promise<Settled<LabelMapFile>>));
      if (item.error !== undefined) throw withImagePath(item.error, pair.image);
      const prediction = (item.result as SegmentResult).labels;
      const [height, width] = prediction.dims;
      if (height !== label.height || width !== label.width) {
        throw new SanError(ErrorCode.INVALID_ARG, `The image ${pair.image} is ${width}×${height} pixels but its ` +
          `label map ${pair.label} is ${label.width}×${label.height}: a label map must have its image's size`);
      }
      const record = { image: pair.id, counts: counter.count(prediction.data, label) };
      for (const [p, t, pixels] of record.counts) matrix.counts[p * classes.length + t] += pixels;
      await onImage?.(record, pair);
    }
  } finally {
    await Promise.all(labels);
  }
  return evaluationResult(matrix, classes, done.size + todo.length);
}

type Settled<T> = { value: T } | { error: unknown };

/** A promise that always fulfils, so that a failure waiting its turn is never an unhandled rejection. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then((value) => ({ value }), (error: unknown) => ({ error }));
}

function unsettle<T>(settled: Settled<T>): T {
  if ('error' in settled) throw settled.error;
  return settled.value;
}

/** The model's error for an image, with the image's path in front: which of thousands failed matters. */
function withImagePath(error: Error, image: string): Error {
  return error instanceof SanError ? new SanError(error.code, `${image}: ${error.message}`) : error;
}

/** The figures of a matrix, with the per-class ones keyed by class name. */
function evaluationResult(matrix: ConfusionMatrix, classes: readonly string[], images: number): EvaluationResult {
  const metrics = matrix.metrics();
  const labelled = metrics.iou.filter((iou): iou is number => iou !== null);
  return {
    ...metrics,
    mIoULabelled: labelled.length > 0 ? labelled.reduce((a, b) => a + b, 0) / labelled.length : NaN,
    classes,
    iouByClass: Object.fromEntries(classes.map((name, c) => [name, metrics.iou[c]])),
    accByClass: Object.fromEntries(classes.map((name, c) => [name, metrics.acc[c]])),
    images,
    pixels: matrix.counts.reduce((a, b) => a + b, 0),
    matrix,
  };
}

/** The pairs of `input`, each with its id, after `options.limit`. */
async function resolvePairs(input: Iterable<EvaluationPair> | EvaluationFolders,
  options: PairFilesOptions): Promise<Required<EvaluationPair>[]> {
  if (is.plainObject(input) && !(Symbol.iterator in input)) {
    const { images, labels } = input as unknown as EvaluationFolders;
    if (!is.string(images)) throw is.invalidParameterError('input.images', 'a folder path', images);
    if (!is.string(labels)) throw is.invalidParameterError('input.labels', 'a folder path', labels);
    return (await pairFiles(images, labels, options)) as Required<EvaluationPair>[];
  }
  if (input === null || typeof input !== 'object' || !(Symbol.iterator in input)) {
    throw is.invalidParameterError('input', '{ images, labels } folders or an iterable of { image, label } pairs', input);
  }
  const { limit } = checkPairOptions(options);
  const pairs: Required<EvaluationPair>[] = [];
  const ids = new Set<string>();
  for (const pair of input as Iterable<EvaluationPair>) {
    const name = `input[${pairs.length}]`;
    if (!is.plainObject(pair)) throw is.invalidParameterError(name, 'an object { image, label }', pair);
    if (!is.string(pair.image) || pair.image.length === 0) {
      throw is.invalidParameterError(`${name}.image`, 'an image file path', pair.image);
    }
    if (!is.string(pair.label) || pair.label.length === 0) {
      throw is.invalidParameterError(`${name}.label`, 'a label map file path', pair.label);
    }
    const id = pair.id ?? path.parse(pair.image).name;
    if (!is.string(id)) throw is.invalidParameterError(`${name}.id`, 'a string', pair.id);
    if (ids.has(id)) {
      throw is.invalidParameterError(`${name}.id`, 'an id no other pair has (give each pair its own id)', id, 'range');
    }
    ids.add(id);
    pairs.push({ image: pair.image, label: pair.label, id });
    if (limit !== undefined && pairs.length >= limit) break;
  }
  if (pairs.length === 0) throw new SanError(ErrorCode.INVALID_ARG, 'No image to evaluate: the list of pairs is empty');
  return pairs;
}

/** Adds the counts of earlier records for the ids in `wanted`; returns the ids they cover. */
function addPrevious(matrix: ConfusionMatrix, previous: Iterable<ImageCounts> | undefined,
  wanted: ReadonlySet<string>): Set<string> {
  const done = new Set<string>();
  if (previous === undefined) return done;
  if (previous === null || typeof previous !== 'object' || !(Symbol.iterator in previous)) {
    throw is.invalidParameterError('options.previous', 'an iterable of { image, counts } records', previous);
  }
  const n = matrix.numClasses;
  let i = 0;
  for (const record of previous) {
    const name = `options.previous[${i}]`;
    i += 1;
    if (!is.plainObject(record) || !is.string(record.image) || !Array.isArray(record.counts)) {
      throw is.invalidParameterError(name, 'a record { image, counts }', record);
    }
    record.counts.forEach((triple: unknown, k) => {
      const valid = Array.isArray(triple) && triple.length === 3 && triple.every(is.integer) &&
        is.inRange(triple[0], 0, n - 1) && is.inRange(triple[1], 0, n - 1) && triple[2] >= 0;
      if (!valid) {
        throw is.invalidParameterError(`${name}.counts[${k}]`, `[predicted, true, pixels] with classes in [0, ${n - 1}]`,
          JSON.stringify(triple), 'range');
      }
    });
    if (!wanted.has(record.image) || done.has(record.image)) continue;
    done.add(record.image);
    for (const [p, t, pixels] of record.counts) matrix.counts[p * n + t] += pixels;
  }
  return done;
}

/** Counts (predicted, true) pairs of one image into a reused dense scratch, and reads them out sparsely. */
class SparseCounter {
  readonly #n: number;
  readonly #scratch: Uint32Array;

  constructor(numClasses: number) {
    this.#n = numClasses;
    this.#scratch = new Uint32Array(numClasses * numClasses);
  }

  /** The triples of one image; the label's values were checked when it was read. */
  count(prediction: Uint16Array, label: LabelMapFile): [number, number, number][] {
    const n = this.#n;
    const { data, ignore } = label;
    if (prediction.length !== data.length) {
      throw new SanError(ErrorCode.RUNTIME, `The prediction has ${prediction.length} pixels, its label map ${data.length}`);
    }
    const touched: number[] = [];
    for (let p = 0; p < data.length; p += 1) {
      const truth = data[p];
      if (truth === ignore) continue;
      const predicted = prediction[p];
      if (predicted >= n) throw new SanError(ErrorCode.RUNTIME, `The model predicted class ${predicted} of ${n}`);
      const key = predicted * n + truth;
      if (this.#scratch[key] === 0) touched.push(key);
      this.#scratch[key] += 1;
    }
    touched.sort((a, b) => a - b);
    return touched.map((key) => {
      const pixels = this.#scratch[key];
      this.#scratch[key] = 0;
      return [Math.floor(key / n), key % n, pixels];
    });
  }
}

async function decodeLabelMap(file: string, ignoreOption: number | undefined): Promise<LabelMapFile> {
  const fail = (problem: string): SanError => new SanError(ErrorCode.IMAGE, `Could not read the label map ${file}: ${problem}`);
  let metadata: Metadata;
  try {
    metadata = await sharp(file, { failOn: 'error' }).metadata();
  } catch (error) {
    throw fail((error as Error).message);
  }
  const { depth, channels = 0, hasAlpha, isPalette, width = 0, height = 0 } = metadata;
  const colours = channels - (hasAlpha ? 1 : 0);
  if (isPalette) {
    throw fail('it is a palette (indexed-colour) PNG, whose indices sharp cannot read; write the class indices as ' +
      'greyscale, as the reference\'s datasets/prepare_*.py scripts do');
  }
  if ((depth !== 'uchar' && depth !== 'ushort') || (colours !== 1 && colours !== 3)) {
    throw fail(`expected 8- or 16-bit greyscale pixels, but it has ${channels} channels of ${depth} values`);
  }
  const bits = depth === 'ushort' ? 16 : 8;
  // Name the colourspace of the file's own depth: sharp otherwise makes 16-bit grey 8-bit sRGB.
  const space = colours === 1 ? (bits === 16 ? 'grey16' : 'b-w') : (bits === 16 ? 'rgb16' : 'srgb');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(file, { failOn: 'error' }).removeAlpha().toColourspace(space)
      .raw({ depth }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw fail((error as Error).message);
  }
  const { data, info } = raw;
  const values = bits === 16
    ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
    : new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (info.channels !== colours || values.length !== width * height * colours) {
    throw fail(`sharp decoded ${info.channels} channels of ${info.width}×${info.height}, not ${colours} of ${width}×${height}`);
  }
  const grey = colours === 1 ? values : equalChannels(values, width, (x, y, rgb) =>
    fail(`it has colour pixels, e.g. (${rgb.join(', ')}) at x ${x}, y ${y}; expected greyscale class indices`));
  const ignore = ignoreOption ?? (bits === 16 ? EVALUATE_DEFAULTS.ignore16 : EVALUATE_DEFAULTS.ignore8);
  return { data: grey, height, width, bits, ignore };
}

/** The first channel of interleaved RGB values whose three channels must be equal. */
function equalChannels<A extends Uint8Array | Uint16Array>(values: A, width: number,
  fail: (x: number, y: number, rgb: number[]) => Error): A {
  const grey = new (values.constructor as { new(length: number): A })(values.length / 3);
  for (let p = 0; p < grey.length; p += 1) {
    const [r, g, b] = [values[3 * p], values[3 * p + 1], values[3 * p + 2]];
    if (r !== g || r !== b) throw fail(p % width, Math.floor(p / width), [r, g, b]);
    grey[p] = r;
  }
  return grey;
}

function checkLabelValues(file: string, label: LabelMapFile, numClasses: number): void {
  const { data, ignore, width } = label;
  for (let p = 0; p < data.length; p += 1) {
    const value = data[p];
    if (value >= numClasses && value !== ignore) {
      throw new SanError(ErrorCode.IMAGE, `The label map ${file} has the value ${value} at x ${p % width}, y ` +
        `${Math.floor(p / width)}, neither a class index in [0, ${numClasses - 1}] nor the ignore value ${ignore} ` +
        '(is the class list complete, and is the ignore value right?)');
    }
  }
}

/** Files of `dir` with one of `extensions` (any case), by stem. */
async function listByStem(dir: string, extensions: readonly string[], kind: string): Promise<Map<string, string>> {
  const absolute = path.resolve(dir);
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(absolute, { withFileTypes: true });
  } catch (error) {
    throw new SanError(ErrorCode.INVALID_ARG, `Could not list the ${kind} in ${absolute}: ${(error as Error).message}`);
  }
  const byStem = new Map<string, string>();
  for (const entry of entries) {
    const { name, ext } = path.parse(entry.name);
    if (!(entry.isFile() || entry.isSymbolicLink()) || !extensions.includes(ext.toLowerCase())) continue;
    const file = path.join(absolute, entry.name);
    const other = byStem.get(name);
    if (other !== undefined) {
      throw new SanError(ErrorCode.INVALID_ARG, `Two ${kind} share the stem '${name}': ${other} and ${file}; ` +
        'keep one of them');
    }
    byStem.set(name, file);
  }
  return byStem;
}

/** Stems in code-unit order: the same on every platform and locale. */
function compareStems(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function checkPairOptions(options: PairFilesOptions): { pairBy: PairBy; limit: number | undefined } {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  const pairBy = options.pairBy ?? EVALUATE_DEFAULTS.pairBy;
  if (!is.inArray(pairBy, PAIR_BY)) {
    throw is.invalidParameterError('options.pairBy', `one of: ${PAIR_BY.join(', ')}`, options.pairBy, 'range');
  }
  const { limit } = options;
  if (limit !== undefined && (!is.integer(limit) || limit < 1)) {
    throw is.invalidParameterError('options.limit', 'a positive integer', limit, 'range');
  }
  return { pairBy, limit };
}

function checkIgnore(ignore: unknown): number | undefined {
  if (ignore === undefined) return undefined;
  if (!is.integer(ignore) || !is.inRange(ignore, 0, MAX_LABEL)) {
    throw is.invalidParameterError('options.ignore', `an integer between 0 and ${MAX_LABEL}`, ignore, 'range');
  }
  return ignore;
}

/** The class names; each must be unique, since the per-class figures are keyed by name. */
function checkClassNames(classes: unknown): readonly string[] {
  if (!Array.isArray(classes) || classes.length === 0) {
    throw is.invalidParameterError('options.classes', 'a non-empty Array of class names', classes);
  }
  const seen = new Set<string>();
  classes.forEach((name: unknown, i) => {
    if (!is.string(name)) throw is.invalidParameterError(`options.classes[${i}]`, 'a string', name);
    if (seen.has(name)) {
      throw is.invalidParameterError(`options.classes[${i}]`, 'a class name not given before', name, 'range');
    }
    seen.add(name);
  });
  return classes as string[];
}
