// SPDX-License-Identifier: Apache-2.0
/**
 * A model's serving metrics in the Prometheus text exposition format (version 0.0.4), as `GET /metrics` answers.
 * @module
 */
import { SanModelMetrics } from '../segment/model';

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** Upper bounds of the batch-size histogram's buckets; fixed, as Prometheus wants them from one scrape to the next. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

/** The HTTP server's own counters. */
export interface HttpCounters {
  /** Requests received, every route. */
  received: number;
  /** Requests received and not yet answered. */
  inFlight: number;
  /** Answers sent, by status. */
  responses: ReadonlyMap<number, number>;
}

/**
 * The `/metrics` text of a model's metrics, plus the server's own counters when given.
 * @param metrics - what `model.metrics()` returned.
 * @param server - requests in flight and answers by status, when a server reports them.
 * @example
 * ```ts
 * fs.writeFileSync('metrics.prom', prometheusText(model.metrics()));
 * ```
 */
export function prometheusText(metrics: SanModelMetrics, server?: HttpCounters): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [suffix, value] of samples) lines.push(`${name}${suffix} ${formatNumber(value)}`);
  };
  family('san_info', 'gauge', 'The device the model runs on; always 1.', [[label('device', metrics.memory.device), 1]]);
  family('san_requests_total', 'counter', 'segment() calls answered since the model loaded, by outcome.', [
    [label('outcome', 'succeeded'), metrics.requests.succeeded], [label('outcome', 'failed'), metrics.requests.failed]]);
  family('san_batches_total', 'counter', 'Batches run by the model.', [['', metrics.batches.count]]);
  const sizes = Object.entries(metrics.batches.sizeHistogram).map(([size, count]) => [Number(size), count]);
  family('san_batch_size', 'histogram', 'Images per batch.', [
    ...BATCH_SIZE_BUCKETS.map((le): [string, number] => [`_bucket${label('le', le)}`,
      sizes.reduce((sum, [size, count]) => sum + (size <= le ? count : 0), 0)]),
    [`_bucket${label('le', '+Inf')}`, metrics.batches.count],
    ['_sum', sizes.reduce((sum, [size, count]) => sum + size * count, 0)],
    ['_count', metrics.batches.count],
  ]);
  const latency = metrics.latencyMs;
  const seconds = (ms: number | undefined): number => (ms === undefined ? NaN : ms / 1000);
  family('san_request_duration_seconds', 'summary',
    'segment() latency of the last 1024 successful calls, submit to answer (no _sum: it is not kept).', [
      [label('quantile', '0.5'), seconds(latency?.p50)],
      [label('quantile', '0.9'), seconds(latency?.p90)],
      [label('quantile', '0.99'), seconds(latency?.p99)],
      ['_count', metrics.requests.succeeded],
    ]);
  family('san_request_duration_max_seconds', 'gauge', 'Longest of the last 1024 successful segment() calls.',
    [['', seconds(latency?.max)]]);
  family('san_images_per_second', 'gauge', 'Successful segment() calls per second over the last 10 s.',
    [['', metrics.imagesPerSecond]]);
  family('san_queue_depth', 'gauge', 'Requests waiting for a batch, and calls queued in the runtime.', [
    [label('queue', 'batcher'), metrics.queueDepth.batcher], [label('queue', 'runtime'), metrics.queueDepth.runtime]]);
  const cache = metrics.textCache;
  if (cache !== null) {
    family('san_text_cache_hits_total', 'counter', 'Class names served from the text cache.', [['', cache.hits]]);
    family('san_text_cache_misses_total', 'counter', 'Class names the text encoder had to encode.', [['', cache.misses]]);
    family('san_text_cache_evictions_total', 'counter', 'Embeddings dropped to stay within the cache size.',
      [['', cache.evictions]]);
    family('san_text_cache_bytes', 'gauge', 'Memory the cached embeddings take.', [['', cache.bytes]]);
    family('san_text_cache_entries', 'gauge', 'Cached embeddings.', [['', cache.entries]]);
  }
  family('san_process_resident_memory_bytes', 'gauge', 'Resident memory of the process (host memory only).',
    [['', metrics.memory.rssBytes]]);
  const gpu = metrics.memory.deviceMemory;
  // Only on a GPU: on the CPU the model's memory is in the process's RSS.
  if ('allocatedBytes' in gpu) {
    family('san_device_memory_bytes', 'gauge', 'GPU memory as LibTorch\'s caching allocator counts it.', [
      [label('kind', 'allocated'), gpu.allocatedBytes], [label('kind', 'reserved'), gpu.reservedBytes],
      [label('kind', 'peak_allocated'), gpu.peakAllocatedBytes]]);
  }
  if (server !== undefined) {
    family('san_http_requests_total', 'counter', 'HTTP requests received, every route.', [['', server.received]]);
    family('san_http_requests_in_flight', 'gauge', 'HTTP requests received and not yet answered.',
      [['', server.inFlight]]);
    family('san_http_responses_total', 'counter', 'HTTP answers sent, by status.',
      [...server.responses].sort(([a], [b]) => a - b).map(([status, count]) => [label('code', status), count]));
  }
  return `${lines.join('\n')}\n`;
}

function label(name: string, value: string | number): string {
  return `{${name}="${escapeLabel(String(value))}"}`;
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
