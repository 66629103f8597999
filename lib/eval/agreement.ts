// SPDX-License-Identifier: Apache-2.0
/**
 * How close two segmentations of one image are: what a lower precision (bfloat16) or another runtime costs against a
 * float32 reference. The bfloat16 tests and `npm run bench` both measure with it.
 * @module
 */
import { SanError } from '../errors';
import type { LabelMap } from '../segment/result';
import type { Tensor } from '../runtime/tensor';

/** The parts of a `SegmentResult` compared; `scores` must have been asked for (`scores: true`). */
export interface ComparedSegmentation {
  readonly labels: LabelMap;
  readonly scores?: Tensor<'float32'>;
}

export interface Agreement {
  /** The largest score difference over every class and pixel, as a fraction of the reference's largest score. */
  scoreError: number;
  /** The fraction of pixels given the same label, 0 to 1. */
  labelsEqual: number;
}

/** How far `other` lies from `reference`: the same image, classes and output size, both with scores. */
export function agreement(reference: ComparedSegmentation, other: ComparedSegmentation): Agreement {
  const [a, b] = [reference.scores, other.scores];
  if (!a || !b) throw new SanError('ERR_SAN_INVALID_ARG', 'agreement() compares scores: segment both with scores: true');
  if (a.data.length !== b.data.length || reference.labels.data.length !== other.labels.data.length) {
    throw new SanError('ERR_SAN_INVALID_ARG', `agreement() needs segmentations of one size, got scores [${a.dims}] and `
      + `[${b.dims}]`);
  }
  let worst = 0;
  let largest = 0;
  for (let i = 0; i < a.data.length; i++) {
    worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
    largest = Math.max(largest, Math.abs(a.data[i]));
  }
  const labels = reference.labels.data;
  let equal = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === other.labels.data[i]) equal += 1;
  return { scoreError: largest > 0 ? worst / largest : worst, labelsEqual: equal / labels.length };
}
