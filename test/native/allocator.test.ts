// SPDX-License-Identifier: Apache-2.0
// The addon's caching CPU allocator: same-shaped calls reuse its blocks (RSS flat, almost no new mappings), and its
// cache of free blocks stays within the limit when shapes change. Measured in a child process with --expose-gc, so
// that jest's own memory does not blur it.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonPath } from '../helpers/paths';
import { nativeModelsDir } from './support';
import { cpuAllocatorStats, setCpuCacheLimit } from '../../lib/runtime/cpu-allocator';
import type { CpuAllocatorStats } from '../../lib/runtime/cpu-allocator';

const CALLS = 300;
const ALLOWED_GROWTH = 16 * 1024 * 1024;

interface Probe {
  initial: CpuAllocatorStats;
  warm: { rss: number; stats: CpuAllocatorStats };
  steady: { rss: number; stats: CpuAllocatorStats };
  mostCached: number;
  bounded: CpuAllocatorStats;
  off: CpuAllocatorStats;
}

function probe(env: NodeJS.ProcessEnv = {}): Probe {
  const script = path.join(__dirname, 'scripts', 'allocator-probe.js');
  const output = execFileSync(process.execPath, ['--expose-gc', script, addonPath, nativeModelsDir, String(CALLS), 'cpu'],
    { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', ...env } });
  return JSON.parse(output) as Probe;
}

describe('caching CPU allocator', () => {
  let result: Probe;
  beforeAll(() => {
    result = probe({ SAN_CPU_CACHE_BYTES: '' });
  });

  test('its default limit is a quarter of the memory, at most 4 GiB', () => {
    const expected = Math.min(4 * 1024 ** 3, os.totalmem() / 4);
    expect(Math.abs(result.initial.limitBytes - expected)).toBeLessThan(1024 * 1024);
    expect(result.initial.coreBudget).toBe(os.availableParallelism());
  });

  test(`${CALLS} same-shaped calls reuse cached blocks and leave RSS flat`, () => {
    const { warm, steady } = result;
    expect(steady.rss - warm.rss).toBeLessThan(ALLOWED_GROWTH);
    const hits = steady.stats.hits - warm.stats.hits;
    const misses = steady.stats.misses - warm.stats.misses;
    expect(hits).toBeGreaterThanOrEqual(CALLS);
    // Outputs live until V8 collects them, so a few calls map a block while earlier outputs are still held.
    expect(misses).toBeLessThan(hits / 10);
  });

  test('the cache stays within its limit while shapes change, and a limit of 0 empties it', () => {
    expect(result.bounded.limitBytes).toBe(1 << 20);
    expect(result.mostCached).toBeLessThanOrEqual(1 << 20);
    expect(result.bounded.misses).toBeGreaterThan(result.steady.stats.misses);
    expect(result.off).toMatchObject({ cachedBytes: 0, limitBytes: 0 });
  });

  test('SAN_CPU_CACHE_BYTES sets the starting limit', () => {
    expect(probe({ SAN_CPU_CACHE_BYTES: '0' }).initial.limitBytes).toBe(0);
  });

  test('setCpuCacheLimit checks its argument', () => {
    expect(() => setCpuCacheLimit(-1)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_SAN_INVALID_ARG' }) as Error);
    expect(() => setCpuCacheLimit('1' as unknown as number)).toThrow(TypeError);
    const { limitBytes } = cpuAllocatorStats();
    setCpuCacheLimit(limitBytes);
    expect(cpuAllocatorStats().limitBytes).toBe(limitBytes);
  });
});
