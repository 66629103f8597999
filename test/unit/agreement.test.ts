// SPDX-License-Identifier: Apache-2.0
// agreement(): the score error as a fraction of the reference's largest score, and the share of equal labels.
import { agreement, ComparedSegmentation } from '../../lib/eval/agreement';
import { SanError } from '../../lib/errors';
import { tensor } from '../../lib/runtime/tensor';

function segmentation(scores: number[] | null, labels: number[]): ComparedSegmentation {
  return {
    labels: { type: 'uint16', dims: [1, labels.length], data: Uint16Array.from(labels) },
    ...(scores ? { scores: tensor('float32', [scores.length / labels.length, 1, labels.length], Float32Array.from(scores)) } : {}),
  };
}

test('the largest score difference over the largest reference score, and the share of equal labels', () => {
  const reference = segmentation([0.5, -2, 1, 0.25], [0, 1]);
  const other = segmentation([0.5, -1.5, 1, 0.125], [0, 0]);
  expect(agreement(reference, other)).toEqual({ scoreError: 0.25, labelsEqual: 0.5 });
  expect(agreement(reference, reference)).toEqual({ scoreError: 0, labelsEqual: 1 });
});

test('segmentations without scores, or of different sizes, are refused with ERR_SAN_INVALID_ARG', () => {
  const withScores = segmentation([1, 2], [0, 0]);
  for (const other of [segmentation(null, [0, 0]), segmentation([1, 2, 3], [0, 0, 0])]) {
    expect(() => agreement(withScores, other)).toThrow(SanError);
    expect(() => agreement(withScores, other)).toThrow(expect.objectContaining({ code: 'ERR_SAN_INVALID_ARG' }));
  }
});
