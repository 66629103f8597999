// SPDX-License-Identifier: Apache-2.0
/**
 * The label map of a `POST /segment` answer: a 16-bit greyscale PNG in base64, or run-length encoded.
 * @module
 */
import * as is from '../is';
import { SegmentResult } from '../segment/result';

/** How the label map is encoded in the answer. */
export type LabelFormat = 'png' | 'rle';
export const LABEL_FORMATS: readonly LabelFormat[] = ['png', 'rle'];

/** The label map of a `POST /segment` answer; `format` is the request's `format` parameter. */
export type LabelsBody = { format: 'png'; data: string } | { format: 'rle'; data: number[] };

/** A result's label map in `format`. */
export async function labelsBody(result: SegmentResult, format: LabelFormat): Promise<LabelsBody> {
  return format === 'png'
    ? { format, data: (await result.labelsPng()).toString('base64') }
    : { format, data: encodeRle(result.labels.data) };
}

/**
 * Run-length encodes a label map: `[value, count, value, count, …]` over the row-major labels.
 * @example
 * ```ts
 * encodeRle(new Uint16Array([0, 0, 0, 2, 2, 1])); // [0, 3, 2, 2, 1, 1]
 * ```
 */
export function encodeRle(labels: Uint16Array): number[] {
  const runs: number[] = [];
  let start = 0;
  for (let i = 1; i <= labels.length; i += 1) {
    if (i === labels.length || labels[i] !== labels[start]) {
      runs.push(labels[start], i - start);
      start = i;
    }
  }
  return runs;
}

/**
 * Decodes {@link encodeRle}'s runs back into labels.
 * @throws RangeError when `runs` has an odd length or a count that is not a positive integer.
 * @example
 * ```ts
 * const labels = decodeRle(body.labels.data); // Uint16Array of height × width
 * ```
 */
export function decodeRle(runs: readonly number[]): Uint16Array {
  if (runs.length % 2 !== 0) throw is.invalidParameterError('runs.length', 'an even length', runs.length, 'range');
  let total = 0;
  for (let i = 1; i < runs.length; i += 2) {
    if (!is.integer(runs[i]) || runs[i] < 1) {
      throw is.invalidParameterError(`runs[${i}]`, 'a positive integer count', runs[i], 'range');
    }
    total += runs[i];
  }
  const labels = new Uint16Array(total);
  for (let i = 0, at = 0; i < runs.length; at += runs[i + 1], i += 2) labels.fill(runs[i], at, at + runs[i + 1]);
  return labels;
}
