// SPDX-License-Identifier: Apache-2.0
/**
 * `GET /metrics` with prom-client: a model's serving metrics, read from `model.metrics()` at each scrape, and the HTTP
 * server's own, counted as it works, in one registry per server (the Prometheus text format 0.0.4).
 * @module
 */
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { SanModelMetrics } from '../segment/model';

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
/** Upper bounds of the batch-size histogram's buckets; fixed, as Prometheus wants them from one scrape to the next. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

/**
 * Registers a model's serving metrics (`san_info`, `san_requests_total`, `san_batch_size`, `san_queue_depth`, the
 * text cache's and the memory's) in `registry`. Each scrape reads `read()` once. The text cache's families are there
 * when the model has a cache, the GPU memory's when it runs on a GPU.
 * @param registry - a prom-client registry, e.g. the one your service already exposes.
 * @param read - the model's metrics now, e.g. `() => model.metrics()`.
 * @example
 * ```ts
 * const registry = new Registry();
 * registerModelMetrics(registry, () => model.metrics());
 * const text = await registry.metrics();
 * ```
 */
export function registerModelMetrics(registry: Registry, read: () => SanModelMetrics): void {
  // One read per scrape: every family's collect() runs in the same turn of registry.metrics().
  let current: SanModelMetrics | undefined;
  const now = (): SanModelMetrics => {
    if (current === undefined) {
      current = read();
      queueMicrotask(() => { current = undefined; });
    }
    return current;
  };
  const first = read();
  const registers = [registry];
  new Gauge({ name: 'san_info', help: 'The device the model runs on; always 1.', labelNames: ['device'], registers,
    collect() {
      this.reset();
      this.set({ device: now().memory.device }, 1);
    } });
  new Counter({ name: 'san_requests_total', help: 'segment() calls answered since the model loaded, by outcome.',
    labelNames: ['outcome'], registers, collect() {
      const { succeeded, failed } = now().requests;
      this.reset();
      this.inc({ outcome: 'succeeded' }, succeeded);
      this.inc({ outcome: 'failed' }, failed);
    } });
  counterOf(registers, 'san_batches_total', 'Batches run by the model.', () => now().batches.count);
  // The model counts batches by size; the histogram is fed the batches run since the previous scrape.
  const fed: Record<number, number> = {};
  new Histogram({ name: 'san_batch_size', help: 'Images per batch.', buckets: BATCH_SIZE_BUCKETS, registers,
    collect() {
      for (const [key, count] of Object.entries(now().batches.sizeHistogram)) {
        const size = Number(key);
        for (let i = fed[size] ?? 0; i < count; i += 1) this.observe(size);
        fed[size] = count;
      }
    } });
  gaugeOf(registers, 'san_request_duration_max_seconds', 'Longest of the last 1024 successful segment() calls.',
    () => (now().latencyMs?.max ?? NaN) / 1000);
  gaugeOf(registers, 'san_images_per_second', 'Successful segment() calls per second over the last 10 s.',
    () => now().imagesPerSecond);
  new Gauge({ name: 'san_queue_depth', help: 'Requests waiting for a batch, and calls queued in the runtime.',
    labelNames: ['queue'], registers, collect() {
      const { batcher, runtime } = now().queueDepth;
      this.set({ queue: 'batcher' }, batcher);
      this.set({ queue: 'runtime' }, runtime);
    } });
  if (first.textCache !== null) {
    const cache = (): NonNullable<SanModelMetrics['textCache']> => now().textCache!;
    counterOf(registers, 'san_text_cache_hits_total', 'Class names served from the text cache.', () => cache().hits);
    counterOf(registers, 'san_text_cache_misses_total', 'Class names the text encoder had to encode.',
      () => cache().misses);
    counterOf(registers, 'san_text_cache_evictions_total', 'Embeddings dropped to stay within the cache size.',
      () => cache().evictions);
    gaugeOf(registers, 'san_text_cache_bytes', 'Memory the cached embeddings take.', () => cache().bytes);
    gaugeOf(registers, 'san_text_cache_entries', 'Cached embeddings.', () => cache().entries);
  }
  gaugeOf(registers, 'san_process_resident_memory_bytes', 'Resident memory of the process (host memory only).',
    () => now().memory.rssBytes);
  // Only on a GPU: on the CPU the model's memory is in the process's RSS.
  if ('allocatedBytes' in first.memory.deviceMemory) {
    new Gauge({ name: 'san_device_memory_bytes', help: 'GPU memory as LibTorch\'s caching allocator counts it.',
      labelNames: ['kind'], registers, collect() {
        const gpu = now().memory.deviceMemory;
        if (!('allocatedBytes' in gpu)) return;
        this.set({ kind: 'allocated' }, gpu.allocatedBytes);
        this.set({ kind: 'reserved' }, gpu.reservedBytes);
        this.set({ kind: 'peak_allocated' }, gpu.peakAllocatedBytes);
      } });
  }
}

/** What the server reports about itself when scraped. */
export interface HttpGauges {
  /** Requests received and not yet answered, every route. */
  inFlight: () => number;
  /** Open connections. */
  connections: () => number;
  /** Bytes of request bodies, and of images decoded from them, held in memory. */
  bodyBytes: () => number;
}

/** Why the server closed a connection on its own. */
export type ClosedReason = 'evicted' | 'refused' | 'drain_deadline';

/** The HTTP server's own metrics, in its registry. */
export class HttpMetrics {
  /** Requests received, every route. */
  readonly requests: Counter;
  /** Answers sent, by status. */
  readonly responses: Counter<'code'>;
  /** Connections the server closed on its own, by why. */
  readonly connectionsClosed: Counter<'reason'>;
  /** Successful segment() calls of this server, submit to answer, in seconds. */
  readonly segmentSeconds: Summary;

  constructor(registry: Registry, gauges: HttpGauges) {
    const registers = [registry];
    this.requests = new Counter({ name: 'san_http_requests_total', help: 'HTTP requests received, every route.',
      registers });
    gaugeOf(registers, 'san_http_requests_in_flight', 'HTTP requests received and not yet answered.', gauges.inFlight);
    this.responses = new Counter({ name: 'san_http_responses_total', help: 'HTTP answers sent, by status.',
      labelNames: ['code'], registers });
    gaugeOf(registers, 'san_http_connections', 'Open connections.', gauges.connections);
    this.connectionsClosed = new Counter({ name: 'san_http_connections_closed_total', labelNames: ['reason'],
      help: 'Connections the server closed on its own: evicted (the longest idle, at maxConnections), refused (at ' +
        'maxConnections with none idle), drain_deadline (still open when the drain deadline passed).', registers });
    gaugeOf(registers, 'san_http_body_bytes_in_flight',
      'Bytes of request bodies, and of the images decoded from JSON bodies, held in memory.', gauges.bodyBytes);
    this.segmentSeconds = new Summary({ name: 'san_request_duration_seconds', registers,
      help: 'Successful segment() calls of this server, submit to answer; quantiles over the last 10 minutes.',
      percentiles: [0.5, 0.9, 0.99], maxAgeSeconds: 600, ageBuckets: 5 });
  }
}

function gaugeOf(registers: Registry[], name: string, help: string, value: () => number): void {
  new Gauge({ name, help, registers, collect() {
    this.set(value());
  } });
}

function counterOf(registers: Registry[], name: string, help: string, value: () => number): void {
  new Counter({ name, help, registers, collect() {
    this.reset();
    this.inc(value());
  } });
}
