// SPDX-License-Identifier: Apache-2.0
/**
 * What a segmentation job carries through Redis, and what its result holds: plain JSON, checked the same way by the
 * producer before it adds a job and by the worker when it takes one (a job may come from any BullMQ producer).
 * @module
 */
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';
import type { SegmentOptions, Synonyms, Templates } from '../segment/options';
import type { LabelFormat, LabelsBody } from '../serve/labels';
import { LABEL_FORMATS } from '../serve/labels';

/** Version of the job payload, so that a worker can refuse a payload written by a later san-node. */
export const JOB_DATA_VERSION = 1;

/** Where a job's result goes: the job's return value in Redis (kept for a TTL), or a file under the output root. */
export type ResultStore = 'redis' | 'file';
export const RESULT_STORES: readonly ResultStore[] = ['redis', 'file'];

/** The image of a job: its encoded bytes, or a path relative to the worker's input root. */
export type JobImage = { bytes: string } | { path: string };

/** The `segment()` options a job may carry; functions, signals and extra outputs do not travel. */
export type JobSegmentOptions = Pick<SegmentOptions, 'classes' | 'templates' | 'synonyms' | 'resize' | 'outputSize'>;

/** A job's payload in Redis. */
export interface SegmentJobData {
  v: typeof JOB_DATA_VERSION;
  /** `bytes` in base64. */
  image: JobImage;
  segment: JobSegmentOptions;
  format: LabelFormat;
  store: ResultStore;
}

/** Milliseconds spent on each part of a job. */
export interface JobTimings {
  /** From `add` to a worker taking the job (the last attempt). */
  queuedMs: number;
  /** Decoding and segmentation: `segment()`, including the wait for its batch. */
  segmentMs: number;
  /** Encoding the label map and storing it. */
  encodeMs: number;
  /** From the worker taking the job to its result. */
  totalMs: number;
}

/** What a completed job resolves to. */
export interface SegmentJobResult {
  jobId: string;
  /** [height, width] of the label map. */
  size: [number, number];
  classes: string[];
  /** Each class's share of the pixels. */
  shares: Record<string, number>;
  /** The label map itself (`store: 'redis'`), or the file it was written to (`store: 'file'`, relative to the root). */
  labels: LabelsBody | { format: LabelFormat; file: string };
  timings: JobTimings;
  /** The worker that ran the job (`host:pid`), and which start of the job this was (2 or more after a redelivery). */
  worker: string;
  attempt: number;
}

/** Keys a job's `segment` object may have. */
const SEGMENT_KEYS = ['classes', 'templates', 'synonyms', 'resize', 'outputSize'] as const;
const DATA_KEYS = ['v', 'image', 'segment', 'format', 'store'];
/** A job id the worker may also use as a file name: no separators, no leading dot. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks a job's payload: its shape and the types of its fields (the model checks the values of the segment
 * options, e.g. a template set's name). Unknown fields are refused.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG).
 */
export function checkJobData(data: unknown, name = 'job.data'): SegmentJobData {
  if (!is.plainObject(data)) throw is.invalidParameterError(name, 'an object { v, image, segment, format, store }', data);
  refuseUnknown(data, DATA_KEYS, name);
  if (data.v !== JOB_DATA_VERSION) {
    throw is.invalidParameterError(`${name}.v`, `payload version ${JOB_DATA_VERSION}`, data.v, 'range');
  }
  const image = data.image;
  if (!is.plainObject(image) || Object.keys(image).length !== 1 ||
    !(is.string(image.bytes) || is.string(image.path))) {
    throw is.invalidParameterError(`${name}.image`, 'an object { bytes: base64 } or { path }', image);
  }
  if (!is.inArray(data.format, LABEL_FORMATS)) {
    throw is.invalidParameterError(`${name}.format`, `one of: ${LABEL_FORMATS.join(', ')}`, data.format, 'range');
  }
  if (!is.inArray(data.store, RESULT_STORES)) {
    throw is.invalidParameterError(`${name}.store`, `one of: ${RESULT_STORES.join(', ')}`, data.store, 'range');
  }
  return { ...data, segment: checkJobSegmentOptions(data.segment, `${name}.segment`) } as SegmentJobData;
}

/** The segment options of a job: the known keys only, of the right types (the model checks their values). */
export function checkJobSegmentOptions(options: unknown, name: string): JobSegmentOptions {
  if (!is.plainObject(options)) throw is.invalidParameterError(name, 'an object with classes', options);
  refuseUnknown(options, SEGMENT_KEYS, name);
  const { classes, templates, synonyms, resize, outputSize } = options;
  if (!Array.isArray(classes) || !classes.every(is.string)) {
    throw is.invalidParameterError(`${name}.classes`, 'an Array of class names', classes);
  }
  if (templates !== undefined && !is.string(templates) && !(Array.isArray(templates) && templates.every(is.string))) {
    throw is.invalidParameterError(`${name}.templates`, 'a template set name or an Array of templates', templates);
  }
  if (synonyms !== undefined && !is.string(synonyms)) {
    throw is.invalidParameterError(`${name}.synonyms`, 'a string', synonyms);
  }
  if (resize !== undefined && !is.bool(resize)) throw is.invalidParameterError(`${name}.resize`, 'a boolean', resize);
  if (outputSize !== undefined && !(Array.isArray(outputSize) && outputSize.length === 2)) {
    throw is.invalidParameterError(`${name}.outputSize`, 'an Array [height, width]', outputSize);
  }
  const checked: JobSegmentOptions = { classes: classes as string[] };
  if (templates !== undefined) checked.templates = templates as Templates;
  if (synonyms !== undefined) checked.synonyms = synonyms as Synonyms;
  if (resize !== undefined) checked.resize = resize;
  if (outputSize !== undefined) checked.outputSize = outputSize as [number, number];
  return checked;
}

/** Refuses the keys of `object` that are not in `known`, as sharp refuses an unknown option. */
export function refuseUnknown(object: Record<string, unknown>, known: readonly string[], name: string): void {
  const unknown = Object.keys(object).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw is.invalidParameterError(`${name}.${unknown}`, `one of the options ${known.join(', ')}`, unknown, 'range');
  }
}

/**
 * The bytes of an image, refused before decoding when they would pass `maxBytes`.
 * @throws SanError ERR_SAN_TOO_LARGE.
 */
export function imageBytes(base64: string, maxBytes: number): Buffer {
  // Base64 holds 3 bytes in 4 characters: the size is known before decoding.
  const size = Math.floor((base64.length * 3) / 4);
  if (size > maxBytes + 2) throw imageTooLarge(size, maxBytes);
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length > maxBytes) throw imageTooLarge(bytes.length, maxBytes);
  return bytes;
}

/** The error for an image of `size` bytes where `maxBytes` are allowed. */
export function imageTooLarge(size: number, maxBytes: number): SanError {
  return new SanError(ErrorCode.TOO_LARGE, `The image has ${size} bytes, more than the ${maxBytes} allowed ` +
    '(maxImageBytes)');
}
