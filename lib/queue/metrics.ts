// SPDX-License-Identifier: Apache-2.0
/**
 * A worker's `/metrics` (Prometheus, through prom-client): the queue's depth by state as Redis holds it, this
 * worker's active jobs, the jobs it completed and failed, and the sizes of the model's batches.
 * @module
 */
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { connectionOptions, RedisTarget } from './connection';
import type { SegmentWorker } from './worker';

/** Upper bounds of the batch-size histogram's buckets, as `san-seg serve` has them. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/** What a worker's metrics server needs. */
export interface WorkerMetricsOptions {
  connection: RedisTarget;
  prefix?: string;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #queue: Queue;
  readonly #batchSize: Histogram;
  readonly #jobs: Counter<'outcome'>;
  #server: http.Server | undefined;

  /** Counts the queue `queueName` in Redis; `watch` adds a worker's own counters. */
  constructor(queueName: string, options: WorkerMetricsOptions) {
    this.#queue = new Queue(queueName, {
      connection: connectionOptions(options.connection),
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    });
    this.#queue.on('error', () => undefined);
    const queue = this.#queue;
    new Gauge({
      name: 'san_queue_jobs',
      help: 'Jobs in the queue by state, as Redis holds them (the whole fleet\'s).',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await queue.getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    this.#batchSize = new Histogram({
      name: 'san_batch_size', help: 'Images per batch the model ran.', buckets: BATCH_SIZE_BUCKETS,
      registers: [this.registry],
    });
    this.#jobs = new Counter({
      name: 'san_worker_jobs_total',
      help: 'Jobs this worker finished, by outcome (retried: failed, to be run again).',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
  }

  /** For the model's `onBatch`. */
  recordBatch(size: number): void {
    this.#batchSize.observe(size);
  }

  /** Counts what `worker` does. */
  watch(worker: SegmentWorker): void {
    new Gauge({
      name: 'san_worker_active_jobs', help: 'Jobs this worker is running.', registers: [this.registry],
      collect() {
        this.set(worker.active);
      },
    });
    worker.on('completed', () => this.#jobs.inc({ outcome: 'completed' }));
    worker.on('failed', (_id: string, _reason: string, willRetry: boolean) => {
      this.#jobs.inc({ outcome: willRetry ? 'retried' : 'failed' });
    });
  }

  /**
   * Serves `GET /metrics` on `host:port` (0 picks a free port).
   * @returns the URL of the metrics.
   */
  async serve(port: number, host: string): Promise<string> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: GET /metrics\n');
        return;
      }
      this.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      }, (error: Error) => {
        // Redis unreachable: say so rather than serve counts that are not there.
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
    this.#server = server;
    const { port: bound } = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`;
  }

  /** Stops the server, if serving, and closes the connection to Redis. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#queue.close();
  }
}
