// SPDX-License-Identifier: Apache-2.0
/**
 * `SegmentQueue`, the producer side of the worker fleet: adds segmentation jobs to a BullMQ queue in Redis and hands
 * back a {@link SegmentJob} whose result can be awaited and which reports progress and failure. Workers
 * (`san-seg worker`, lib/queue/worker.ts) take the jobs.
 * @module
 */
import { EventEmitter } from 'node:events';
import { Job, JobsOptions, Queue, QueueEvents } from 'bullmq';
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';
import { LABEL_FORMATS, LabelFormat } from '../serve/labels';
import { connectionOptions, RedisTarget } from './connection';
import { errorFromReason } from './failures';
import {
  checkJobSegmentOptions, imageTooLarge, JOB_DATA_VERSION, JOB_ID_PATTERN, JobSegmentOptions, refuseUnknown,
  RESULT_STORES, ResultStore, SegmentJobData, SegmentJobResult,
} from './job-data';

/** Defaults of every option that has one. */
export const SEGMENT_QUEUE_DEFAULTS = Object.freeze({
  /** Largest encoded image a job may carry: it travels through Redis, which holds it until the job is removed. */
  maxImageBytes: 16 * 1024 * 1024,
  /** How long a completed job, and the result stored with it, is kept. */
  resultTtlSeconds: 3600,
  /** How long a failed job is kept, to be inspected. */
  failedTtlSeconds: 24 * 3600,
  /** Runs of a job before it fails, counting the first; bad input fails at the first. */
  attempts: 3,
  /** Wait before the first retry; it doubles for each further one. */
  backoffMs: 1000,
  format: 'png' as LabelFormat,
  store: 'redis' as ResultStore,
});

/** Options of {@link SegmentQueue}. */
export interface SegmentQueueOptions {
  /** `redis://HOST:PORT`, or BullMQ's connection options. */
  connection: RedisTarget;
  /** Prefix of the queue's Redis keys (BullMQ's). @defaultValue `'bull'` */
  prefix?: string;
  /** @defaultValue 16 MiB */
  maxImageBytes?: number;
  /** @defaultValue 3600 */
  resultTtlSeconds?: number;
  /** @defaultValue 86400 */
  failedTtlSeconds?: number;
  /** @defaultValue 3 */
  attempts?: number;
  /** @defaultValue 1000 */
  backoffMs?: number;
}

/** Options of {@link SegmentQueue.add}: what `segment()` takes, how the label map comes back, and the job's id. */
export interface AddOptions extends JobSegmentOptions {
  /** The label map as a 16-bit PNG (base64) or run-length encoded. @defaultValue `'png'` */
  format?: LabelFormat;
  /** Keep the result in Redis, or write the label map under the worker's output root. @defaultValue `'redis'` */
  store?: ResultStore;
  /**
   * The job's id (letters, digits, `._-`, at most 128): adding a job whose id is already in the queue adds nothing
   * and returns the existing job, so a producer that retries its own `add` runs the job once.
   * @defaultValue a number BullMQ assigns
   */
  jobId?: string;
  /** BullMQ priority: 1 is the highest; jobs without one come first. */
  priority?: number;
}

/** An image for a job: its encoded bytes, or a path relative to the workers' input root. */
export type QueueImage = Buffer | Uint8Array | { path: string };

const OPTION_KEYS = ['connection', 'prefix', 'maxImageBytes', 'resultTtlSeconds', 'failedTtlSeconds', 'attempts',
  'backoffMs'];
const ADD_KEYS = ['classes', 'templates', 'synonyms', 'resize', 'outputSize', 'format', 'store', 'jobId', 'priority'];
/** The BullMQ job name of every segmentation job. */
export const JOB_NAME = 'segment';

/**
 * A job in the queue. Emits `'progress'` (what the worker reported), `'completed'` (the {@link SegmentJobResult})
 * and `'failed'` (a {@link SanError} with the worker's code, once no attempt is left).
 */
export class SegmentJob extends EventEmitter {
  readonly id: string;
  readonly #job: Job;
  readonly #events: QueueEvents;
  readonly #forget: () => void;
  #result: Promise<SegmentJobResult> | undefined;

  /** @internal Made by {@link SegmentQueue}; `forget` drops the handle once the job has finished. */
  constructor(job: Job, events: QueueEvents, forget: () => void) {
    super();
    this.id = job.id as string;
    this.#job = job;
    this.#events = events;
    this.#forget = forget;
  }

  /**
   * Resolves with the job's result once a worker has completed it; rejects with a {@link SanError} carrying the
   * worker's code (ERR_SAN_IMAGE, ERR_SAN_INVALID_ARG…) once it has failed for good.
   * @param timeoutMs - reject with ERR_SAN_TIMEOUT when it has not finished by then. @defaultValue none
   */
  result(timeoutMs?: number): Promise<SegmentJobResult> {
    if (timeoutMs !== undefined && !(is.integer(timeoutMs) && timeoutMs > 0)) {
      throw is.invalidParameterError('timeoutMs', 'a positive integer', timeoutMs, 'range');
    }
    this.#result ??= this.#job.waitUntilFinished(this.#events).then(
      (value) => value as SegmentJobResult,
      (error: Error) => { throw errorFromReason(error.message); },
    ).finally(this.#forget);
    if (timeoutMs === undefined) return this.#result;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SanError(ErrorCode.TIMEOUT,
        `Job ${this.id} did not finish within ${timeoutMs} ms`)), timeoutMs);
      this.#result!.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  }
}

export class SegmentQueue {
  readonly name: string;
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #options: Required<Omit<SegmentQueueOptions, 'connection' | 'prefix'>>;
  /** Handles of jobs not yet finished, for the events. */
  readonly #handles = new Map<string, SegmentJob>();

  /**
   * @param name - the queue's name, the same as the workers' `--queue`.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad option.
   * @example
   * ```ts
   * const queue = new SegmentQueue('san', { connection: 'redis://127.0.0.1:6379' });
   * const job = await queue.add(await fs.promises.readFile('street.jpg'), { classes: ['road', 'car', 'sky'] });
   * const { shares, labels } = await job.result();
   * await queue.close();
   * ```
   */
  constructor(name: string, options: SegmentQueueOptions) {
    if (!is.string(name) || !/^[A-Za-z0-9_.-]{1,100}$/.test(name)) {
      throw is.invalidParameterError('name', 'a queue name of letters, digits and ._-', name);
    }
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object { connection }', options);
    refuseUnknown(options, OPTION_KEYS, 'options');
    const connection = connectionOptions(options.connection, 'options.connection');
    this.#options = {
      maxImageBytes: positive(options.maxImageBytes, SEGMENT_QUEUE_DEFAULTS.maxImageBytes, 'options.maxImageBytes'),
      resultTtlSeconds: positive(options.resultTtlSeconds, SEGMENT_QUEUE_DEFAULTS.resultTtlSeconds,
        'options.resultTtlSeconds'),
      failedTtlSeconds: positive(options.failedTtlSeconds, SEGMENT_QUEUE_DEFAULTS.failedTtlSeconds,
        'options.failedTtlSeconds'),
      attempts: positive(options.attempts, SEGMENT_QUEUE_DEFAULTS.attempts, 'options.attempts'),
      backoffMs: positive(options.backoffMs, SEGMENT_QUEUE_DEFAULTS.backoffMs, 'options.backoffMs'),
    };
    this.name = name;
    const common = { connection, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) };
    this.#queue = new Queue(name, common);
    this.#events = new QueueEvents(name, common);
    // Errors of the connections (Redis down) are retried by ioredis; without a listener they would be thrown.
    this.#queue.on('error', () => undefined);
    this.#events.on('error', () => undefined);
    // Each awaited result listens for the queue closing, and thousands of jobs may be awaited at once.
    this.#queue.setMaxListeners(0);
    this.#events.on('progress', ({ jobId, data }) => this.#handles.get(jobId)?.emit('progress', data));
    this.#events.on('completed', ({ jobId, returnvalue }) => this.#finish(jobId, 'completed', returnvalue));
    this.#events.on('failed', ({ jobId, failedReason }) => this.#finish(jobId, 'failed', errorFromReason(failedReason)));
  }

  /**
   * Adds one job.
   * @param image - encoded image bytes (at most `maxImageBytes`), or `{ path }` relative to the workers'
   *   `--input-root`.
   * @param options - the classes and the other options of `segment()`, and the job's own; see {@link AddOptions}.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad option; SanError ERR_SAN_TOO_LARGE for an image
   *   over the limit.
   * @example
   * ```ts
   * const job = await queue.add({ path: 'cam1/0001.jpg' }, { classes, format: 'rle', jobId: 'cam1-0001' });
   * job.on('progress', (stage) => console.log(stage));
   * ```
   */
  async add(image: QueueImage, options: AddOptions): Promise<SegmentJob> {
    const [handle] = await this.addBulk([{ image, options }]);
    return handle;
  }

  /**
   * Adds many jobs in one round trip to Redis.
   * @example
   * ```ts
   * const jobs = await queue.addBulk(files.map((path) => ({ image: { path }, options: { classes } })));
   * const results = await Promise.all(jobs.map((job) => job.result()));
   * ```
   */
  async addBulk(items: ReadonlyArray<{ image: QueueImage; options: AddOptions }>): Promise<SegmentJob[]> {
    if (!Array.isArray(items)) throw is.invalidParameterError('items', 'an Array of { image, options }', items);
    const jobs = items.map(({ image, options }, i) => this.#jobFor(image, options, items.length > 1 ? `items[${i}]` : ''));
    // Listening before adding: a job may finish before add() returns.
    await this.#events.waitUntilReady();
    const added = await this.#queue.addBulk(jobs);
    return added.map((job) => this.#handle(job));
  }

  /** The job with this id, if the queue still holds it (results are kept for `resultTtlSeconds`). */
  async job(id: string): Promise<SegmentJob | undefined> {
    if (!is.string(id)) throw is.invalidParameterError('id', 'a job id', id);
    await this.#events.waitUntilReady();
    const job = await Job.fromId(this.#queue, id);
    return job === undefined ? undefined : this.#handle(job);
  }

  /** How many jobs are waiting, active, delayed, prioritized, completed and failed. */
  async counts(): Promise<Record<'waiting' | 'active' | 'delayed' | 'prioritized' | 'completed' | 'failed', number>> {
    const counts = await this.#queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    return {
      waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0,
      prioritized: counts.prioritized ?? 0, completed: counts.completed ?? 0, failed: counts.failed ?? 0,
    };
  }

  /** Closes the connections; jobs stay in Redis for the workers. */
  async close(): Promise<void> {
    await Promise.all([this.#queue.close(), this.#events.close()]);
  }

  #jobFor(image: QueueImage, options: AddOptions, at: string): { name: string; data: SegmentJobData; opts: JobsOptions } {
    const name = (field: string): string => (at === '' ? field : `${at}.${field}`);
    if (!is.plainObject(options)) throw is.invalidParameterError(name('options'), 'an object with classes', options);
    refuseUnknown(options, ADD_KEYS, name('options'));
    const { format = SEGMENT_QUEUE_DEFAULTS.format, store = SEGMENT_QUEUE_DEFAULTS.store, jobId, priority,
      ...segment } = options;
    if (!is.inArray(format, LABEL_FORMATS)) {
      throw is.invalidParameterError(name('options.format'), `one of: ${LABEL_FORMATS.join(', ')}`, format, 'range');
    }
    if (!is.inArray(store, RESULT_STORES)) {
      throw is.invalidParameterError(name('options.store'), `one of: ${RESULT_STORES.join(', ')}`, store, 'range');
    }
    if (jobId !== undefined && !(is.string(jobId) && JOB_ID_PATTERN.test(jobId))) {
      throw is.invalidParameterError(name('options.jobId'), 'an id of 1 to 128 letters, digits and ._- (not first .)',
        jobId, 'range');
    }
    if (priority !== undefined && !(is.integer(priority) && is.inRange(priority, 1, 2 ** 21))) {
      throw is.invalidParameterError(name('options.priority'), 'an integer from 1 to 2097152', priority, 'range');
    }
    const data: SegmentJobData = {
      v: JOB_DATA_VERSION,
      image: this.#jobImage(image, name('image')),
      segment: checkJobSegmentOptions(segment, name('options')),
      format,
      store,
    };
    const { attempts, backoffMs, resultTtlSeconds, failedTtlSeconds } = this.#options;
    const opts: JobsOptions = {
      attempts,
      backoff: { type: 'exponential', delay: backoffMs },
      removeOnComplete: { age: resultTtlSeconds },
      removeOnFail: { age: failedTtlSeconds },
      ...(jobId === undefined ? {} : { jobId }),
      ...(priority === undefined ? {} : { priority }),
    };
    return { name: JOB_NAME, data, opts };
  }

  #jobImage(image: QueueImage, name: string): SegmentJobData['image'] {
    if (image instanceof Uint8Array) {
      if (image.length === 0) throw is.invalidParameterError(name, 'encoded image bytes', image, 'range');
      if (image.length > this.#options.maxImageBytes) throw imageTooLarge(image.length, this.#options.maxImageBytes);
      return { bytes: Buffer.from(image.buffer, image.byteOffset, image.length).toString('base64') };
    }
    if (is.plainObject(image) && Object.keys(image).length === 1 && is.string(image.path) && image.path.length > 0) {
      return { path: image.path };
    }
    throw is.invalidParameterError(name, 'a Buffer of encoded image bytes or { path } under the input root', image);
  }

  #handle(job: Job): SegmentJob {
    const id = job.id as string;
    let handle = this.#handles.get(id);
    if (handle === undefined) {
      handle = new SegmentJob(job, this.#events, () => this.#handles.delete(id));
      this.#handles.set(id, handle);
    }
    return handle;
  }

  #finish(jobId: string, event: 'completed' | 'failed', value: unknown): void {
    const handle = this.#handles.get(jobId);
    if (handle === undefined) return;
    this.#handles.delete(jobId);
    // 'failed' without a listener is not an error here: result() is how a producer learns of it.
    handle.emit(event, value);
  }
}

function positive(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!is.integer(value) || value < 1) throw is.invalidParameterError(name, 'a positive integer', value, 'range');
  return value;
}
