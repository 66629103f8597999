// SPDX-License-Identifier: Apache-2.0
/**
 * Serving counters of a model: request latencies, throughput and batch sizes, as `SanModel.metrics()` reports them
 * and `san-seg serve` exposes them at /metrics.
 * @module
 */

/** Latency percentiles, in milliseconds, over the most recent requests. */
export interface LatencyPercentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A snapshot of a model's serving counters. */
export interface ServingMetrics {
  /** Requests answered (resolved) and failed (rejected) since load. */
  requests: { succeeded: number; failed: number };
  /** Batches run since load, and how many of each size. */
  batches: { count: number; sizeHistogram: Record<number, number> };
  /** Percentiles of submit-to-answer time of the last {@link LATENCY_WINDOW} successful requests; null before any. */
  latencyMs: LatencyPercentiles | null;
  /** Successful requests per second over the last {@link THROUGHPUT_WINDOW_MS} ms. */
  imagesPerSecond: number;
}

/** How many recent latencies the percentiles are computed over. */
export const LATENCY_WINDOW = 1024;
/** The span images/s is measured over. */
export const THROUGHPUT_WINDOW_MS = 10_000;

export class ServingStats {
  readonly #latencies = new Float64Array(LATENCY_WINDOW);
  #latencyCount = 0;
  // Completion times of recent requests, oldest first, for images/s.
  #completions: number[] = [];
  #succeeded = 0;
  #failed = 0;
  #batches = 0;
  readonly #histogram: Record<number, number> = {};

  /** Records one request: its latency when it succeeded, or its failure. */
  recordRequest(latencyMs: number, ok: boolean, now = performance.now()): void {
    if (!ok) {
      this.#failed += 1;
      return;
    }
    this.#succeeded += 1;
    this.#latencies[this.#latencyCount % LATENCY_WINDOW] = latencyMs;
    this.#latencyCount += 1;
    this.#completions.push(now);
    this.#dropBefore(now - THROUGHPUT_WINDOW_MS);
  }

  recordBatch(size: number): void {
    this.#batches += 1;
    this.#histogram[size] = (this.#histogram[size] ?? 0) + 1;
  }

  snapshot(now = performance.now()): ServingMetrics {
    this.#dropBefore(now - THROUGHPUT_WINDOW_MS);
    const span = this.#completions.length > 0 ? Math.max(now - this.#completions[0], 1) : 0;
    return {
      requests: { succeeded: this.#succeeded, failed: this.#failed },
      batches: { count: this.#batches, sizeHistogram: { ...this.#histogram } },
      latencyMs: this.#percentiles(),
      imagesPerSecond: span > 0 ? (this.#completions.length * 1000) / Math.max(span, 1000) : 0,
    };
  }

  #percentiles(): LatencyPercentiles | null {
    const count = Math.min(this.#latencyCount, LATENCY_WINDOW);
    if (count === 0) return null;
    const sorted = this.#latencies.slice(0, count).sort();
    const at = (q: number): number => sorted[Math.min(count - 1, Math.ceil(q * count) - 1)];
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[count - 1] };
  }

  #dropBefore(time: number): void {
    let drop = 0;
    while (drop < this.#completions.length && this.#completions[drop] < time) drop += 1;
    if (drop > 0) this.#completions = this.#completions.slice(drop);
  }
}
