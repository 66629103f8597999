// SPDX-License-Identifier: Apache-2.0
/**
 * What one segmentation may cost, judged before any work is done: the prompts it would encode, the pixels it would
 * return, and the memory it would take. A request over a limit is refused at once with SanError ERR_SAN_TOO_LARGE,
 * naming the limit and the option that sets it, instead of running the process out of memory.
 * @module
 */
import { ErrorCode, SanError } from '../errors';

/** The limits set by the options of `SanModel.load`, checked. */
export interface RequestLimits {
  /** Most output pixels (height × width of the label map). */
  readonly maxOutputPixels: number;
  /** Most bytes one request is estimated to need (see {@link estimateRequestBytes}). */
  readonly maxRequestBytes: number;
  /** Most prompts one request may encode: classes (or their synonyms) × templates. */
  readonly maxPrompts: number;
  /** Most bytes all admitted requests together are estimated to need; one request alone is always admitted. */
  readonly maxInflightBytes: number;
}

/** What the memory estimate depends on. */
export interface RequestShape {
  /** Height and width of the image the network sees (model scale). */
  readonly modelSize: readonly [number, number];
  /** Height and width of each returned map. */
  readonly outputSize: readonly [number, number];
  readonly classes: number;
  /** The model's mask proposals (manifest dims.num_queries). */
  readonly queries: number;
  /** The side of a cell of the network's mask grid in pixels (manifest dims.mask_stride). */
  readonly maskStride: number;
  /** What the network pads the model-scale image to a multiple of (manifest image.size_divisibility). */
  readonly sizeDivisibility: number;
  /**
   * Whether san.pt post-processes a band of output rows at a time: on the CPU, for exports with the `segment_bands`
   * capability. Otherwise it holds every proposal's mask at the output size.
   */
  readonly bands: boolean;
  readonly scores: boolean;
  readonly proposals: boolean;
}

// Per pixel at model scale: the uint8 canvas (3) and the normalised float32 image (12). The network's own working
// memory is bounded by the resize policy (the long side at most resize.max_size), not by this figure.
const MODEL_PIXEL_BYTES = 15;
// Per output pixel: the int16 labels returned.
const LABEL_BYTES = 2;
// Without bands, per output pixel and proposal: every proposal's mask logits upsampled to the output size and their
// sigmoid (float32, twice); per output pixel, the int64 argmax.
const MASK_BYTES = 8;
const ARGMAX_BYTES = 8;
// With bands: san.pt's band_elements, the floats of each tensor of a band (a band is one output row at the least),
// and how many such tensors are alive at once, at most: the row passes' gathers and sums (their source rows up to
// twice the band's when the output is smaller than the image), the sigmoid, a chunk of scores and its maximum.
const BAND_ELEMENTS = 2 ** 22;
const BAND_TENSORS = 8;
// Per output pixel and class, when scores are asked for: the float32 scores returned.
const SCORE_BYTES = 4;

/** The bytes a request is estimated to take at its peak, from its shape. */
export function estimateRequestBytes(shape: RequestShape): number {
  const { modelSize, outputSize, classes, queries, maskStride, sizeDivisibility } = shape;
  const outputPixels = outputSize[0] * outputSize[1];
  const [paddedHeight, paddedWidth] = modelSize.map((side) => Math.ceil(side / sizeDivisibility) * sizeDivisibility);
  const gridCells = (paddedHeight / maskStride) * (paddedWidth / maskStride);
  return modelSize[0] * modelSize[1] * MODEL_PIXEL_BYTES + postprocessBytes(shape, paddedWidth) +
    outputPixels * (LABEL_BYTES + (shape.scores ? classes * SCORE_BYTES : 0)) +
    (shape.proposals ? queries * (gridCells + classes + 1) * 4 : 0);
}

/** san.pt's post-processing: one band of output rows (as postprocess.band_labels sizes it), or the whole output. */
function postprocessBytes({ outputSize, queries, bands }: RequestShape, paddedWidth: number): number {
  if (!bands) return outputSize[0] * outputSize[1] * (ARGMAX_BYTES + queries * MASK_BYTES);
  const rowFloats = queries * Math.max(outputSize[1], paddedWidth);
  const rows = Math.min(outputSize[0], Math.max(1, Math.floor(BAND_ELEMENTS / rowFloats)));
  return BAND_TENSORS * 4 * rowFloats * rows;
}

/** Refuses a request whose maps would have more than `maxOutputPixels` pixels. */
export function checkOutputPixels(size: readonly [number, number], limits: RequestLimits, source: string): void {
  const pixels = size[0] * size[1];
  if (pixels > limits.maxOutputPixels) {
    throw new SanError(ErrorCode.TOO_LARGE, `The output would have ${size[0]}×${size[1]} = ${pixels} pixels ` +
      `(${source}), more than maxOutputPixels (${limits.maxOutputPixels}); ask for a smaller options.outputSize or ` +
      'raise the maxOutputPixels option of SanModel.load');
  }
}

/**
 * Refuses a request estimated to need more than `maxRequestBytes` (ERR_SAN_TOO_LARGE), or more than what
 * `maxInflightBytes` leaves beside the `inflight` bytes of the requests admitted before it (ERR_SAN_OVERLOADED, to
 * retry later).
 * @returns the estimate, to be held until the request settles.
 */
export function checkRequestBytes(shape: RequestShape, limits: RequestLimits, inflight: number): number {
  const bytes = estimateRequestBytes(shape);
  if (bytes > limits.maxRequestBytes) {
    const [height, width] = shape.outputSize;
    throw new SanError(ErrorCode.TOO_LARGE, `The request would need about ${mib(bytes)} (a ${height}×${width} ` +
      `output, ${shape.queries} proposals${shape.scores ? `, ${shape.classes} classes of scores` : ''}), ` +
      `more than maxRequestBytes (${mib(limits.maxRequestBytes)}); ask for a smaller options.outputSize` +
      `${shape.scores ? ' or no scores' : ''}, or raise the maxRequestBytes option of SanModel.load`);
  }
  if (inflight > 0 && inflight + bytes > limits.maxInflightBytes) {
    throw new SanError(ErrorCode.OVERLOADED, `The requests in flight are estimated to need ${mib(inflight)}, and this ` +
      `one ${mib(bytes)} more than maxInflightBytes (${mib(limits.maxInflightBytes)}) allows; retry later, or raise ` +
      'the maxInflightBytes option of SanModel.load');
  }
  return bytes;
}

/** Bytes for a message: in KiB below a MiB, else in MiB. */
function mib(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.round(bytes / 1024)} KiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

/** Refuses a request that would encode more than `maxPrompts` prompts. */
export function checkPromptCount(prompts: number, detail: string, limits: RequestLimits): void {
  if (prompts > limits.maxPrompts) {
    throw new SanError(ErrorCode.TOO_LARGE, `The request would encode ${prompts} prompts (${detail}), more than ` +
      `maxPrompts (${limits.maxPrompts}); use fewer classes, synonyms or templates (templates: 'single'), or raise ` +
      'the maxPrompts option of SanModel.load');
  }
}
