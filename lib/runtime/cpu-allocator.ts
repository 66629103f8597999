// SPDX-License-Identifier: Apache-2.0
/**
 * The addon's caching CPU allocator, installed process-wide when the addon loads: LibTorch's CPU tensors reuse
 * freed blocks instead of mapping fresh memory each call, which on a small VM costs more than the network itself
 * (hundreds of thousands of page faults a ViT-B/16 call). Its cache of free blocks is bounded: least recently freed
 * blocks go back to the system first. The limit starts at `SAN_CPU_CACHE_BYTES` when set, else a quarter of the
 * machine's memory, at most 4 GiB.
 * @module
 */
import * as is from '../is';
import { binding } from './native';

/** The cache's counters, process-wide. */
export interface CpuAllocatorStats {
  /** Free blocks held for reuse. */
  cachedBytes: number;
  /** The most `cachedBytes` may reach. */
  limitBytes: number;
  /** Large blocks (64 KiB and more) held by live tensors. */
  inUseBytes: number;
  /** Large allocations served from the cache. */
  hits: number;
  /** Large allocations that mapped new memory. */
  misses: number;
  /** The intra-op threads all models of the process share: the cores it may use. */
  coreBudget: number;
}

/** The caching CPU allocator's counters (synchronous, cheap). */
export function cpuAllocatorStats(): CpuAllocatorStats {
  return binding().cpuAllocator();
}

/**
 * Sets the most bytes of free blocks the CPU allocator keeps for reuse, process-wide; blocks above it are given
 * back to the system at once. `0` turns caching off.
 * @example
 * ```ts
 * setCpuCacheLimit(1024 ** 3); // keep at most 1 GiB of free blocks
 * ```
 */
export function setCpuCacheLimit(bytes: number): void {
  if (!is.integer(bytes) || bytes < 0) {
    throw is.invalidParameterError('bytes', 'an integer of at least 0', bytes, typeof bytes === 'number' ? 'range' : 'type');
  }
  binding().setCpuCacheLimit(bytes);
}
