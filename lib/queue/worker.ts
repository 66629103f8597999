// SPDX-License-Identifier: Apache-2.0
/**
 * `SegmentWorker`, the consumer side of the fleet: a BullMQ worker whose jobs call one `SanModel`'s `segment()`, so
 * that concurrent jobs meet in the model's dynamic batcher. Bad input fails a job at once with its `ERR_SAN_…` code
 * (BullMQ's UnrecoverableError); anything else is retried with back-off. A job whose worker dies is taken back by
 * BullMQ's stalled-job check (the lock its worker no longer renews expires) and run again elsewhere; running it twice
 * gives the same result, and a label map written to a file is replaced whole.
 * @module
 */
import { EventEmitter } from 'node:events';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import * as is from '../is';
import type { SanModel } from '../segment/model';
import type { SegmentResult } from '../segment/result';
import { encodeRle, labelsBody } from '../serve/labels';
import { connectionOptions, RedisTarget } from './connection';
import { failureReason, isBadInput } from './failures';
import { checkJobData, imageBytes, JOB_ID_PATTERN, refuseUnknown, SegmentJobData, SegmentJobResult } from './job-data';
import { SEGMENT_QUEUE_DEFAULTS } from './queue';
import { resolveUnderRoot, writeUnderRoot } from './roots';

/** Defaults of every option that has one. */
export const SEGMENT_WORKER_DEFAULTS = Object.freeze({
  /** Jobs run at once: enough to fill two of the model's default batches of 4. */
  concurrency: 8,
  maxImageBytes: SEGMENT_QUEUE_DEFAULTS.maxImageBytes,
  /** BullMQ's: a job whose lock is not renewed for this long is taken to be stalled. */
  lockDurationMs: 30000,
  /** BullMQ's: how often workers look for stalled jobs. */
  stalledIntervalMs: 30000,
  /** Redeliveries of a stalled job before it fails (a job that kills its worker each time fails for good). */
  maxStalledCount: 2,
});

/** Options of {@link SegmentWorker.start}. */
export interface SegmentWorkerOptions {
  /** `redis://HOST:PORT`, or BullMQ's connection options. */
  connection: RedisTarget;
  /** Prefix of the queue's Redis keys (BullMQ's). @defaultValue `'bull'` */
  prefix?: string;
  /** @defaultValue 8 */
  concurrency?: number;
  /** The folder jobs may name images in (`{ path }`); without it, only image bytes are taken. */
  inputRoot?: string;
  /** The folder label maps of `store: 'file'` jobs are written to, under a folder named after the queue. */
  outputRoot?: string;
  /** @defaultValue 16 MiB */
  maxImageBytes?: number;
  /** @defaultValue 30000 */
  lockDurationMs?: number;
  /** @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** @defaultValue 2 */
  maxStalledCount?: number;
  /** The worker's name, stored on the jobs it runs. @defaultValue `host:pid` */
  name?: string;
}

const OPTION_KEYS = ['connection', 'prefix', 'concurrency', 'inputRoot', 'outputRoot', 'maxImageBytes',
  'lockDurationMs', 'stalledIntervalMs', 'maxStalledCount', 'name'];

/**
 * A worker taking segmentation jobs from one queue. Emits `'completed'` (job id, result), `'failed'` (job id,
 * reason, whether it will be retried) and `'warning'` (an Error of the connection or of BullMQ,
 * which the worker outlives: Redis going away, a lock lost to a stall).
 */
export class SegmentWorker extends EventEmitter {
  readonly name: string;
  readonly queueName: string;
  readonly #model: SanModel;
  readonly #worker: Worker;
  readonly #inputRoot: string | undefined;
  readonly #outputRoot: string | undefined;
  readonly #maxImageBytes: number;
  #active = 0;

  private constructor(model: SanModel, queueName: string, options: SegmentWorkerOptions) {
    super();
    this.#model = model;
    this.queueName = queueName;
    this.name = options.name ?? `${os.hostname()}:${process.pid}`;
    this.#inputRoot = options.inputRoot;
    this.#outputRoot = options.outputRoot === undefined ? undefined : path.join(options.outputRoot, queueName);
    this.#maxImageBytes = options.maxImageBytes ?? SEGMENT_WORKER_DEFAULTS.maxImageBytes;
    this.#worker = new Worker(queueName, (job) => this.#process(job), {
      connection: connectionOptions(options.connection, 'options.connection'),
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      name: this.name,
      concurrency: options.concurrency ?? SEGMENT_WORKER_DEFAULTS.concurrency,
      lockDuration: options.lockDurationMs ?? SEGMENT_WORKER_DEFAULTS.lockDurationMs,
      stalledInterval: options.stalledIntervalMs ?? SEGMENT_WORKER_DEFAULTS.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount ?? SEGMENT_WORKER_DEFAULTS.maxStalledCount,
      autorun: false,
    });
    // An 'error' without a listener would throw and end the process: Redis restarting must not.
    this.#worker.on('error', (error) => this.emit('warning', error));
    this.#worker.on('completed', (job, result: SegmentJobResult) => this.emit('completed', job.id, result));
    this.#worker.on('failed', (job, error) => {
      if (job === undefined) return;
      const willRetry = !(error instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1);
      this.emit('failed', job.id, error.message, willRetry);
    });
  }

  /**
   * Starts taking jobs from `queueName` once connected to Redis.
   * @param model - the model every job runs on; the worker does not dispose of it.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad option or a root that is not a folder.
   * @example
   * ```ts
   * const model = await SanModel.load('models/vit_b_16', { textCache: { file: 'text-cache.bin' } });
   * const worker = await SegmentWorker.start(model, 'san', { connection: 'redis://127.0.0.1:6379' });
   * process.once('SIGTERM', () => void worker.close().then(() => model.dispose()));
   * ```
   */
  static async start(model: SanModel, queueName: string, options: SegmentWorkerOptions): Promise<SegmentWorker> {
    if (!is.string(queueName) || queueName.length === 0) throw is.invalidParameterError('queueName', 'a queue name', queueName);
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object { connection }', options);
    refuseUnknown(options, OPTION_KEYS, 'options');
    for (const key of ['concurrency', 'maxImageBytes', 'lockDurationMs', 'stalledIntervalMs'] as const) {
      const value = options[key];
      if (value !== undefined && !(is.integer(value) && value >= 1)) {
        throw is.invalidParameterError(`options.${key}`, 'a positive integer', value, 'range');
      }
    }
    if (options.maxStalledCount !== undefined && !(is.integer(options.maxStalledCount) && options.maxStalledCount >= 0)) {
      throw is.invalidParameterError('options.maxStalledCount', 'an integer of at least 0', options.maxStalledCount, 'range');
    }
    await checkFolder(options.inputRoot, 'options.inputRoot');
    await checkFolder(options.outputRoot, 'options.outputRoot');
    const worker = new SegmentWorker(model, queueName, options);
    if (worker.#outputRoot !== undefined) await fsp.mkdir(worker.#outputRoot, { recursive: true });
    void worker.#worker.run().catch((error: Error) => worker.emit('warning', error));
    await worker.#worker.waitUntilReady();
    return worker;
  }

  /** Jobs being run now. */
  get active(): number {
    return this.#active;
  }

  /** Drains: takes no new job, finishes those being run, then closes the connections. */
  async close(): Promise<void> {
    await this.#worker.close();
  }

  async #process(job: Job): Promise<SegmentJobResult> {
    this.#active += 1;
    const taken = performance.now();
    try {
      return await this.#run(job, taken);
    } catch (error) {
      // Bad input gives the same error every time: fail the job now; anything else gets BullMQ's retries.
      const reason = failureReason(error);
      throw isBadInput(error) ? new UnrecoverableError(reason) : new Error(reason);
    } finally {
      this.#active -= 1;
    }
  }

  async #run(job: Job, taken: number): Promise<SegmentJobResult> {
    const data = checkJobData(job.data);
    if (data.store === 'file' && this.#outputRoot === undefined) {
      throw is.invalidParameterError('job.data.store', "'redis': this worker writes no files (no output root)", 'file',
        'range');
    }
    const image = 'bytes' in data.image
      ? imageBytes(data.image.bytes, this.#maxImageBytes)
      : await resolveUnderRoot(this.#inputRoot, data.image.path, 'job.data.image.path');
    const result = await this.#model.segment(image, data.segment);
    const segmented = performance.now();
    await job.updateProgress({ stage: 'segmented', segmentMs: segmented - taken });
    const labels = await this.#store(job, data, result);
    const done = performance.now();
    return {
      jobId: job.id as string,
      size: [result.height, result.width],
      classes: [...result.classes],
      shares: Object.fromEntries(result.shares().map(({ name, share }) => [name, share])),
      labels,
      timings: {
        queuedMs: Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp),
        segmentMs: segmented - taken,
        encodeMs: done - segmented,
        totalMs: done - taken,
      },
      worker: this.name,
      attempt: job.attemptsStarted,
    };
  }

  /** The label map in the job's format: in the result, or written under the output root by job id. */
  async #store(job: Job, data: SegmentJobData, result: SegmentResult): Promise<SegmentJobResult['labels']> {
    if (data.store === 'redis') return labelsBody(result, data.format);
    const id = job.id as string;
    if (!JOB_ID_PATTERN.test(id)) {
      throw is.invalidParameterError('job.id', 'an id usable as a file name (letters, digits, ._-)', id, 'range');
    }
    const [file, bytes] = data.format === 'png'
      ? [`${id}.labels.png`, await result.labelsPng()]
      : [`${id}.labels.rle.json`, JSON.stringify(encodeRle(result.labels.data))];
    await writeUnderRoot(this.#outputRoot!, file, bytes);
    return { format: data.format, file: path.join(this.queueName, file) };
  }
}

async function checkFolder(folder: unknown, name: string): Promise<void> {
  if (folder === undefined) return;
  if (!is.string(folder) || folder.length === 0) throw is.invalidParameterError(name, 'a folder path', folder);
  const stats = await fsp.stat(folder).catch(() => undefined);
  if (!stats?.isDirectory()) throw is.invalidParameterError(name, 'an existing folder', folder, 'range');
}
