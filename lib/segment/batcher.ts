// SPDX-License-Identifier: Apache-2.0
/**
 * `DynamicBatcher`: gathers single calls into batches, in the manner of Triton's dynamic batcher.
 *
 * A model run costs much the same for one image as for several, so under load it pays to wait a little and run
 * many together. Each {@link DynamicBatcher.submit} queues one item; a batch of one key's items is dispatched when
 * it reaches `maxBatchSize`, or `maxDelayMs` after its oldest item was queued, whichever comes first, and only when
 * fewer than `concurrency` batches are running. Items that arrive while a batch runs wait and form the next one:
 * that is where batches come from when the model is busy, while an idle model sees a lone item after `maxDelayMs`.
 *
 * The batcher knows nothing about models: it calls a `runBatch(items)` function and hands each caller the result at
 * its item's index. It uses only Node built-ins.
 * @module
 */
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';

/** What {@link DynamicBatcher.submit} does when `maxQueue` items are already queued. */
export type OnFull = 'reject' | 'wait';

/** What the `onBatch` hook receives once a batch has settled. */
export interface BatchInfo {
  /** Number of items in the batch. */
  size: number;
  /** The batch's key (see {@link DynamicBatcherOptions.batchKey}); `''` without a `batchKey`. */
  key: string;
  /**
   * For each item, in batch order, milliseconds from its `submit()` to the batch's dispatch (time held by
   * `onFull: 'wait'` included).
   */
  queuedMs: number[];
  /** Milliseconds from the call of `runBatch` to its settling. */
  runMs: number;
}

/** Options of a {@link DynamicBatcher}. */
export interface DynamicBatcherOptions<I> {
  /**
   * Most items in one batch, an integer from 1 to 2^31-1. A key's batch is dispatched as soon as it has this many.
   * @defaultValue `8`
   */
  maxBatchSize?: number;
  /**
   * Milliseconds a batch waits for more items after its oldest item was queued, from 0 to 2^31-1. `0` dispatches
   * whatever is queued as soon as a batch may run; batches then form only while others run.
   * @defaultValue `2`
   */
  maxDelayMs?: number;
  /**
   * Most items queued and not yet dispatched, an integer from 1 to 2^31-1. Running items do not count.
   * @defaultValue `256`
   */
  maxQueue?: number;
  /**
   * What a submit does when `maxQueue` items are queued: `'reject'` rejects it at once with SanError
   * ERR_SAN_OVERLOADED; `'wait'` holds it, first come first served, until an item leaves the queue, still honouring
   * its `signal` and `timeoutMs`.
   * @defaultValue `'reject'`
   */
  onFull?: OnFull;
  /**
   * The key of an item; items are batched only with items of the same key, e.g. images of one padded shape. It is
   * called once per submit and must return a string.
   * @defaultValue every item has the key `''`
   */
  batchKey?: (item: I) => string;
  /**
   * Most batches running at once, an integer from 1 to 2^31-1. With `1`, the next batch is dispatched only when the
   * running one has settled.
   * @defaultValue `1`
   */
  concurrency?: number;
  /**
   * Called after each batch has settled (its items already resolved or rejected), e.g. to record metrics. It must
   * not throw: an exception it throws is rethrown asynchronously, as an uncaught exception, like one thrown by an
   * EventEmitter listener.
   * @defaultValue none
   */
  onBatch?: (info: BatchInfo) => void;
}

/** Options of {@link DynamicBatcher.submit}. */
export interface SubmitOptions {
  /**
   * Aborts the call. A queued item is removed from its queue and rejected at once with an `AbortError` (`name`
   * `'AbortError'`, `code` `'ABORT_ERR'`, `cause` the signal's reason). An item whose batch is running is not
   * taken out of it: the batch runs to completion, and then the call rejects with the `AbortError` and its result
   * is discarded. An already aborted signal rejects without queueing.
   * @defaultValue none
   */
  signal?: AbortSignal;
  /**
   * Milliseconds after `submit()` at which the call gives up, greater than 0 and at most 2^31-1. It is counted from
   * the submit, so it bounds the whole wait, and it behaves as an abort: a queued item is removed and rejected at
   * once with SanError ERR_SAN_TIMEOUT; a running item rejects with it once its batch has settled.
   * @defaultValue none (no limit)
   */
  timeoutMs?: number;
}

/** Counters of a {@link DynamicBatcher}. */
export interface BatcherStats {
  /** Items queued and not yet dispatched (what counts toward `maxQueue`). */
  queued: number;
  /** Submits held by `onFull: 'wait'` because the queue is full; not yet queued. */
  waiting: number;
  /** Items in batches that are running. */
  inFlight: number;
  /** Batches dispatched so far. */
  batches: number;
  /** Items dispatched so far, in all batches. */
  items: number;
  /** Batch size to the number of batches of that size dispatched so far. */
  batchSizeHistogram: Record<number, number>;
}

/** Every option's default; `batchKey` and `onBatch` default to none. */
export const DYNAMIC_BATCHER_DEFAULTS = Object.freeze({
  maxBatchSize: 8,
  maxDelayMs: 2,
  maxQueue: 256,
  onFull: 'reject' as OnFull,
  concurrency: 1,
});

const ON_FULL: readonly OnFull[] = ['reject', 'wait'];
const MAX_INT32 = 2 ** 31 - 1;

/** An abort, as Node's own APIs report one (`name` `'AbortError'`, `code` `'ABORT_ERR'`, the reason as `cause`). */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';
}

type Settings<I> = Required<Omit<DynamicBatcherOptions<I>, 'batchKey' | 'onBatch'>> &
  Pick<DynamicBatcherOptions<I>, 'batchKey' | 'onBatch'>;

/** One submit, from its call to its settling. */
interface Entry<I, O> {
  readonly item: I;
  readonly key: string;
  readonly submittedAt: number;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
  /** Where the user called `submit()`; made only when a signal or timeout may need it. */
  readonly callSite: Error | undefined;
  state: 'waiting' | 'queued' | 'running' | 'settled';
  /** Admission order into the queues; the oldest head is served first. */
  seq: number;
  queuedAt: number;
  /** The abort or timeout that struck while the item's batch ran; the call rejects with it. */
  cancelled: unknown;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function checkInteger(options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name] ?? fallback;
  if (typeof value !== 'number') throw is.invalidParameterError(`options.${name}`, 'an integer', value);
  if (!is.integer(value) || !is.inRange(value, 1, MAX_INT32)) {
    throw is.invalidParameterError(`options.${name}`, 'an integer between 1 and 2^31-1', value, 'range');
  }
  return value;
}

function checkOptional<F>(options: Record<string, unknown>, name: string): F | undefined {
  const value = options[name];
  if (value !== undefined && typeof value !== 'function') {
    throw is.invalidParameterError(`options.${name}`, 'a function', value);
  }
  return value as F | undefined;
}

function checkOptions<I>(options: unknown): Settings<I> {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  is.knownOptions(options, 'options', ['maxBatchSize', 'maxDelayMs', 'maxQueue', 'onFull', 'batchKey', 'concurrency',
    'onBatch']);
  const maxBatchSize = checkInteger(options, 'maxBatchSize', DYNAMIC_BATCHER_DEFAULTS.maxBatchSize);
  const { maxDelayMs = DYNAMIC_BATCHER_DEFAULTS.maxDelayMs, onFull = DYNAMIC_BATCHER_DEFAULTS.onFull } = options;
  if (typeof maxDelayMs !== 'number') throw is.invalidParameterError('options.maxDelayMs', 'a number', maxDelayMs);
  if (!is.inRange(maxDelayMs, 0, MAX_INT32)) {
    throw is.invalidParameterError('options.maxDelayMs', 'a number between 0 and 2^31-1', maxDelayMs, 'range');
  }
  const maxQueue = checkInteger(options, 'maxQueue', DYNAMIC_BATCHER_DEFAULTS.maxQueue);
  if (!is.string(onFull)) throw is.invalidParameterError('options.onFull', 'a string', onFull);
  if (!is.inArray(onFull, ON_FULL)) {
    throw is.invalidParameterError('options.onFull', `one of: ${ON_FULL.join(', ')}`, onFull, 'range');
  }
  const concurrency = checkInteger(options, 'concurrency', DYNAMIC_BATCHER_DEFAULTS.concurrency);
  const batchKey = checkOptional<(item: I) => string>(options, 'batchKey');
  const onBatch = checkOptional<(info: BatchInfo) => void>(options, 'onBatch');
  return { maxBatchSize, maxDelayMs, maxQueue, onFull, concurrency, batchKey, onBatch };
}

/** Checks the options of {@link DynamicBatcher.submit}; `SanModel` checks its own `signal` and `timeoutMs` with it. */
export function checkSubmitOptions(options: unknown): SubmitOptions {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  is.knownOptions(options, 'options', ['signal', 'timeoutMs']);
  const { signal, timeoutMs } = options;
  // Checked by shape, not instanceof: a signal may come from another realm (a vm context, a test environment).
  const isSignal =
    typeof signal === 'object' &&
    signal !== null &&
    typeof (signal as AbortSignal).aborted === 'boolean' &&
    typeof (signal as AbortSignal).addEventListener === 'function' &&
    typeof (signal as AbortSignal).removeEventListener === 'function';
  if (signal !== undefined && !isSignal) throw is.invalidParameterError('options.signal', 'an AbortSignal', signal);
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number') throw is.invalidParameterError('options.timeoutMs', 'a number', timeoutMs);
    if (!(timeoutMs > 0 && timeoutMs <= MAX_INT32)) {
      const expected = 'a number greater than 0 and at most 2^31-1';
      throw is.invalidParameterError('options.timeoutMs', expected, timeoutMs, 'range');
    }
  }
  return { signal: signal as AbortSignal | undefined, timeoutMs: timeoutMs as number | undefined };
}

/** Gives `error` the stack of the user's call, as lib/errors.ts `nativeError` does, so it points at their code. */
function withStack<E extends Error>(error: E, callSite: Error | undefined): E {
  if (callSite !== undefined) {
    const frames = (callSite.stack ?? '').split('\n').slice(1).join('\n');
    error.stack = `${error.name}: ${error.message}\n${frames}`;
  }
  return error;
}

/**
 * Gathers single calls into batches of up to `maxBatchSize` items of one key, runs them with `runBatch`, and
 * resolves each call with its own item's result.
 *
 * Dispatch rules:
 * - a key's batch is ready when it has `maxBatchSize` items, when `maxDelayMs` have passed since its oldest item
 *   was queued, or once {@link DynamicBatcher.close} was called;
 * - a ready batch is dispatched when fewer than `concurrency` batches run; among ready keys, the one whose oldest
 *   item was queued first goes first, so no key starves;
 * - a dispatched batch takes the oldest `maxBatchSize` items of its key, those queued after it became ready included.
 *
 * Every submit settles exactly once: with its result, with the error `runBatch` threw or rejected with (shared by
 * every item of that batch), with SanError ERR_SAN_RUNTIME when `runBatch` resolves with the wrong number of
 * results, or with an abort, timeout, overload or closed error.
 *
 * Timers are set only while items wait to be dispatched, so an idle batcher does not keep a process alive.
 * @typeParam I - an item, as passed to `submit`.
 * @typeParam O - one item's result.
 * @example
 * ```ts
 * // One model call per batch of up to 8 images, waiting at most 5 ms for a batch to fill.
 * const batcher = new DynamicBatcher<Image, SegmentResult>((images) => model.segmentBatch(images), {
 *   maxBatchSize: 8,
 *   maxDelayMs: 5,
 * });
 * const results = await Promise.all(images.map((image) => batcher.submit(image)));
 * await batcher.close();
 * ```
 * @example
 * ```ts
 * // Batch only images of one padded shape; hold callers (back-pressure) rather than reject when 64 are queued.
 * const batcher = new DynamicBatcher(runBatch, {
 *   batchKey: (image) => `${image.height}x${image.width}`,
 *   maxQueue: 64,
 *   onFull: 'wait',
 *   onBatch: ({ size, runMs }) => metrics.observe(size, runMs),
 * });
 * ```
 */
export class DynamicBatcher<I, O> {
  readonly #runBatch: (items: I[]) => Promise<O[]>;
  readonly #settings: Settings<I>;
  /** Queued entries by key, oldest first. A key with no entry is deleted. */
  readonly #queues = new Map<string, Entry<I, O>[]>();
  /** Submits held by `onFull: 'wait'`, oldest first. */
  readonly #waiting: Entry<I, O>[] = [];
  readonly #histogram: Record<number, number> = {};
  #queued = 0;
  #inFlight = 0;
  #running = 0;
  #batches = 0;
  #items = 0;
  /** Entries not yet settled, whatever their state; close() resolves when it reaches 0. */
  #pending = 0;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerDeadline = Infinity;
  #closing: Promise<void> | undefined;
  #closed: (() => void) | undefined;

  /**
   * @param runBatch - runs one batch: receives the items in submit order (within the key) and resolves with one
   *   result per item, at the same index. A synchronous throw counts as a rejection.
   * @param options - batch size, delay, queue bound, keys, concurrency and hook; see {@link DynamicBatcherOptions}.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad `runBatch` or option, naming the option, what
   *   it expects and what it received.
   */
  constructor(runBatch: (items: I[]) => Promise<O[]>, options: DynamicBatcherOptions<I> = {}) {
    if (typeof runBatch !== 'function') throw is.invalidParameterError('runBatch', 'a function', runBatch);
    this.#runBatch = runBatch;
    this.#settings = checkOptions<I>(options);
  }

  /**
   * Queues one item and resolves with its result once its batch has run.
   * @param item - passed to `runBatch` as one element of a batch.
   * @param options - an abort signal and a time limit; see {@link SubmitOptions}.
   * @returns the result `runBatch` gave at this item's index.
   * @throws (as a rejection; `submit` never throws synchronously) TypeError or RangeError (ERR_SAN_INVALID_ARG) for
   *   a bad option or a `batchKey` that returns no string; SanError ERR_SAN_DISPOSED after {@link close};
   *   SanError ERR_SAN_OVERLOADED when `maxQueue` items are queued and `onFull` is `'reject'`; an `AbortError`
   *   (code ABORT_ERR) when `signal` aborts; SanError ERR_SAN_TIMEOUT after `timeoutMs`; whatever `runBatch`
   *   threw or rejected with; SanError ERR_SAN_RUNTIME when `runBatch` resolved with the wrong number of results.
   * @example
   * ```ts
   * const mask = await batcher.submit(image);
   * ```
   * @example
   * ```ts
   * // Give up after 2 s, or when the HTTP client goes away, whichever comes first.
   * const controller = new AbortController();
   * request.on('close', () => controller.abort());
   * const mask = await batcher.submit(image, { signal: controller.signal, timeoutMs: 2000 });
   * ```
   */
  submit(item: I, options: SubmitOptions = {}): Promise<O> {
    if (this.#closing !== undefined) {
      const message = 'The batcher is closed: submit() was called after close()';
      return Promise.reject(new SanError(ErrorCode.DISPOSED, message));
    }
    let signal: AbortSignal | undefined;
    let timeoutMs: number | undefined;
    let key: string;
    try {
      ({ signal, timeoutMs } = checkSubmitOptions(options));
      key = this.#settings.batchKey === undefined ? '' : this.#settings.batchKey(item);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!is.string(key)) {
      return Promise.reject(is.invalidParameterError('the result of options.batchKey(item)', 'a string', key));
    }
    if (signal?.aborted) {
      return Promise.reject(new AbortError('The call was aborted before it was queued', { cause: signal.reason }));
    }
    const full = this.#queued >= this.#settings.maxQueue || this.#waiting.length > 0;
    if (full && this.#settings.onFull === 'reject') {
      const { maxQueue } = this.#settings;
      return Promise.reject(
        new SanError(
          ErrorCode.OVERLOADED,
          `The batcher's queue is full: ${maxQueue} items wait to be dispatched (options.maxQueue is ${maxQueue}); ` +
            "retry later, raise maxQueue, or set onFull: 'wait' to hold callers until there is room",
        ),
      );
    }
    return new Promise<O>((resolve, reject) => {
      const entry: Entry<I, O> = {
        item,
        key,
        submittedAt: performance.now(),
        resolve,
        reject,
        callSite: signal !== undefined || timeoutMs !== undefined ? new Error() : undefined,
        state: 'waiting',
        seq: 0,
        queuedAt: 0,
        cancelled: undefined,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      this.#pending += 1;
      if (signal !== undefined) {
        entry.onAbort = () => this.#abort(entry);
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      if (timeoutMs !== undefined) entry.timer = setTimeout(() => this.#timeout(entry, timeoutMs), timeoutMs);
      if (full) {
        this.#waiting.push(entry);
      } else {
        this.#enqueue(entry);
        this.#pump();
      }
    });
  }

  /**
   * Stops accepting items and runs everything already submitted without waiting for `maxDelayMs` (queued items
   * and, with `onFull: 'wait'`, held submits). Later submits reject with SanError ERR_SAN_DISPOSED. Calling it
   * again returns the same Promise.
   * @returns resolves once every submitted call has settled.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = new Promise((resolve) => {
        this.#closed = resolve;
      });
      if (this.#pending === 0) this.#closed?.();
      this.#pump();
    }
    return this.#closing;
  }

  /** A snapshot of the counters; see {@link BatcherStats}. */
  stats(): BatcherStats {
    return {
      queued: this.#queued,
      waiting: this.#waiting.length,
      inFlight: this.#inFlight,
      batches: this.#batches,
      items: this.#items,
      batchSizeHistogram: { ...this.#histogram },
    };
  }

  #enqueue(entry: Entry<I, O>): void {
    entry.state = 'queued';
    entry.seq = ++this.#seq;
    entry.queuedAt = performance.now();
    const queue = this.#queues.get(entry.key);
    if (queue === undefined) this.#queues.set(entry.key, [entry]);
    else queue.push(entry);
    this.#queued += 1;
  }

  /** Moves held submits into the queues, oldest first, while there is room. */
  #admit(): void {
    while (this.#waiting.length > 0 && this.#queued < this.#settings.maxQueue) {
      this.#enqueue(this.#waiting.shift() as Entry<I, O>);
    }
  }

  /**
   * Dispatches ready batches while fewer than `concurrency` run, then sets the timer for the next deadline.
   * @param atLeast - the deadline a timer was set for: the clock is taken to have reached it, as timers may fire
   *   a fraction of a millisecond early by `performance.now()`.
   */
  #pump(atLeast = 0): void {
    while (this.#running < this.#settings.concurrency) {
      const key = this.#nextReady(Math.max(performance.now(), atLeast));
      if (key === undefined) break;
      this.#dispatch(key);
    }
    this.#arm();
  }

  /** The ready key whose oldest item was queued first, if any. */
  #nextReady(now: number): string | undefined {
    const { maxBatchSize, maxDelayMs } = this.#settings;
    let best: Entry<I, O> | undefined;
    for (const queue of this.#queues.values()) {
      const head = queue[0];
      const ready = this.#closing !== undefined || queue.length >= maxBatchSize || now >= head.queuedAt + maxDelayMs;
      if (ready && (best === undefined || head.seq < best.seq)) best = head;
    }
    return best?.key;
  }

  /** Keeps one timer, for the earliest deadline, and only while a batch could be dispatched when it passes. */
  #arm(): void {
    let deadline = Infinity;
    if (this.#running < this.#settings.concurrency && this.#closing === undefined) {
      for (const queue of this.#queues.values()) {
        deadline = Math.min(deadline, queue[0].queuedAt + this.#settings.maxDelayMs);
      }
    }
    if (deadline === this.#timerDeadline) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDeadline = deadline;
    if (deadline === Infinity) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerDeadline = Infinity;
        this.#pump(deadline);
      },
      Math.max(0, deadline - performance.now()),
    );
  }

  #dispatch(key: string): void {
    const queue = this.#queues.get(key) as Entry<I, O>[];
    const entries = queue.splice(0, this.#settings.maxBatchSize);
    if (queue.length === 0) this.#queues.delete(key);
    const size = entries.length;
    this.#queued -= size;
    this.#inFlight += size;
    this.#running += 1;
    this.#batches += 1;
    this.#items += size;
    this.#histogram[size] = (this.#histogram[size] ?? 0) + 1;
    const startedAt = performance.now();
    for (const entry of entries) {
      entry.state = 'running';
      // Still needed to mark the call as timed out, but the running batch is what keeps the process busy now.
      entry.timer?.unref();
    }
    this.#admit();
    let run: Promise<O[]>;
    try {
      run = Promise.resolve(this.#runBatch(entries.map((entry) => entry.item)));
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(
      (results) => this.#finish(entries, key, startedAt, true, results),
      (error: unknown) => this.#finish(entries, key, startedAt, false, error),
    );
  }

  #finish(entries: Entry<I, O>[], key: string, startedAt: number, ok: boolean, outcome: unknown): void {
    const runMs = performance.now() - startedAt;
    const size = entries.length;
    this.#running -= 1;
    this.#inFlight -= size;
    let failure = ok ? undefined : { error: outcome };
    if (ok && (!Array.isArray(outcome) || outcome.length !== size)) {
      const got = Array.isArray(outcome)
        ? `${outcome.length} results`
        : `${is.describe(outcome)} of type ${typeof outcome}`;
      const message =
        `runBatch resolved with ${got} for a batch of ${size} items; ` +
        'it must resolve with an Array of one result per item, in item order';
      failure = { error: new SanError(ErrorCode.RUNTIME, message) };
    }
    entries.forEach((entry, i) => {
      if (entry.cancelled !== undefined) this.#settle(entry, false, entry.cancelled);
      else if (failure !== undefined) this.#settle(entry, false, failure.error);
      else this.#settle(entry, true, (outcome as O[])[i]);
    });
    if (this.#settings.onBatch !== undefined) {
      const queuedMs = entries.map((entry) => startedAt - entry.submittedAt);
      try {
        this.#settings.onBatch({ size, key, queuedMs, runMs });
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
    this.#pump();
  }

  #abort(entry: Entry<I, O>): void {
    const cause = entry.signal?.reason;
    if (entry.state === 'running') {
      const message =
        'The call was aborted while its batch ran; the batch ran to completion and its result was discarded';
      entry.cancelled ??= withStack(new AbortError(message, { cause }), entry.callSite);
    } else {
      const message = 'The call was aborted before its batch was dispatched';
      this.#withdraw(entry, withStack(new AbortError(message, { cause }), entry.callSite));
    }
  }

  #timeout(entry: Entry<I, O>, timeoutMs: number): void {
    entry.timer = undefined;
    const code = ErrorCode.TIMEOUT;
    if (entry.state === 'running') {
      const message =
        `The call timed out after ${timeoutMs} ms (options.timeoutMs) while its batch ran; ` +
        'the batch ran to completion and its result was discarded';
      entry.cancelled ??= withStack(new SanError(code, message), entry.callSite);
    } else {
      const message = `The call timed out after ${timeoutMs} ms (options.timeoutMs) before its batch was dispatched`;
      this.#withdraw(entry, withStack(new SanError(code, message), entry.callSite));
    }
  }

  /**
   * Takes a waiting or queued entry out, rejects it, and lets the others move up. A settled entry never gets here:
   * settling removes its abort listener and clears its timer.
   */
  #withdraw(entry: Entry<I, O>, error: Error): void {
    if (entry.state === 'waiting') {
      this.#waiting.splice(this.#waiting.indexOf(entry), 1);
    } else {
      const queue = this.#queues.get(entry.key) as Entry<I, O>[];
      queue.splice(queue.indexOf(entry), 1);
      if (queue.length === 0) this.#queues.delete(entry.key);
      this.#queued -= 1;
    }
    this.#settle(entry, false, error);
    this.#admit();
    this.#pump();
  }

  #settle(entry: Entry<I, O>, ok: boolean, outcome: unknown): void {
    if (entry.state === 'settled') return;
    entry.state = 'settled';
    clearTimeout(entry.timer);
    if (entry.onAbort !== undefined) entry.signal?.removeEventListener('abort', entry.onAbort);
    if (ok) entry.resolve(outcome as O);
    else entry.reject(outcome);
    this.#pending -= 1;
    if (this.#pending === 0) this.#closed?.();
  }
}
