import { BatchInfo, DynamicBatcher } from '../../lib/segment/batcher';
import { ErrorCode } from '../../lib/errors';
import { SanError } from '../../lib/errors';

/**
 * A runBatch the test settles by hand: it records each batch and leaves it running until `resolve` or `reject`.
 * Every test runs on jest's fake clock, so nothing here depends on how fast the machine is.
 */
function manualRunner<I, O>(): {
  run: (items: I[]) => Promise<O[]>;
  calls: { items: I[]; resolve: (results: O[]) => void; reject: (error: unknown) => void }[];
} {
  const calls: { items: I[]; resolve: (results: O[]) => void; reject: (error: unknown) => void }[] = [];
  const run = (items: I[]): Promise<O[]> => new Promise((resolve, reject) => calls.push({ items, resolve, reject }));
  return { run, calls };
}

/** Lets settled promises run their callbacks, without moving the fake clock. */
const flush = (): Promise<void> => jest.advanceTimersByTimeAsync(0);

/** Records how a promise settled, so a test can check it has not settled yet. */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const tenTimes = async (items: number[]): Promise<number[]> => items.map((n) => n * 10);

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('DynamicBatcher batching', () => {
  test('concurrent submits form one batch of maxBatchSize, dispatched as soon as it is full', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 4, maxDelayMs: 1000 });
    const results = Promise.all([1, 2, 3, 4].map((n) => batcher.submit(n)));
    expect(runBatch).toHaveBeenCalledTimes(1);
    expect(runBatch).toHaveBeenCalledWith([1, 2, 3, 4]);
    await expect(results).resolves.toEqual([10, 20, 30, 40]);
  });

  test('routes each result to its own caller, across several batches', async () => {
    const { run, calls } = manualRunner<string, string>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 4, maxDelayMs: 5 });
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const pending = names.map((name) => batcher.submit(name));
    expect(calls.map((call) => call.items)).toEqual([['a', 'b', 'c', 'd']]);
    // Answered in reverse, so a result matched by arrival order rather than by index would show.
    calls[0].resolve(calls[0].items.map((name) => name.toUpperCase()));
    await flush();
    expect(calls.map((call) => call.items)).toEqual([['a', 'b', 'c', 'd'], ['e', 'f', 'g', 'h']]);
    calls[1].resolve(calls[1].items.map((name) => name.toUpperCase()));
    await jest.advanceTimersByTimeAsync(5);
    expect(calls[2].items).toEqual(['i', 'j']);
    calls[2].resolve(['I', 'J']);
    await expect(Promise.all(pending)).resolves.toEqual(names.map((name) => name.toUpperCase()));
    expect(batcher.stats()).toEqual({
      queued: 0,
      waiting: 0,
      inFlight: 0,
      batches: 3,
      items: 10,
      batchSizeHistogram: { 4: 2, 2: 1 },
    });
  });

  test('dispatches a partial batch maxDelayMs after its first item was queued', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 8, maxDelayMs: 10 });
    const first = batcher.submit(1);
    await jest.advanceTimersByTimeAsync(4);
    const second = batcher.submit(2);
    await jest.advanceTimersByTimeAsync(5);
    expect(runBatch).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(runBatch).toHaveBeenCalledTimes(1);
    expect(runBatch).toHaveBeenCalledWith([1, 2]);
    await expect(Promise.all([first, second])).resolves.toEqual([10, 20]);
  });

  test('with concurrency 1, items queued while a batch runs form the next batch', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 8, maxDelayMs: 0 });
    const first = batcher.submit(1);
    expect(calls.map((call) => call.items)).toEqual([[1]]);
    const rest = [2, 3, 4].map((n) => batcher.submit(n));
    await jest.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(batcher.stats()).toMatchObject({ queued: 3, inFlight: 1 });
    calls[0].resolve([-1]);
    await flush();
    expect(calls.map((call) => call.items)).toEqual([[1], [2, 3, 4]]);
    calls[1].resolve([-2, -3, -4]);
    await expect(first).resolves.toBe(-1);
    await expect(Promise.all(rest)).resolves.toEqual([-2, -3, -4]);
  });

  test('runs up to `concurrency` batches at once', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxDelayMs: 0, concurrency: 2 });
    const pending = [1, 2, 3, 4, 5, 6].map((n) => batcher.submit(n));
    expect(calls.map((call) => call.items)).toEqual([[1], [2]]);
    expect(batcher.stats()).toMatchObject({ queued: 4, inFlight: 2 });
    calls[1].resolve([20]);
    await flush();
    expect(calls.map((call) => call.items)).toEqual([[1], [2], [3, 4]]);
    calls[0].resolve([10]);
    await flush();
    expect(calls[3].items).toEqual([5, 6]);
    calls[2].resolve([30, 40]);
    calls[3].resolve([50, 60]);
    await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30, 40, 50, 60]);
  });

  test('batches only items of the same key, in submit order within the key', async () => {
    const runBatch = jest.fn(async (items: { shape: string; id: number }[]) => items.map((item) => item.id));
    const batcher = new DynamicBatcher(runBatch, {
      maxBatchSize: 8,
      maxDelayMs: 3,
      concurrency: 2,
      batchKey: (item) => item.shape,
    });
    const items = [
      { shape: '512x512', id: 1 },
      { shape: '640x480', id: 2 },
      { shape: '512x512', id: 3 },
      { shape: '640x480', id: 4 },
      { shape: '512x512', id: 5 },
    ];
    const pending = items.map((item) => batcher.submit(item));
    await jest.advanceTimersByTimeAsync(3);
    expect(runBatch.mock.calls.map(([batch]) => batch.map((item) => item.id))).toEqual([[1, 3, 5], [2, 4]]);
    await expect(Promise.all(pending)).resolves.toEqual([1, 2, 3, 4, 5]);
  });

  test('a key is full on its own items only, and ready keys are served oldest first item first', async () => {
    const { run, calls } = manualRunner<string, string>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 3, maxDelayMs: 10, batchKey: (item) => item[0] });
    const pending = [batcher.submit('x0')];
    await jest.advanceTimersByTimeAsync(10);
    expect(calls.map((call) => call.items)).toEqual([['x0']]);
    // While x0 runs: b1 first, then a full batch of a.
    pending.push(batcher.submit('b1'), batcher.submit('a1'), batcher.submit('a2'), batcher.submit('a3'));
    await jest.advanceTimersByTimeAsync(10);
    calls[0].resolve(['X0']);
    await flush();
    expect(calls.map((call) => call.items)).toEqual([['x0'], ['b1']]);
    calls[1].resolve(['B1']);
    await flush();
    expect(calls[2].items).toEqual(['a1', 'a2', 'a3']);
    calls[2].resolve(['A1', 'A2', 'A3']);
    await expect(Promise.all(pending)).resolves.toEqual(['X0', 'B1', 'A1', 'A2', 'A3']);
  });

  test('a full batch of a younger key goes before an older key that is not ready yet', async () => {
    const runBatch = jest.fn(async (items: string[]) => items);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 2, maxDelayMs: 10, batchKey: (item) => item[0] });
    const pending = ['b1', 'a1', 'a2'].map((item) => batcher.submit(item));
    expect(runBatch.mock.calls).toEqual([[['a1', 'a2']]]);
    await jest.advanceTimersByTimeAsync(10);
    expect(runBatch.mock.calls).toEqual([[['a1', 'a2']], [['b1']]]);
    await expect(Promise.all(pending)).resolves.toEqual(['b1', 'a1', 'a2']);
  });

  test('tolerates a runBatch that returns an Array rather than a Promise', async () => {
    const batcher = new DynamicBatcher((items: number[]) => items.map((n) => n + 1) as unknown as Promise<number[]>, {
      maxDelayMs: 0,
    });
    await expect(batcher.submit(1)).resolves.toBe(2);
  });
});

describe('DynamicBatcher abort and timeout', () => {
  test('an abort removes a queued item and rejects it; runBatch never sees it, the others are unaffected', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 8, maxDelayMs: 10 });
    const controller = new AbortController();
    const first = batcher.submit(1);
    const aborted = batcher.submit(2, { signal: controller.signal });
    const third = batcher.submit(3);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(aborted).rejects.toMatchObject({
      name: 'AbortError',
      code: 'ABORT_ERR',
      cause: reason,
      message: 'The call was aborted before its batch was dispatched',
    });
    expect(batcher.stats()).toMatchObject({ queued: 2 });
    await jest.advanceTimersByTimeAsync(10);
    expect(runBatch.mock.calls).toEqual([[[1, 3]]]);
    await expect(Promise.all([first, third])).resolves.toEqual([10, 30]);
  });

  test('aborting the only queued item clears the delay timer', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxDelayMs: 10 });
    const controller = new AbortController();
    const aborted = track(batcher.submit(1, { signal: controller.signal }));
    expect(jest.getTimerCount()).toBe(1);
    controller.abort();
    await flush();
    expect(aborted.error).toMatchObject({ name: 'AbortError' });
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(100);
    expect(runBatch).not.toHaveBeenCalled();
  });

  test('an already aborted signal rejects at once without queueing', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxDelayMs: 0 });
    const promise = batcher.submit(1, { signal: AbortSignal.abort('stop') });
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, items: 0 });
    await expect(promise).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'stop' });
    expect(runBatch).not.toHaveBeenCalled();
  });

  test('an abort while the batch runs lets it finish, then rejects that item only, result discarded', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxDelayMs: 10 });
    const controller = new AbortController();
    const kept = batcher.submit(1);
    const aborted = track(batcher.submit(2, { signal: controller.signal }));
    expect(calls).toHaveLength(1);
    controller.abort();
    await flush();
    expect(aborted.settled).toBe(false);
    expect(batcher.stats()).toMatchObject({ inFlight: 2 });
    calls[0].resolve([10, 20]);
    await expect(kept).resolves.toBe(10);
    expect(aborted.error).toMatchObject({
      name: 'AbortError',
      code: 'ABORT_ERR',
      message: expect.stringMatching(/aborted while its batch ran; .* result was discarded$/),
    });
    expect(aborted.value).toBeUndefined();
  });

  test('a timeout removes a queued item and rejects it with ERR_SAN_TIMEOUT', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxDelayMs: 20 });
    const timedOut = track(batcher.submit(1, { timeoutMs: 5 }));
    const other = batcher.submit(2);
    await jest.advanceTimersByTimeAsync(4);
    expect(timedOut.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(timedOut.error).toBeInstanceOf(SanError);
    expect(timedOut.error).toMatchObject({
      code: ErrorCode.TIMEOUT,
      message: 'The call timed out after 5 ms (options.timeoutMs) before its batch was dispatched',
    });
    expect(batcher.stats()).toMatchObject({ queued: 1 });
    await jest.advanceTimersByTimeAsync(15);
    expect(runBatch.mock.calls).toEqual([[[2]]]);
    await expect(other).resolves.toBe(20);
  });

  test('a timeout while the batch runs rejects once the batch settles', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxDelayMs: 0 });
    const timedOut = track(batcher.submit(1, { timeoutMs: 5 }));
    await jest.advanceTimersByTimeAsync(50);
    expect(timedOut.settled).toBe(false);
    calls[0].resolve([10]);
    await flush();
    expect(timedOut.error).toMatchObject({
      code: 'ERR_SAN_TIMEOUT',
      message: expect.stringMatching(/^The call timed out after 5 ms .* while its batch ran; .* discarded$/),
    });
  });

  test('a result that arrives before the timeout resolves and clears the timer', async () => {
    const batcher = new DynamicBatcher(tenTimes, { maxDelayMs: 0 });
    await expect(batcher.submit(1, { timeoutMs: 1000 })).resolves.toBe(10);
    expect(jest.getTimerCount()).toBe(0);
  });

  test('abort and timeout errors carry the stack of the submit call', async () => {
    const batcher = new DynamicBatcher(tenTimes, { maxDelayMs: 100 });
    const promise = batcher.submit(1, { timeoutMs: 1 });
    const expectation = expect(promise).rejects.toMatchObject({ stack: expect.stringContaining('batcher.test.ts') });
    await jest.advanceTimersByTimeAsync(1);
    await expectation;
  });
});

describe('DynamicBatcher queue bound', () => {
  test("onFull 'reject' rejects with ERR_SAN_OVERLOADED once maxQueue items are queued", async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 8, maxDelayMs: 10, maxQueue: 2 });
    const accepted = [batcher.submit(1), batcher.submit(2)];
    const refused = batcher.submit(3);
    await expect(refused).rejects.toBeInstanceOf(SanError);
    await expect(refused).rejects.toMatchObject({
      code: 'ERR_SAN_OVERLOADED',
      message: expect.stringMatching(
        /^The batcher's queue is full: 2 items wait to be dispatched \(options\.maxQueue is 2\); retry later/,
      ),
    });
    await jest.advanceTimersByTimeAsync(10);
    await expect(Promise.all(accepted)).resolves.toEqual([10, 20]);
    // Running items do not count: the queue has room again.
    await jest.advanceTimersByTimeAsync(0);
    const again = batcher.submit(4);
    await jest.advanceTimersByTimeAsync(10);
    await expect(again).resolves.toBe(40);
  });

  test("onFull 'wait' holds submits first come first served until the queue has room", async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxDelayMs: 10, maxQueue: 2, onFull: 'wait' });
    const pending = [1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n));
    expect(calls.map((call) => call.items)).toEqual([[1, 2]]);
    expect(batcher.stats()).toMatchObject({ queued: 2, waiting: 3, inFlight: 2 });
    calls[0].resolve([10, 20]);
    await flush();
    expect(calls.map((call) => call.items)).toEqual([[1, 2], [3, 4]]);
    expect(batcher.stats()).toMatchObject({ queued: 2, waiting: 1 });
    calls[1].resolve([30, 40]);
    await flush();
    expect(calls[2].items).toEqual([5, 6]);
    expect(batcher.stats()).toMatchObject({ queued: 1, waiting: 0 });
    calls[2].resolve([50, 60]);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls[3].items).toEqual([7]);
    calls[3].resolve([70]);
    await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  test("a submit held by onFull 'wait' still honours its signal and timeout", async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 1, maxDelayMs: 0, maxQueue: 1, onFull: 'wait' });
    const controller = new AbortController();
    const running = batcher.submit(1);
    const queued = batcher.submit(2);
    const aborted = track(batcher.submit(3, { signal: controller.signal }));
    const timedOut = track(batcher.submit(4, { timeoutMs: 5 }));
    const last = batcher.submit(5);
    expect(batcher.stats()).toMatchObject({ queued: 1, waiting: 3 });
    controller.abort();
    await jest.advanceTimersByTimeAsync(5);
    expect(aborted.error).toMatchObject({ name: 'AbortError' });
    expect(timedOut.error).toMatchObject({ code: ErrorCode.TIMEOUT });
    expect(batcher.stats()).toMatchObject({ queued: 1, waiting: 1 });
    calls[0].resolve([10]);
    await flush();
    calls[1].resolve([20]);
    await flush();
    calls[2].resolve([50]);
    await expect(Promise.all([running, queued, last])).resolves.toEqual([10, 20, 50]);
    expect(calls.map((call) => call.items)).toEqual([[1], [2], [5]]);
  });
});

describe('DynamicBatcher failures', () => {
  test('a rejected batch rejects every item of that batch, and only those, with its error', async () => {
    const failure = new Error('CUDA out of memory');
    const batcher = new DynamicBatcher(
      async (items: string[]) => {
        if (items[0].startsWith('big')) throw failure;
        return items.map((item) => item.length);
      },
      { maxDelayMs: 1, concurrency: 2, batchKey: (item) => item.slice(0, 3) },
    );
    const big = Promise.allSettled([batcher.submit('big-1'), batcher.submit('big-2')]);
    const small = Promise.all([batcher.submit('sma'), batcher.submit('small')]);
    await jest.advanceTimersByTimeAsync(1);
    expect(await big).toEqual([
      { status: 'rejected', reason: failure },
      { status: 'rejected', reason: failure },
    ]);
    await expect(small).resolves.toEqual([3, 5]);
  });

  test('a runBatch that throws synchronously rejects the batch the same way', async () => {
    const failure = new TypeError('bad input');
    const batcher = new DynamicBatcher<number, number>(
      () => {
        throw failure;
      },
      { maxBatchSize: 2 },
    );
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(results).toEqual([
      { status: 'rejected', reason: failure },
      { status: 'rejected', reason: failure },
    ]);
    expect(batcher.stats()).toMatchObject({ inFlight: 0, batches: 1 });
  });

  test('a wrong number of results rejects every item of the batch with ERR_SAN_RUNTIME', async () => {
    const batcher = new DynamicBatcher(async (items: number[]) => items.slice(1), { maxBatchSize: 3 });
    const results = await Promise.allSettled([1, 2, 3].map((n) => batcher.submit(n)));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const { reason } = result as PromiseRejectedResult;
      expect(reason).toBeInstanceOf(SanError);
      expect(reason).toMatchObject({
        code: 'ERR_SAN_RUNTIME',
        message:
          'runBatch resolved with 2 results for a batch of 3 items; ' +
          'it must resolve with an Array of one result per item, in item order',
      });
    }
  });

  test('a result that is not an Array rejects every item of the batch', async () => {
    const batcher = new DynamicBatcher(async () => undefined as unknown as number[], { maxDelayMs: 0 });
    await expect(batcher.submit(1)).rejects.toThrow(/^runBatch resolved with undefined of type undefined for a batch/);
  });

  test('a batch failure does not stop the batches after it', async () => {
    let calls = 0;
    const batcher = new DynamicBatcher(
      async (items: number[]) => {
        calls += 1;
        if (calls === 1) throw new Error('first batch fails');
        return items;
      },
      { maxBatchSize: 1 },
    );
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'fulfilled']);
  });

  test('every submit settles exactly once under a mix of aborts, timeouts, failures and bad results', async () => {
    // A fixed linear congruential sequence: the same mix on every run.
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, {
      maxBatchSize: 4,
      maxDelayMs: 3,
      maxQueue: 12,
      onFull: 'wait',
      concurrency: 2,
      batchKey: (n) => String(n % 3),
    });
    const settledCounts = new Array<number>(200).fill(0);
    const all: Promise<unknown>[] = [];
    let answered = 0;
    for (let i = 0; i < 200; i += 1) {
      const controller = new AbortController();
      const timeoutMs = random() < 0.2 ? 1 + Math.floor(random() * 20) : undefined;
      const promise = batcher.submit(i, { signal: controller.signal, timeoutMs });
      all.push(promise.then(
        () => (settledCounts[i] += 1),
        () => (settledCounts[i] += 1),
      ));
      if (random() < 0.15) controller.abort();
      await jest.advanceTimersByTimeAsync(Math.floor(random() * 3));
      while (answered < calls.length && random() < 0.6) {
        const { items, resolve, reject } = calls[answered];
        const roll = random();
        if (roll < 0.1) reject(new Error('batch failed'));
        else if (roll < 0.15) resolve([]);
        else resolve(items.map((n) => n * 2));
        answered += 1;
      }
    }
    const closing = batcher.close();
    while (answered < calls.length || batcher.stats().queued + batcher.stats().waiting > 0) {
      if (answered < calls.length) {
        const { items, resolve } = calls[answered];
        resolve(items.map((n) => n * 2));
        answered += 1;
      }
      await jest.advanceTimersByTimeAsync(1);
    }
    await closing;
    await Promise.all(all);
    expect(settledCounts.every((count) => count === 1)).toBe(true);
    const stats = batcher.stats();
    expect(stats).toMatchObject({ queued: 0, waiting: 0, inFlight: 0 });
    expect(Object.entries(stats.batchSizeHistogram).reduce((sum, [size, count]) => sum + Number(size) * count, 0)).toBe(
      stats.items,
    );
    expect(calls.flatMap((call) => call.items).length).toBe(stats.items);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('DynamicBatcher close, stats and timers', () => {
  test('close() dispatches queued items without waiting for the delay and resolves once all settled', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxDelayMs: 10000, batchKey: (n) => String(n % 2) });
    const pending = [1, 2, 3, 4, 5].map((n) => batcher.submit(n));
    expect(calls).toHaveLength(1);
    const closed = track(batcher.close());
    expect(batcher.close()).toBe(batcher.close());
    calls[0].resolve([10, 30]);
    await flush();
    expect(calls.map((call) => call.items)).toEqual([[1, 3], [2, 4]]);
    calls[1].resolve([20, 40]);
    await flush();
    expect(calls[2].items).toEqual([5]);
    expect(closed.settled).toBe(false);
    calls[2].resolve([50]);
    await flush();
    expect(closed.settled).toBe(true);
    await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30, 40, 50]);
  });

  test('close() also runs submits held by onFull wait', async () => {
    const runBatch = jest.fn(tenTimes);
    const batcher = new DynamicBatcher(runBatch, { maxBatchSize: 2, maxDelayMs: 10000, maxQueue: 1, onFull: 'wait' });
    const pending = [1, 2, 3].map((n) => batcher.submit(n));
    expect(batcher.stats()).toMatchObject({ queued: 1, waiting: 2 });
    await batcher.close();
    await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30]);
    expect(runBatch.mock.calls).toEqual([[[1]], [[2]], [[3]]]);
  });

  test('after close(), submits reject with ERR_SAN_DISPOSED', async () => {
    const batcher = new DynamicBatcher(tenTimes);
    await batcher.close();
    const refused = batcher.submit(1);
    await expect(refused).rejects.toBeInstanceOf(SanError);
    await expect(refused).rejects.toMatchObject({
      code: 'ERR_SAN_DISPOSED',
      message: 'The batcher is closed: submit() was called after close()',
    });
  });

  test('onBatch reports each settled batch with its key, queue times and run time', async () => {
    const { run, calls } = manualRunner<number, number>();
    const infos: BatchInfo[] = [];
    const onBatch = (info: BatchInfo): number => infos.push(info);
    const batcher = new DynamicBatcher(run, { maxDelayMs: 10, batchKey: () => 'k', onBatch });
    const first = batcher.submit(1);
    await jest.advanceTimersByTimeAsync(4);
    const second = batcher.submit(2);
    await jest.advanceTimersByTimeAsync(6);
    expect(infos).toEqual([]);
    await jest.advanceTimersByTimeAsync(7);
    calls[0].reject(new Error('failed'));
    await expect(Promise.all([first, second])).rejects.toThrow('failed');
    expect(infos).toEqual([{ size: 2, key: 'k', queuedMs: [10, 6], runMs: 7 }]);
  });

  test('an onBatch that throws does not disturb the items; its error is rethrown asynchronously', async () => {
    const failure = new Error('metrics backend down');
    const deferred: (() => void)[] = [];
    const nextTick = jest.spyOn(process, 'nextTick').mockImplementation(((callback: () => void) => {
      deferred.push(callback);
    }) as never);
    try {
      const onBatch = (): void => {
        throw failure;
      };
      const batcher = new DynamicBatcher(tenTimes, { maxBatchSize: 2, onBatch });
      await expect(Promise.all([batcher.submit(1), batcher.submit(2)])).resolves.toEqual([10, 20]);
      expect(deferred).toHaveLength(1);
      expect(deferred[0]).toThrow(failure);
      expect(batcher.stats()).toMatchObject({ inFlight: 0, batches: 1 });
    } finally {
      nextTick.mockRestore();
    }
  });

  test('keeps a timer only while items wait to be dispatched', async () => {
    const { run, calls } = manualRunner<number, number>();
    const batcher = new DynamicBatcher(run, { maxDelayMs: 5 });
    expect(jest.getTimerCount()).toBe(0);
    const first = batcher.submit(1);
    batcher.submit(2).catch(() => undefined);
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(5);
    // Running, nothing queued: no timer.
    expect(jest.getTimerCount()).toBe(0);
    calls[0].resolve([1, 2]);
    await first;
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('DynamicBatcher bad calls', () => {
  const run = async (items: number[]): Promise<number[]> => items;

  test('BAD CALL - runBatch is not a function', () => {
    expect(() => new DynamicBatcher(42 as never)).toThrow(
      new TypeError('Expected a function for runBatch but received 42 of type number'),
    );
  });

  test.each([
    [null, TypeError, 'Expected an object for options but received null of type object'],
    [{ maxBatchSize: '8' }, TypeError, "Expected an integer for options.maxBatchSize but received '8' of type string"],
    [{ maxBatchSize: 0 }, RangeError, 'an integer between 1 and 2^31-1 for options.maxBatchSize but received 0 of type'],
    [{ maxBatchSize: 2.5 }, RangeError, 'an integer between 1 and 2^31-1 for options.maxBatchSize but received 2.5 of'],
    [{ maxDelayMs: true }, TypeError, 'Expected a number for options.maxDelayMs but received true of type boolean'],
    [{ maxDelayMs: -1 }, RangeError, 'Expected a number between 0 and 2^31-1 for options.maxDelayMs but received -1'],
    [{ maxDelayMs: NaN }, RangeError, 'Expected a number between 0 and 2^31-1 for options.maxDelayMs but received NaN'],
    [{ maxQueue: 0 }, RangeError, 'Expected an integer between 1 and 2^31-1 for options.maxQueue but received 0'],
    [{ maxQueue: Infinity }, RangeError, 'for options.maxQueue but received Infinity of type number'],
    [{ onFull: 1 }, TypeError, 'Expected a string for options.onFull but received 1 of type number'],
    [{ onFull: 'drop' }, RangeError, "Expected one of: reject, wait for options.onFull but received 'drop'"],
    [{ batchKey: 'shape' }, TypeError, "Expected a function for options.batchKey but received 'shape' of type string"],
    [{ concurrency: 0 }, RangeError, 'Expected an integer between 1 and 2^31-1 for options.concurrency but received 0'],
    [{ concurrency: '2' }, TypeError, "Expected an integer for options.concurrency but received '2' of type string"],
    [{ onBatch: {} }, TypeError, 'Expected a function for options.onBatch but received Object of type object'],
  ])('BAD CALL - options %p', (options, errorClass, message) => {
    let thrown: unknown;
    try {
      new DynamicBatcher(run, options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(errorClass);
    expect(thrown).toMatchObject({ code: 'ERR_SAN_INVALID_ARG', message: expect.stringContaining(message) });
  });

  test('accepts the edge values of every option', () => {
    const options = { maxBatchSize: 1, maxDelayMs: 0, maxQueue: 2 ** 31 - 1, onFull: 'wait', concurrency: 1 } as const;
    expect(() => new DynamicBatcher(run, options)).not.toThrow();
    expect(() => new DynamicBatcher(run, { maxDelayMs: 2 ** 31 - 1, maxQueue: 1, onFull: 'reject' })).not.toThrow();
  });

  test.each([
    ['x', TypeError, "Expected an object for options but received 'x' of type string"],
    [{ signal: {} }, TypeError, 'Expected an AbortSignal for options.signal but received Object of type object'],
    [{ timeoutMs: '5' }, TypeError, "Expected a number for options.timeoutMs but received '5' of type string"],
    [{ timeoutMs: 0 }, RangeError, 'Expected a number greater than 0 and at most 2^31-1 for options.timeoutMs'],
    [{ timeoutMs: 2 ** 31 }, RangeError, 'for options.timeoutMs but received 2147483648 of type number'],
  ])('BAD CALL - submit options %p rejects, without throwing', async (options, errorClass, message) => {
    const runBatch = jest.fn(run);
    const batcher = new DynamicBatcher(runBatch, { maxDelayMs: 0 });
    const promise = batcher.submit(1, options as never);
    await expect(promise).rejects.toBeInstanceOf(errorClass);
    const expected = { code: 'ERR_SAN_INVALID_ARG', message: expect.stringContaining(message) };
    await expect(promise).rejects.toMatchObject(expected);
    expect(runBatch).not.toHaveBeenCalled();
  });

  test('BAD CALL - a batchKey that returns no string rejects the submit', async () => {
    const batcher = new DynamicBatcher(run, { batchKey: (n) => n as unknown as string });
    await expect(batcher.submit(3)).rejects.toThrow(
      new TypeError('Expected a string for the result of options.batchKey(item) but received 3 of type number'),
    );
  });

  test('BAD CALL - a batchKey that throws rejects the submit with its error', async () => {
    const failure = new Error('no shape');
    const batcher = new DynamicBatcher(run, {
      batchKey: () => {
        throw failure;
      },
    });
    await expect(batcher.submit(3)).rejects.toBe(failure);
    expect(batcher.stats()).toMatchObject({ queued: 0 });
  });
});
