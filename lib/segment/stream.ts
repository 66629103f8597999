// SPDX-License-Identifier: Apache-2.0
/**
 * Many images through one model: an async generator and an object-mode Duplex over `SanModel.segment`, with a
 * bounded number of images in flight and results in input order.
 *
 * Images in flight are decoded by sharp (libuv's pool) while earlier ones run on the model's thread, and the
 * model's batcher groups those that arrive together; the bound keeps memory flat however long the input is.
 * @module
 */
import { Duplex } from 'node:stream';
import type { ImageInput } from './image';
import * as is from '../is';
import { SEGMENT_OPTION_NAMES } from './options';
import type { SegmentOptions } from './options';
import type { SegmentResult } from './result';

/** What the stream drives: `SanModel`, or anything that segments one input at a time. */
export interface Segmenter {
  segment(input: ImageInput, options: SegmentOptions): Promise<SegmentResult>;
}

/** Options of `segmentMany` and `segmentStream`: those of `segment`, plus how many images are in flight. */
export interface SegmentManyOptions extends SegmentOptions {
  /** Images being decoded or segmented at once, 1 to 1024. @defaultValue `4` */
  concurrency?: number;
}

/** One image's outcome, in input order: `result` when it was segmented, `error` when it failed. */
export interface SegmentManyItem {
  /** Position of the input, from 0. */
  index: number;
  input: ImageInput;
  result?: SegmentResult;
  error?: Error;
}

export const SEGMENT_MANY_DEFAULTS = Object.freeze({ concurrency: 4 });
const MAX_CONCURRENCY = 1024;

function checkConcurrency(options: SegmentManyOptions): number {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object with classes', options);
  is.knownOptions(options, 'options', [...SEGMENT_OPTION_NAMES, 'concurrency']);
  const concurrency = options.concurrency ?? SEGMENT_MANY_DEFAULTS.concurrency;
  if (!is.integer(concurrency) || !is.inRange(concurrency, 1, MAX_CONCURRENCY)) {
    throw is.invalidParameterError('options.concurrency', `an integer between 1 and ${MAX_CONCURRENCY}`,
      options.concurrency, 'range');
  }
  return concurrency;
}

/**
 * Segments every input with the same options, at most `concurrency` at a time, yielding in input order.
 * @throws TypeError or RangeError at the first `next()` for bad options; errors of the input iterable itself.
 */
export async function* segmentMany(model: Segmenter, inputs: Iterable<ImageInput> | AsyncIterable<ImageInput>,
  options: SegmentManyOptions): AsyncGenerator<SegmentManyItem> {
  const concurrency = checkConcurrency(options);
  const { concurrency: _, ...segmentOptions } = options;
  const inFlight: Promise<SegmentManyItem>[] = [];
  let index = 0;
  const start = (input: ImageInput): void => {
    const item = { index, input };
    index += 1;
    inFlight.push(model.segment(input, segmentOptions).then(
      (result) => ({ ...item, result }),
      (error: Error) => ({ ...item, error }),
    ));
  };
  try {
    for await (const input of inputs) {
      start(input);
      if (inFlight.length >= concurrency) yield await (inFlight.shift() as Promise<SegmentManyItem>);
    }
    while (inFlight.length > 0) yield await (inFlight.shift() as Promise<SegmentManyItem>);
  } finally {
    // A consumer that stops early still lets the images in flight settle, so none is left unobserved.
    await Promise.allSettled(inFlight);
  }
}

/** An object-mode Duplex: image inputs in, {@link SegmentManyItem}s out in the same order, with back-pressure. */
export function segmentStream(model: Segmenter, options: SegmentManyOptions): Duplex {
  const concurrency = checkConcurrency(options);
  return Duplex.from(async function* transform(source: AsyncIterable<ImageInput>) {
    yield* segmentMany(model, source, { ...options, concurrency });
  });
}
