// SPDX-License-Identifier: Apache-2.0
// Concurrent segment() calls are batched without changing any result; requests can be aborted, time out or be
// refused when the queue is full; segmentMany and segmentStream keep order and back-pressure. No assertion here
// depends on how fast the machine is: batches are forced by a long maxDelayMs and a full maxBatchSize.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode } from '../../lib/errors';
import { SanModel, SanModelOptions } from '../../lib/segment/model';
import { Tensor } from '../../lib/runtime/tensor';
import { fixtureTolerance, labelTolerance, onCuda, resolvedTestDevice, testRuntime } from '../helpers/device';
import { until } from '../helpers/http';
import { expectLabelsNearArgmax, expectTensorClose, tinyModelDir } from '../native/support';

const classes = ['sky', 'sea', 'sand', 'boat'];
const LONG_DELAY = 60_000;

/** A seeded noise image [h, w, 3]. */
function noise(h: number, w: number, seed: number): Tensor<'uint8'> {
  const data = new Uint8Array(h * w * 3);
  let state = seed * 2654435761;
  for (let i = 0; i < data.length; i += 1) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return { type: 'uint8', dims: [h, w, 3], data };
}

async function load(options: SanModelOptions = {}): Promise<SanModel> {
  return SanModel.load(tinyModelDir, { ...testRuntime(), verify: false, ...options });
}

let single: SanModel;
beforeAll(async () => {
  single = await load({ batching: { maxBatchSize: 1, maxDelayMs: 0 } });
});
afterAll(() => single.dispose());

test('a batch of images of one padded shape gives each image its unbatched result', async () => {
  // 64 × 85, 50 × 70, 60 × 96 and 33 × 65 all pad to 64 × 96.
  const images = [noise(64, 85, 1), noise(50, 70, 2), noise(60, 96, 3), noise(33, 65, 4)];
  const batchSizes: number[] = [];
  const batched = await load({
    batching: { maxBatchSize: 4, maxDelayMs: LONG_DELAY },
    onBatch: ({ size }) => batchSizes.push(size),
  });
  try {
    const options = { classes, resize: false, scores: true };
    const together = await Promise.all(images.map((image) => batched.segment(image, options)));
    expect(batchSizes).toEqual([4]);
    for (const [i, image] of images.entries()) {
      const alone = await single.segment(image, options);
      expect(together[i].labels.dims).toEqual(image.dims.slice(0, 2));
      // Bit for bit on the CPU; on a GPU another batch size may pick other kernels, so within the dtype's tolerance.
      expectLabelsNearArgmax(together[i].labels.data, alone.labels.data, alone.scores!, labelTolerance());
      expectTensorClose(together[i].scores!, alone.scores!, onCuda ? fixtureTolerance() : { atol: 1e-5, rtol: 0 });
    }
    expect(batched.metrics().batches).toEqual({ count: 1, sizeHistogram: { 4: 1 } });
  } finally {
    await batched.dispose();
  }
});

test('images of different padded shapes or different vocabularies never share a batch', async () => {
  const batchSizes: number[] = [];
  const model = await load({ batching: { maxBatchSize: 2, maxDelayMs: 50 }, onBatch: ({ size }) => batchSizes.push(size) });
  try {
    await Promise.all([
      model.segment(noise(64, 85, 1), { classes, resize: false }),
      model.segment(noise(96, 128, 2), { classes, resize: false }),
      model.segment(noise(64, 85, 3), { classes: ['cat', 'dog'], resize: false }),
    ]);
    expect(batchSizes).toEqual([1, 1, 1]);
  } finally {
    await model.dispose();
  }
});

describe('requests waiting for a batch', () => {
  let model: SanModel;
  beforeEach(async () => {
    model = await load({ batching: { maxBatchSize: 2, maxDelayMs: LONG_DELAY, maxQueue: 2 } });
  });
  afterEach(() => model.dispose());

  test('an aborted request is removed and rejected; the others are answered', async () => {
    const controller = new AbortController();
    const doomed = model.segment(noise(32, 32, 1), { classes, signal: controller.signal });
    await until(() => model.metrics().queueDepth.batcher === 1);
    controller.abort();
    await expect(doomed).rejects.toMatchObject({ name: 'AbortError' });
    const pair = await Promise.all([1, 2].map((seed) => model.segment(noise(32, 32, seed), { classes })));
    expect(pair.map((r) => r.labels.dims)).toEqual([[32, 32], [32, 32]]);
    expect(model.metrics().batches.sizeHistogram).toEqual({ 2: 1 });
  });

  test('a request past its timeoutMs rejects with ERR_SAN_TIMEOUT', async () => {
    await expect(model.segment(noise(32, 32, 1), { classes, timeoutMs: 10 })).rejects.toMatchObject({
      code: ErrorCode.TIMEOUT,
    });
  });

  test('beyond maxQueue a request is refused with ERR_SAN_OVERLOADED; dispose answers the accepted ones', async () => {
    const accepted = [1, 2].map((seed) => model.segment(noise(32, 32 + seed * 32, seed), { classes }));
    await until(() => model.metrics().queueDepth.batcher === 2);
    await expect(model.segment(noise(32, 32, 9), { classes })).rejects.toMatchObject({ code: ErrorCode.OVERLOADED });
    const disposing = model.dispose();
    await expect(Promise.all(accepted)).resolves.toHaveLength(2);
    await disposing;
    await expect(model.segment(noise(32, 32, 1), { classes })).rejects.toMatchObject({ code: ErrorCode.DISPOSED });
  });
});

describe('many images', () => {
  test('segmentMany yields in input order, a bad input as its error', async () => {
    const inputs = [noise(40, 40, 1), Buffer.from('not an image'), noise(20, 30, 2), noise(30, 20, 3)];
    const items = [];
    for await (const item of single.segmentMany(inputs, { classes, concurrency: 3 })) items.push(item);
    expect(items.map((item) => item.index)).toEqual([0, 1, 2, 3]);
    expect(items[1].error).toMatchObject({ code: ErrorCode.IMAGE });
    expect(items.filter((item) => item.result).map((item) => item.result!.labels.dims)).toEqual([[40, 40], [20, 30], [30, 20]]);
  });

  test('segmentStream holds back its writer while nobody reads, then delivers everything in order', async () => {
    const total = 200;
    let pulled = 0;
    function* inputs(): Generator<Tensor<'uint8'>> {
      for (let i = 0; i < total; i += 1) {
        pulled += 1;
        yield noise(8, 8, i);
      }
    }
    const stream = single.segmentStream({ classes, concurrency: 2, resize: false });
    const source = Readable.from(inputs());
    source.pipe(stream);
    // Nobody reads: wait until the stream has stopped pulling (its buffers are full).
    let before = -1;
    while (before !== pulled) {
      before = pulled;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(pulled).toBeLessThan(total);
    const seen: number[] = [];
    await pipeline(stream, new Writable({
      objectMode: true,
      write(item: { index: number; result?: unknown }, _encoding, done) {
        seen.push(item.result ? item.index : -1);
        done();
      },
    }));
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  test('bad concurrency is refused', async () => {
    await expect(single.segmentMany([], { classes, concurrency: 0 }).next()).rejects.toThrow(
      /Expected an integer between 1 and 1024 for options.concurrency but received 0/);
  });
});

test('metrics report requests, latency, the text cache and memory', async () => {
  const model = await load();
  try {
    await model.segment(noise(32, 32, 1), { classes });
    await expect(model.segment(Buffer.from('junk'), { classes })).rejects.toThrow();
    const metrics = model.metrics();
    expect(metrics.requests).toEqual({ succeeded: 1, failed: 1 });
    expect(metrics.latencyMs!.p50).toBeGreaterThan(0);
    expect(metrics.imagesPerSecond).toBeGreaterThan(0);
    expect(metrics.queueDepth).toEqual({ batcher: 0, runtime: 0 });
    expect(metrics.textCache).toMatchObject({ misses: classes.length });
    expect(metrics.memory.device).toBe(resolvedTestDevice);
    expect(metrics.memory.rssBytes).toBeGreaterThan(0);
    const { deviceMemory } = metrics.memory;
    if (onCuda) {
      // The model's weights at least are on the GPU; the allocator holds what tensors hold, and more.
      expect(deviceMemory).toMatchObject({ allocatedBytes: expect.any(Number), peakAllocatedBytes: expect.any(Number) });
      const { allocatedBytes, reservedBytes, peakAllocatedBytes } = deviceMemory as { [key: string]: number };
      expect(allocatedBytes).toBeGreaterThan(0);
      expect(reservedBytes).toBeGreaterThanOrEqual(allocatedBytes);
      expect(peakAllocatedBytes).toBeGreaterThanOrEqual(allocatedBytes);
    } else {
      expect(deviceMemory).toEqual({ unavailable: 'the model runs on the cpu' });
    }
  } finally {
    await model.dispose();
  }
});
