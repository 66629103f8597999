// SPDX-License-Identifier: Apache-2.0
// Two batches in flight (`batching.concurrency: 2`, the default on CUDA): the next batch is handed to the runtime,
// which stages its upload, while the current one runs; results do not change. Deterministic: which batches are in
// the runtime when a batch settles follows from the dispatch rules, not from timing.
import { SanModel, SanModelOptions } from '../../lib/segment/model';
import { Tensor } from '../../lib/runtime/tensor';
import { onCuda, testRuntime } from '../helpers/device';
import { tinyModelDir } from '../native/support';

const classes = ['sky', 'sea', 'sand', 'boat'];

/** A seeded pattern image [h, w, 3]: each seed gives other pixels, hence other labels. */
function pattern(h: number, w: number, seed: number): Tensor<'uint8'> {
  const data = new Uint8Array(h * w * 3);
  data.forEach((_, i) => {
    data[i] = (Math.imul(i + seed * 7919, 2654435761) >>> 24) ^ ((i / 3) % w) * seed;
  });
  return { type: 'uint8', dims: [h, w, 3], data };
}

/** Segments four images one per batch; for each settled batch, how many calls were still in the runtime. */
async function runFour(batching: SanModelOptions['batching']): Promise<{ labels: Uint16Array[]; inRuntime: number[] }> {
  const inRuntime: number[] = [];
  let model: SanModel | undefined;
  model = await SanModel.load(tinyModelDir, {
    ...testRuntime(),
    verify: false,
    batching: { maxBatchSize: 1, maxDelayMs: 0, ...batching },
    onBatch: () => inRuntime.push(model!.metrics().queueDepth.runtime),
  });
  try {
    await model.encodeText(classes); // cached: the batches below are the runtime's only calls
    const images = [1, 2, 3, 4].map((seed) => pattern(64, 80, seed));
    const results = await Promise.all(images.map((image) => model!.segment(image, { classes, resize: false })));
    return { labels: results.map((result) => result.labels.data as Uint16Array), inRuntime };
  } finally {
    await model.dispose();
  }
}

test('batching.concurrency 2: the next batch is in the runtime while one runs, and results are unchanged', async () => {
  const one = await runFour({ concurrency: 1 });
  const two = await runFour({ concurrency: 2 });
  // One at a time: the next batch is dispatched only after the previous one settled.
  expect(one.inRuntime).toEqual([0, 0, 0, 0]);
  // Two in flight: when each of the first three settles, the next one is already in the runtime.
  expect(two.inRuntime).toEqual([1, 1, 1, 0]);
  two.labels.forEach((labels, i) => expect(Buffer.from(labels.buffer).equals(Buffer.from(one.labels[i].buffer))).toBe(true));
});

test('the default is one batch in flight on the CPU and two on CUDA', async () => {
  const defaults = await runFour({});
  expect(defaults.inRuntime).toEqual(onCuda ? [1, 1, 1, 0] : [0, 0, 0, 0]);
});
