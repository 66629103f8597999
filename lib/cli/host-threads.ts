// SPDX-License-Identifier: Apache-2.0
/**
 * Sizes libuv's thread pool from the core count, for the command line. sharp decodes and resizes each image on one
 * pool thread (with one libvips thread per image: sharp's default on glibc, against memory fragmentation), and
 * libuv starts 4 threads unless told otherwise, so by default at most 4 images decode at once whatever the machine:
 * on a 16-core host feeding a GPU, a quarter of it. libuv reads UV_THREADPOOL_SIZE once, when its pool first
 * starts, so the CLI entry points import this module before anything else. A value the user set is left alone.
 * @module
 */
import * as os from 'node:os';

/** libuv's bound on its pool. */
const MAX_POOL = 1024;

/** Pool threads for `cores` cores: one per core, and never fewer than libuv's own default of 4. */
export function threadPoolSize(cores: number): number {
  return Math.min(MAX_POOL, Math.max(4, cores));
}

/** Sets `env.UV_THREADPOOL_SIZE` from the core count unless it is set already; returns the value in force. */
export function sizeThreadPool(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): string {
  if (!env.UV_THREADPOOL_SIZE) env.UV_THREADPOOL_SIZE = String(threadPoolSize(cores));
  return env.UV_THREADPOOL_SIZE;
}

sizeThreadPool();
