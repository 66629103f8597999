// SPDX-License-Identifier: Apache-2.0
/**
 * `SanModel`: open-vocabulary semantic segmentation with an exported SAN model folder.
 *
 * An image and a list of class names go in; a label map comes out. The class names are encoded by CLIP's text
 * tower (prompt templates, ensembled) through a cache; the image is decoded and resized by sharp; the network,
 * classification and post-processing run in one call on the model's device (san.pt's `segment` method), and only
 * what the caller asked for comes back.
 * @module
 */
import * as os from 'node:os';
import { Duplex } from 'node:stream';
import { checkSubmitOptions, DynamicBatcher, DynamicBatcherOptions, SubmitOptions } from './batcher';
import { Deadline } from './deadline';
import { ErrorCode, SanError } from '../errors';
import { FairGate } from './fair-gate';
import { ImageInput, modelScaleSize, readImage, RgbImage } from './image';
import * as is from '../is';
import { readModelDir, Manifest, ModelDir } from './model-dir';
import { binding, CudaMemory } from '../runtime/native';
import { cpuAllocatorStats, CpuAllocatorStats } from '../runtime/cpu-allocator';
import { ensembleTemplates, normalizeRows, promptsFor, splitSynonyms, TEMPLATE_SETS, TemplateSetName } from './prompts';
import { ENCODE_TEXT_OPTION_NAMES, SEGMENT_OPTION_NAMES } from './options';
import type { EncodeTextOptions, SegmentOptions, Synonyms, Templates } from './options';
export type { EncodeTextOptions, SegmentOptions, Synonyms, Templates } from './options';
import { checkOutputPixels, checkPromptCount, checkRequestBytes, RequestLimits } from './request-budget';
import { LabelMap, SegmentResult } from './result';
import { tensor, Tensor } from '../runtime/tensor';
import { TextCacheScope, TextEmbeddingCache, textEncoderId } from './text-cache';
import { ServingMetrics, ServingStats } from './serving-stats';
import { segmentMany, SegmentManyItem, SegmentManyOptions, segmentStream } from './stream';
import { TextCacheStats } from './text-cache';
import { ClipTokenizer } from './tokenizer';
import { Argument, ModelDtype, Result, TORCH_MODEL_OPTIONS, TorchModel, TorchModelOptions } from '../runtime/torch-model';

/** Options of {@link SanModel.load}, besides the runtime's (device, dtype, threads, queueLimit). */
export interface SanModelOptions extends TorchModelOptions {
  /**
   * The text-embedding cache: a {@link TextEmbeddingCache} (to share one between models), options for a new one,
   * or `false` for none.
   * @defaultValue a new cache of 64 MiB
   */
  textCache?: TextEmbeddingCache | { maxBytes?: number; file?: string } | false;
  /** Check every file's sha256 against the manifest while loading. @defaultValue `true` */
  verify?: boolean;
  /** The most pixels an input image may have (checked before decoding). @defaultValue `268402689` (16383²) */
  maxInputPixels?: number;
  /**
   * The most pixels a returned map may have (`outputSize`, or the input's own size); more is refused with
   * ERR_SAN_TOO_LARGE before the image is decoded. @defaultValue `33554432` (2^25, e.g. 8192×4096)
   */
  maxOutputPixels?: number;
  /**
   * The most memory, in bytes, one request is estimated to need (its input at model scale, its output maps, the
   * proposals upsampled to the output size, scores × classes); more is refused with ERR_SAN_TOO_LARGE before the
   * image is decoded. See docs/reliability.md for the estimate. Labels-only output still holds every proposal's
   * mask at the output size (Q × 8 bytes a pixel), so the default follows the machine: a 12-megapixel photo's labels
   * at its own size need about 9 GiB. @defaultValue the larger of 4 GiB and half the machine's memory
   */
  maxRequestBytes?: number;
  /**
   * The most prompts one request may have encoded: classes (each synonym, with `synonyms: 'average'`) × templates;
   * more is refused with ERR_SAN_TOO_LARGE. @defaultValue `65536` (4096 classes × the 14 vild templates fit)
   */
  maxPrompts?: number;
  /**
   * The most memory, in bytes, all requests admitted and not yet settled may together be estimated to need (the
   * estimate of `maxRequestBytes`); a request that would pass it is refused with ERR_SAN_OVERLOADED, unless it would
   * be alone. @defaultValue `8589934592` (8 GiB)
   */
  maxInflightBytes?: number;
  /**
   * Dynamic batching of concurrent `segment` calls: images of the same padded shape, classes and outputs run as one
   * batch. See {@link DynamicBatcherOptions} for `maxBatchSize`, `maxDelayMs`, `maxQueue`, `onFull` and
   * `concurrency`. On a GPU two batches are in flight by default: the runtime uploads the next batch's images while
   * the current one runs (cpp/stager.h); on the CPU a second batch would only wait, so batches grow instead.
   * @defaultValue `{ maxBatchSize: 4, maxDelayMs: 2, maxQueue: 256, onFull: 'reject', concurrency: 2 }` on CUDA,
   *   `concurrency: 1` on the CPU
   */
  batching?: Pick<DynamicBatcherOptions<unknown>, 'maxBatchSize' | 'maxDelayMs' | 'maxQueue' | 'onFull' | 'concurrency'>;
  /** Called after each batch has run, e.g. to export metrics; it must not throw. */
  onBatch?: (info: { size: number; runMs: number; queuedMs: number[] }) => void;
}

/** Everything `metrics()` reports. */
export interface SanModelMetrics extends ServingMetrics {
  /** Requests waiting for a batch, and calls queued in the runtime (batches and text encodings). */
  queueDepth: { batcher: number; runtime: number };
  /** The text cache's counters; null without a cache. */
  textCache: TextCacheStats | null;
  /**
   * The device; the process's resident memory in bytes; and on a GPU, its memory as LibTorch's caching allocator
   * counts it (shared by every model on that GPU), or on the CPU `{ unavailable: reason }`, never a made-up figure.
   */
  memory: { device: string; rssBytes: number; deviceMemory: CudaMemory; cpuAllocator: CpuAllocatorStats };
  /**
   * The intra-op threads of this model's calls, the cores all models of the process share, and OPENBLAS_NUM_THREADS
   * and OMP_WAIT_POLICY as the addon loaded OpenBLAS and libgomp with (set to '1' and 'PASSIVE' for the user unless
   * already set).
   */
  threads: { model: number; coreBudget: number; openblas: string | null; ompWaitPolicy: string | null };
}

/** Defaults of every option that has one. */
export const SAN_MODEL_DEFAULTS = Object.freeze({
  textCacheBytes: 64 * 1024 * 1024,
  verify: true,
  maxInputPixels: 0x3fff * 0x3fff,
  maxOutputPixels: 2 ** 25,
  maxRequestBytes: Math.max(2 ** 32, Math.floor(os.totalmem() / 2)),
  maxPrompts: 65536,
  maxInflightBytes: 2 ** 33,
  resize: true,
  synonyms: 'whole' as Synonyms,
  scores: false,
  proposals: false,
  batching: Object.freeze({ maxBatchSize: 4, maxDelayMs: 2, maxQueue: 256, onFull: 'reject' as const }),
  /** Batches in flight by the device's kind: a GPU's next upload overlaps the current batch. */
  batchConcurrency: Object.freeze({ cpu: 1, cuda: 2 }),
});

/** Most classes one call may name: their scores at 640×853 already take 9 GB. */
export const MAX_CLASSES = 4096;
/** Longest class name, in characters; CLIP reads at most 77 tokens of a prompt anyway. */
export const MAX_CLASS_LENGTH = 1000;
/** Longest template, in characters: tokenizing is synchronous, and a 200 KB template blocked the event loop. */
export const MAX_TEMPLATE_LENGTH = 1000;
/** Longest side of `outputSize`. */
export const MAX_OUTPUT_SIDE = 16384;
// Prompts per text-encoder call: bounds the activations of a large vocabulary.
const TEXT_BATCH = 256;
// Text-encoder chunks in the runtime at once, over all requests (see FairGate).
const TEXT_SLOTS = 1;
const SAN = 'san';
const TEXT_ENCODER = 'text_encoder';
// The text encoder computes in float32 whatever the model's dtype: it runs once per class (then the text cache
// answers), and its embeddings set every class score. In bfloat16 it moved ViT-B/16's scores by twice what the
// image network's bfloat16 does (docs/models.md, "Precision and devices").
const TEXT_ENCODER_DTYPE: ModelDtype = 'float32';
/** The methods each file of a model folder must export; checked at load, so a mixed-up folder fails there. */
const REQUIRED_METHODS: Readonly<Record<string, readonly string[]>> = { [SAN]: ['segment'], [TEXT_ENCODER]: ['forward'] };
const LOAD_OPTION_NAMES = ['textCache', 'verify', 'maxInputPixels', 'maxOutputPixels', 'maxRequestBytes', 'maxPrompts',
  'maxInflightBytes', 'batching', 'onBatch', ...TORCH_MODEL_OPTIONS];

/**
 * Where a model of `manifest` on `device` keeps the class embeddings of `templates` in its text cache, for a tool
 * that fills a cache ahead of the model (the bench). The text encoder's dtype is always float32.
 */
export function textCacheScope(manifest: Manifest, device: string, templates: readonly string[]): TextCacheScope {
  return {
    modelId: textEncoderId(manifest.files.text_encoder.sha256, TEXT_ENCODER_DTYPE, device),
    templateKey: JSON.stringify(templates),
    dim: manifest.dims.embed_dim,
  };
}

/** What the class embeddings depend on besides the class names. */
interface TextOptions {
  templates: readonly string[];
  synonyms: Synonyms;
}

interface CheckedSegmentOptions {
  classes: readonly string[];
  text: TextOptions;
  resize: boolean;
  outputSize: [number, number] | undefined;
  scores: boolean;
  proposals: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** One image's share of a batch. */
interface SegmentJob {
  image: RgbImage;
  outputSize: [number, number];
  classEmbeddings: Tensor<'float32'>;
  scores: boolean;
  proposals: boolean;
  /** Jobs batch together only when these agree: padded shape, outputs asked for, classes and templates. */
  key: string;
}

export class SanModel {
  readonly #torch: TorchModel;
  readonly #modelDir: ModelDir;
  readonly #tokenizer: ClipTokenizer;
  readonly #textCache: TextEmbeddingCache | undefined;
  readonly #maxInputPixels: number;
  readonly #limits: RequestLimits;
  readonly #batcher: DynamicBatcher<SegmentJob, Record<string, Tensor>>;
  readonly #stats = new ServingStats();
  readonly #textGate = new FairGate(TEXT_SLOTS);
  /** Calls accepted and not yet settled: dispose() answers them all before it frees anything. */
  readonly #accepted = new Set<Promise<unknown>>();
  #disposing: Promise<void> | undefined;
  /** The estimated bytes of the requests admitted and not yet settled. */
  #inflightBytes = 0;

  private constructor(torch: TorchModel, modelDir: ModelDir, tokenizer: ClipTokenizer,
    textCache: TextEmbeddingCache | undefined, options: SanModelOptions & { limits: RequestLimits }) {
    this.#torch = torch;
    this.#modelDir = modelDir;
    this.#tokenizer = tokenizer;
    this.#textCache = textCache;
    this.#maxInputPixels = options.maxInputPixels ?? SAN_MODEL_DEFAULTS.maxInputPixels;
    this.#limits = options.limits;
    const { onBatch } = options;
    this.#batcher = new DynamicBatcher((jobs) => this.#runBatch(jobs), {
      ...SAN_MODEL_DEFAULTS.batching,
      concurrency: SAN_MODEL_DEFAULTS.batchConcurrency[torch.device.startsWith('cuda') ? 'cuda' : 'cpu'],
      ...options.batching,
      batchKey: (job) => job.key,
      onBatch: (info) => {
        this.#stats.recordBatch(info.size);
        onBatch?.({ size: info.size, runMs: info.runMs, queuedMs: info.queuedMs });
      },
    });
  }

  /**
   * Loads a model folder written by `python3 -m models.export` (or `san-seg export`).
   * @param dir - the folder holding manifest.json, san.pt, text_encoder.pt and bpe_vocab.txt.gz.
   * @param options - see {@link SanModelOptions}.
   * @throws TypeError or RangeError for a bad option; SanError ERR_SAN_MODEL_LOAD for a missing, incomplete or
   *   altered folder, ERR_SAN_DEVICE when the device cannot be used.
   * @example
   * ```ts
   * const model = await SanModel.load('models/san_vit_b_16');
   * ```
   * @example
   * ```ts
   * const model = await SanModel.load(dir, { device: 'cuda', dtype: 'float16', textCache: { maxBytes: 2 ** 28 } });
   * ```
   */
  static async load(dir: string, options: SanModelOptions = {}): Promise<SanModel> {
    if (!is.path(dir)) throw is.invalidParameterError('dir', 'a model folder path (without NUL bytes)', dir);
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
    is.knownOptions(options, 'options', LOAD_OPTION_NAMES);
    const { textCache, verify, maxInputPixels, maxOutputPixels, maxRequestBytes, maxPrompts, maxInflightBytes,
      batching, onBatch, ...runtime } = options as SanModelOptions;
    if (batching !== undefined && !is.plainObject(batching)) {
      const expected = 'an object { maxBatchSize, maxDelayMs, maxQueue, onFull, concurrency }';
      throw is.invalidParameterError('options.batching', expected, batching);
    }
    if (batching !== undefined) is.knownOptions(batching, 'options.batching', ['maxBatchSize', 'maxDelayMs', 'maxQueue', 'onFull', 'concurrency']);
    if (onBatch !== undefined && typeof onBatch !== 'function') {
      throw is.invalidParameterError('options.onBatch', 'a function', onBatch);
    }
    const checkedVerify = verify ?? SAN_MODEL_DEFAULTS.verify;
    if (!is.bool(checkedVerify)) throw is.invalidParameterError('options.verify', 'a boolean', verify);
    const positive = (name: string, value: unknown, fallback: number): number => {
      const checked = value ?? fallback;
      if (!is.integer(checked) || checked < 1) {
        throw is.invalidParameterError(`options.${name}`, 'a positive integer', value, 'range');
      }
      return checked;
    };
    const pixels = positive('maxInputPixels', maxInputPixels, SAN_MODEL_DEFAULTS.maxInputPixels);
    const limits: RequestLimits = {
      maxOutputPixels: positive('maxOutputPixels', maxOutputPixels, SAN_MODEL_DEFAULTS.maxOutputPixels),
      maxRequestBytes: positive('maxRequestBytes', maxRequestBytes, SAN_MODEL_DEFAULTS.maxRequestBytes),
      maxPrompts: positive('maxPrompts', maxPrompts, SAN_MODEL_DEFAULTS.maxPrompts),
      maxInflightBytes: positive('maxInflightBytes', maxInflightBytes, SAN_MODEL_DEFAULTS.maxInflightBytes),
    };
    const cache = makeTextCache(textCache);
    const modelDir = await readModelDir(dir, checkedVerify);
    const tokenizer = readTokenizer(modelDir);
    const torch = await TorchModel.load({ [SAN]: modelDir.files.san, [TEXT_ENCODER]: modelDir.files.text_encoder },
      { ...runtime, float32Modules: [TEXT_ENCODER] });
    try {
      checkMethods(modelDir, torch.methods);
      return new SanModel(torch, modelDir, tokenizer, cache, { maxInputPixels: pixels, limits, batching, onBatch });
    } catch (error) {
      // A mixed-up folder or a bad batching option: nothing else holds the runtime.
      await torch.dispose();
      throw error;
    }
  }

  /** The manifest of the loaded folder. */
  get manifest(): Readonly<Manifest> {
    return this.#modelDir.manifest;
  }

  /** The device in use: `'cpu'` or `'cuda:N'`. */
  get device(): string {
    return this.#torch.device;
  }

  /** The dtype the image network (san.pt) computes in; the text encoder computes in float32 whatever it is. */
  get dtype(): ModelDtype {
    return this.#torch.dtype;
  }

  /** Whether san.pt reads the class embeddings in float32 whatever its dtype (the `classify_float32` capability). */
  get #classifiesInFloat32(): boolean {
    return this.manifest.capabilities?.includes('classify_float32') ?? false;
  }

  /** Whether san.pt's `segment` post-processes a band of output rows at a time (see RequestShape.bands). */
  get #postprocessesInBands(): boolean {
    return this.device === 'cpu' && (this.manifest.capabilities?.includes('segment_bands') ?? false);
  }

  /** The text-embedding cache, if the model has one. */
  get textCache(): TextEmbeddingCache | undefined {
    return this.#textCache;
  }

  /** Calls submitted to the runtime and not yet settled. */
  get queueDepth(): number {
    return this.#torch.queueDepth;
  }

  /**
   * Segments one image into the given classes.
   * @param input - a file path, encoded bytes (any format sharp reads), a sharp instance, or a uint8 tensor
   *   [H, W, 3] of RGB pixels. EXIF orientation is applied.
   * @param options - classes, templates, resizing, output size and extra outputs; see {@link SegmentOptions}.
   * @returns the label map over `options.classes`, and scores and proposals when asked for.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG, ERR_SAN_DTYPE, ERR_SAN_SHAPE) for bad options or a bad
   *   tensor; SanError ERR_SAN_IMAGE for an image that cannot be decoded or is too large; the runtime's errors.
   * @example
   * ```ts
   * const result = await model.segment('street.jpg', { classes: ['road', 'car', 'person, pedestrian', 'sky'] });
   * await fs.promises.writeFile('street-overlay.png', await result.toPng());
   * ```
   * @example
   * ```ts
   * const { scores } = await model.segment(buffer, { classes, scores: true, outputSize: [256, 256] });
   * ```
   */
  async segment(input: ImageInput, options: SegmentOptions): Promise<SegmentResult> {
    const started = performance.now();
    try {
      const checked = this.#checkSegmentOptions(options);
      const result = await this.#accept(checked, (deadline) => this.#segment(input, checked, deadline));
      this.#stats.recordRequest(performance.now() - started, true);
      return result;
    } catch (error) {
      this.#stats.recordRequest(performance.now() - started, false);
      throw error;
    }
  }

  /**
   * Runs one accepted call under its deadline: it settles when the work does, or with the deadline's error as soon
   * as the caller's signal aborts or its `timeoutMs` passes, whatever stage the work is in. Refused once dispose()
   * was called; until then every accepted call is tracked, so dispose() can wait for it.
   */
  #accept<T>(limits: { signal?: AbortSignal; timeoutMs?: number }, work: (deadline: Deadline) => Promise<T>): Promise<T> {
    if (this.#disposing !== undefined) {
      return Promise.reject(new SanError(ErrorCode.DISPOSED, 'The model was disposed'));
    }
    const deadline = new Deadline(limits.signal, limits.timeoutMs);
    // A call whose signal was aborted before it was made does no work at all.
    const started = deadline.signal.aborted ? Promise.reject(deadline.signal.reason) : work(deadline);
    const call = deadline.race(started).finally(() => {
      deadline.dispose();
      this.#accepted.delete(call);
    });
    this.#accepted.add(call);
    return call;
  }

  /**
   * Segments many images with the same options, several at a time so that decoding overlaps inference and
   * concurrent images batch, yielding in input order. A failed image yields its error; the others go on.
   * @param inputs - any iterable or async iterable of image inputs; read only as fast as results are consumed.
   * @param options - the options of {@link SanModel.segment}, plus `concurrency` (images in flight, 1 to 1024).
   * @example
   * ```ts
   * for await (const { input, result, error } of model.segmentMany(paths, { classes })) {
   *   if (result) console.log(input, result.shares());
   * }
   * ```
   * @example
   * ```ts
   * const shares = [];
   * for await (const item of model.segmentMany(readdirAsync(), { classes, concurrency: 8 })) shares.push(item);
   * ```
   */
  segmentMany(inputs: Iterable<ImageInput> | AsyncIterable<ImageInput>, options: SegmentManyOptions):
    AsyncGenerator<SegmentManyItem> {
    return segmentMany(this, inputs, options);
  }

  /**
   * An object-mode Duplex for pipelines: write image inputs, read {@link SegmentManyItem}s in the same order. It
   * reads ahead at most `concurrency` inputs, so a slow reader holds back the writer (back-pressure).
   * @example
   * ```ts
   * await pipeline(Readable.from(paths), model.segmentStream({ classes }), sink);
   * ```
   * @example
   * ```ts
   * const stream = model.segmentStream({ classes, concurrency: 4 });
   * stream.on('data', ({ index, result }) => save(index, result));
   * ```
   */
  segmentStream(options: SegmentManyOptions): Duplex {
    return segmentStream(this, options);
  }

  /** Serving counters: queue depths, batch sizes, latency percentiles, images/s, text cache and memory. */
  metrics(): SanModelMetrics {
    const cpuAllocator = cpuAllocatorStats();
    return {
      ...this.#stats.snapshot(),
      queueDepth: { batcher: this.#batcher.stats().queued, runtime: this.#torch.queueDepth },
      textCache: this.#textCache?.stats() ?? null,
      memory: { device: this.device, rssBytes: process.memoryUsage.rss(), deviceMemory: this.#deviceMemory(),
        cpuAllocator },
      threads: { model: this.#torch.threads, coreBudget: cpuAllocator.coreBudget,
        openblas: process.env.OPENBLAS_NUM_THREADS ?? null, ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null },
    };
  }

  #deviceMemory(): CudaMemory {
    const cuda = /^cuda:(\d+)$/.exec(this.device);
    return cuda ? binding().cudaMemory(Number(cuda[1])) : { unavailable: `the model runs on the ${this.device}` };
  }

  async #segment(input: ImageInput, checked: CheckedSegmentOptions, deadline: Deadline): Promise<SegmentResult> {
    const reservation = { bytes: 0 };
    try {
      return await this.#segmentAdmitted(input, checked, deadline, reservation);
    } finally {
      // When the work itself settles, which may be after the caller was answered (a batch runs to completion).
      this.#inflightBytes -= reservation.bytes;
    }
  }

  async #segmentAdmitted(input: ImageInput, checked: CheckedSegmentOptions, deadline: Deadline,
    reservation: { bytes: number }): Promise<SegmentResult> {
    const { image: { size_divisibility: divisor } } = this.manifest;
    // Text encoding starts once the image's header has shown that the request fits its budget, and then overlaps
    // the decoding; a refused request costs no encoding.
    let admitted: () => void = () => undefined;
    const admission = new Promise<void>((resolve) => {
      admitted = resolve;
    });
    const [decoded, classEmbeddings] = await Promise.all([
      readImage(input, {
        resizeTo: (height, width) => {
          const modelSize = this.#admit(height, width, checked, reservation);
          admitted();
          return modelSize;
        },
        maxInputPixels: this.#maxInputPixels,
        name: 'input',
        signal: deadline.signal,
      }),
      admission.then(() => this.#classEmbeddings(checked.classes, checked.text, deadline)),
    ]);
    deadline.check();
    const { image, originalSize } = decoded;
    const [outHeight, outWidth] = checked.outputSize ?? originalSize;
    const padded = (side: number): number => Math.ceil(side / divisor) * divisor;
    // The deadline's signal: a request whose caller is gone leaves the batcher's queue at once.
    const result = await this.#batcher.submit({
      image,
      outputSize: [outHeight, outWidth],
      classEmbeddings,
      scores: checked.scores,
      proposals: checked.proposals,
      key: JSON.stringify([padded(image.height), padded(image.width), checked.scores, checked.proposals,
        checked.text, checked.classes]),
    }, { signal: deadline.signal });
    const labels = result.labels as Tensor<'int16'>;
    const labelMap: LabelMap = {
      type: 'uint16',
      dims: [outHeight, outWidth],
      // int16 from the model, at most MAX_CLASSES - 1: the same bits read as uint16, without a copy.
      data: new Uint16Array(labels.data.buffer, labels.data.byteOffset, labels.data.length),
    };
    const proposals = checked.proposals
      ? { maskLogits: result.mask_logits as Tensor<'float32'>, classProbs: result.class_probs as Tensor<'float32'> }
      : undefined;
    const readBackground = async (): Promise<RgbImage> => (await readImage(input, {
      resizeTo: () => [outHeight, outWidth],
      maxInputPixels: this.#maxInputPixels,
      name: 'input',
    })).image;
    return new SegmentResult({
      labels: labelMap,
      classes: [...checked.classes],
      scores: result.scores as Tensor<'float32'> | undefined,
      proposals,
    }, readBackground);
  }

  /**
   * The size the network sees an image of `height` × `width` at, once the request is known to fit its budget and
   * its estimated bytes are reserved: called after the image's header is read and before it is decoded.
   * @throws SanError ERR_SAN_TOO_LARGE naming the limit and its option; ERR_SAN_OVERLOADED past maxInflightBytes.
   */
  #admit(height: number, width: number, checked: CheckedSegmentOptions, reservation: { bytes: number }):
    [number, number] {
    const { resize: policy, dims } = this.manifest;
    const outputSize = checked.outputSize ?? [height, width];
    if (checked.outputSize === undefined) checkOutputPixels(outputSize, this.#limits, "the input's own size");
    let modelSize: [number, number] = [height, width];
    if (checked.resize) {
      modelSize = modelScaleSize(height, width, { shortSide: policy.short_edge, maxLongSide: policy.max_size });
    } else if (Math.max(height, width) > policy.max_size || height * width > policy.short_edge * policy.max_size) {
      // Unresized, the network's memory grows with the input: it takes at most what the resize policy produces.
      throw new SanError(ErrorCode.TOO_LARGE, `With resize: false the input must already be at model scale: at ` +
        `most ${policy.max_size} pixels on its long side and ${policy.short_edge}×${policy.max_size} pixels in all ` +
        `(the manifest's resize policy), but it is ${height}×${width}; leave resize on`);
    }
    reservation.bytes = checkRequestBytes({
      modelSize,
      outputSize,
      classes: checked.classes.length,
      queries: dims.num_queries,
      maskStride: dims.mask_stride,
      sizeDivisibility: this.manifest.image.size_divisibility,
      bands: this.#postprocessesInBands,
      scores: checked.scores,
      proposals: checked.proposals,
    }, this.#limits, this.#inflightBytes);
    this.#inflightBytes += reservation.bytes;
    return modelSize;
  }

  /** One call of san.pt's `segment` for jobs that share a key: the images on one zero canvas, top left. */
  async #runBatch(jobs: SegmentJob[]): Promise<Record<string, Tensor>[]> {
    const height = Math.max(...jobs.map((job) => job.image.height));
    const width = Math.max(...jobs.map((job) => job.image.width));
    const canvas = new Uint8Array(jobs.length * height * width * 3);
    jobs.forEach(({ image }, i) => {
      const rowBytes = image.width * 3;
      for (let row = 0; row < image.height; row += 1) {
        canvas.set(image.data.subarray(row * rowBytes, (row + 1) * rowBytes), ((i * height + row) * width) * 3);
      }
    });
    const imageSizes = jobs.map(({ image }) => [image.height, image.width]);
    const outputSizes = jobs.map(({ outputSize }) => [...outputSize]);
    // Exports with the `segment_size_lists` capability take sizes as integer lists, which need no read-back from the
    // device; older ones take int64 (N, 2) tensors.
    const asLists = this.manifest.capabilities?.includes('segment_size_lists') ?? false;
    const sizes = (rows: number[][]): Argument => (asLists ? rows
      : tensor('int64', [rows.length, 2], BigInt64Array.from(rows.flat(), BigInt)));
    const [first] = jobs;
    return (await this.#torch.run(SAN, 'segment', [
      tensor('uint8', [jobs.length, height, width, 3], canvas),
      sizes(imageSizes),
      sizes(outputSizes),
      first.classEmbeddings,
      first.scores,
      first.proposals,
    // The class embeddings go in as float32 where san.pt classifies in float32 whatever its dtype (castInputs: false):
    // rounding them to bfloat16 on the way would cost what computing them in float32 saved. Older exports classify
    // in the model's dtype, and take them cast.
    ], { float32Outputs: true, castInputs: !this.#classifiesInFloat32 })) as Record<string, Tensor>[];
  }

  /**
   * The unit class embeddings the classifier uses: each class's prompts encoded, normalised, averaged over the
   * templates and normalised again. Served from the text cache when the model has one.
   * @param classes - class names; order and duplicates are kept.
   * @returns float32 [classes.length, D].
   * @example
   * ```ts
   * const { dims, data } = await model.encodeText(['cat', 'dog']);
   * ```
   * @example
   * ```ts
   * const single = await model.encodeText(['cat'], { templates: ['a photo of a {}.'] });
   * ```
   */
  async encodeText(classes: readonly string[], options: EncodeTextOptions = {}): Promise<Tensor<'float32'>> {
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
    is.knownOptions(options, 'options', ENCODE_TEXT_OPTION_NAMES);
    const checkedClasses = checkClasses(classes, 'classes');
    const text = this.#checkTextOptions(options as EncodeTextOptions, checkedClasses);
    const { signal, timeoutMs } = checkDeadlineOptions(options as EncodeTextOptions);
    return this.#accept({ signal, timeoutMs }, (deadline) => this.#classEmbeddings(checkedClasses, text, deadline));
  }

  /**
   * Answers every call already accepted (those made before, in the same tick included), then writes the text
   * cache to its `file` if it has one, and frees the model; later calls reject with ERR_SAN_DISPOSED. Calling it
   * again returns the same Promise.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await Promise.allSettled([...this.#accepted]);
      await this.#batcher.close();
      try {
        if (this.#textCache?.file !== undefined) await this.#textCache.save();
      } finally {
        await this.#torch.dispose();
      }
    })();
    return this.#disposing;
  }

  async #classEmbeddings(classes: readonly string[], text: TextOptions, deadline: Deadline): Promise<Tensor<'float32'>> {
    const dim = this.manifest.dims.embed_dim;
    if (text.synonyms === 'average') {
      const synonyms = classes.map(splitSynonyms);
      const rows = (await this.#classEmbeddings(synonyms.flat(), { ...text, synonyms: 'whole' }, deadline)).data;
      const averaged = new Float32Array(classes.length * dim);
      let row = 0;
      synonyms.forEach((parts, c) => {
        for (let k = 0; k < parts.length; k += 1, row += 1) {
          for (let i = 0; i < dim; i += 1) averaged[c * dim + i] += rows[row * dim + i];
        }
      });
      return tensor('float32', [classes.length, dim], normalizeRows(averaged, dim));
    }
    const encode = (names: string[]): Promise<Float32Array> => this.#encodeClasses(names, text.templates, deadline);
    const data = this.#textCache
      ? await this.#textCache.lookup(textCacheScope(this.manifest, this.device, text.templates), classes, encode)
      : await encode([...classes]);
    return tensor('float32', [classes.length, dim], data);
  }

  /**
   * Encodes each name's prompts, chunk by chunk: each chunk waits its turn at the text gate (so cold encodings take
   * turns with each other and let segment batches through), and none starts once the caller is gone.
   */
  async #encodeClasses(names: string[], templates: readonly string[], deadline: Deadline): Promise<Float32Array> {
    const dim = this.manifest.dims.embed_dim;
    const prompts = names.flatMap((name) => promptsFor(name, templates));
    // Every class × template in calls of TEXT_BATCH prompts, shortest first, each cut at its longest prompt: the
    // text encoder takes any length up to the context (its mask is causal), so no call computes padding it can skip.
    const lengths = prompts.map((prompt) => this.#tokenizer.encode(prompt).length);
    const order = prompts.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
    const embeddings = new Float32Array(prompts.length * dim);
    for (let start = 0; start < prompts.length; start += TEXT_BATCH) {
      deadline.check();
      const rows = order.slice(start, start + TEXT_BATCH);
      const out = await this.#textGate.run(() => {
        deadline.check();
        const { ids, dims } = this.#tokenizer.tokenize(rows.map((i) => prompts[i]),
          this.manifest.text.context_length, { padToLongest: true });
        return this.#torch.run(TEXT_ENCODER, 'forward', [tensor('int64', dims, ids)], { float32Outputs: true });
      }, deadline.signal) as Result as Tensor<'float32'>;
      rows.forEach((prompt, row) => embeddings.set(out.data.subarray(row * dim, (row + 1) * dim), prompt * dim));
    }
    return ensembleTemplates(embeddings, templates.length, dim);
  }

  /** Checks synonyms and templates, and that the prompts `classes` need stay within `maxPrompts`. */
  #checkTextOptions(options: EncodeTextOptions, classes: readonly string[]): TextOptions {
    const synonyms = options.synonyms ?? SAN_MODEL_DEFAULTS.synonyms;
    if (!is.inArray(synonyms, ['whole', 'average'])) {
      throw is.invalidParameterError('options.synonyms', 'one of: whole, average', options.synonyms, 'range');
    }
    const templates = this.#checkTemplates(options.templates);
    const names = synonyms === 'average'
      ? classes.reduce((count, name) => count + splitSynonyms(name).length, 0)
      : classes.length;
    const detail = `${classes.length} classes${synonyms === 'average' ? ` with ${names} synonyms in all` : ''} × ` +
      `${templates.length} templates`;
    checkPromptCount(names * templates.length, detail, this.#limits);
    return { templates, synonyms };
  }

  #checkTemplates(templates: Templates | undefined): readonly string[] {
    if (templates === undefined) return this.manifest.text.templates;
    if (is.string(templates)) {
      if (!is.inArray(templates, Object.keys(TEMPLATE_SETS))) {
        throw is.invalidParameterError('options.templates', `one of: ${Object.keys(TEMPLATE_SETS).join(', ')}, or a list of templates`,
          templates, 'range');
      }
      return TEMPLATE_SETS[templates as TemplateSetName];
    }
    if (!Array.isArray(templates) || templates.length === 0) {
      throw is.invalidParameterError('options.templates', 'a template set name or a non-empty Array of templates', templates);
    }
    templates.forEach((template: unknown, i) => {
      if (!is.string(template) || !template.includes('{}') || template.length > MAX_TEMPLATE_LENGTH) {
        throw is.invalidParameterError(`options.templates[${i}]`,
          `a string of at most ${MAX_TEMPLATE_LENGTH} characters with '{}' where the class name goes`, template,
          is.string(template) ? 'range' : 'type');
      }
    });
    return [...templates];
  }

  #checkSegmentOptions(options: SegmentOptions): CheckedSegmentOptions {
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object with classes', options);
    is.knownOptions(options, 'options', SEGMENT_OPTION_NAMES);
    const flag = (name: 'resize' | 'scores' | 'proposals'): boolean => {
      const value = options[name] ?? SAN_MODEL_DEFAULTS[name];
      if (!is.bool(value)) throw is.invalidParameterError(`options.${name}`, 'a boolean', options[name]);
      return value;
    };
    const classes = checkClasses(options.classes, 'options.classes');
    const outputSize = checkOutputSize(options.outputSize);
    if (outputSize !== undefined) checkOutputPixels(outputSize, this.#limits, 'options.outputSize');
    return {
      classes,
      text: this.#checkTextOptions(options as SegmentOptions, classes),
      resize: flag('resize'),
      outputSize,
      scores: flag('scores'),
      proposals: flag('proposals'),
      ...checkDeadlineOptions(options as SegmentOptions),
    };
  }
}

/** `signal` and `timeoutMs`, checked as the batcher checks them. */
function checkDeadlineOptions(options: { signal?: unknown; timeoutMs?: unknown }): SubmitOptions {
  return checkSubmitOptions({ signal: options.signal, timeoutMs: options.timeoutMs });
}

/** The folder's BPE vocabulary, bounded in size and checked against the manifest. */
function readTokenizer(modelDir: ModelDir): ClipTokenizer {
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = ClipTokenizer.fromFile(modelDir.files.bpe_vocab);
  } catch (error) {
    throw new SanError(ErrorCode.MODEL_LOAD, `The model folder ${modelDir.dir} has an unreadable BPE vocabulary ` +
      `${modelDir.manifest.files.bpe_vocab.name}: ${(error as Error).message}`);
  }
  if (tokenizer.vocabSize !== modelDir.manifest.text.vocab_size) {
    throw new SanError(ErrorCode.MODEL_LOAD, `The model folder ${modelDir.dir} has a vocabulary of ` +
      `${tokenizer.vocabSize} tokens where its manifest says ${modelDir.manifest.text.vocab_size}`);
  }
  return tokenizer;
}

/** Refuses a folder whose files lack the methods their role needs (san.pt and text_encoder.pt swapped, say). */
function checkMethods(modelDir: ModelDir, methods: Readonly<Record<string, readonly string[]>>): void {
  for (const [role, required] of Object.entries(REQUIRED_METHODS)) {
    const missing = required.filter((method) => !methods[role]?.includes(method));
    if (missing.length > 0) {
      const name = modelDir.manifest.files[role as 'san' | 'text_encoder'].name;
      throw new SanError(ErrorCode.MODEL_LOAD, `The model folder ${modelDir.dir} holds a ${name} (files.${role}) ` +
        `without the method(s) ${missing.join(', ')} it must export (it has: ${(methods[role] ?? []).join(', ')}); ` +
        'are its files swapped or from another export?');
    }
  }
}

function checkClasses(classes: unknown, name: string): readonly string[] {
  if (!Array.isArray(classes)) throw is.invalidParameterError(name, 'an Array of class names', classes);
  if (!is.inRange(classes.length, 1, MAX_CLASSES)) {
    throw is.invalidParameterError(`${name}.length`, `1 to ${MAX_CLASSES} classes`, classes.length, 'range');
  }
  classes.forEach((value: unknown, i) => {
    if (!is.string(value)) throw is.invalidParameterError(`${name}[${i}]`, 'a string', value);
    if (value.trim().length === 0 || value.length > MAX_CLASS_LENGTH) {
      throw is.invalidParameterError(`${name}[${i}]`, `a class name of 1 to ${MAX_CLASS_LENGTH} characters, not blank`,
        value, 'range');
    }
  });
  return classes as string[];
}

function checkOutputSize(size: unknown): [number, number] | undefined {
  if (size === undefined) return undefined;
  if (!Array.isArray(size) || size.length !== 2) {
    throw is.invalidParameterError('options.outputSize', 'an Array [height, width]', size);
  }
  size.forEach((side: unknown, i) => {
    if (!is.integer(side) || !is.inRange(side, 1, MAX_OUTPUT_SIDE)) {
      throw is.invalidParameterError(`options.outputSize[${i}]`, `an integer between 1 and ${MAX_OUTPUT_SIDE}`, side, 'range');
    }
  });
  return [size[0], size[1]];
}

function makeTextCache(option: SanModelOptions['textCache']): TextEmbeddingCache | undefined {
  if (option === false) return undefined;
  if (option instanceof TextEmbeddingCache) return option;
  if (option !== undefined && !is.plainObject(option)) {
    throw is.invalidParameterError('options.textCache', 'a TextEmbeddingCache, { maxBytes, file } or false', option);
  }
  if (option !== undefined) is.knownOptions(option, 'options.textCache', ['maxBytes', 'file']);
  const maxBytes = option?.maxBytes ?? SAN_MODEL_DEFAULTS.textCacheBytes;
  if (!is.integer(maxBytes) || maxBytes < 0) {
    throw is.invalidParameterError('options.textCache.maxBytes', 'an integer of at least 0', option?.maxBytes, 'range');
  }
  if (option?.file !== undefined && !is.path(option.file)) {
    throw is.invalidParameterError('options.textCache.file', 'a file path (without NUL bytes)', option.file);
  }
  return new TextEmbeddingCache({ maxBytes, file: option?.file });
}
