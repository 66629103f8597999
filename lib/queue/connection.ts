// SPDX-License-Identifier: Apache-2.0
/**
 * The Redis connection of a queue, producer or worker: a `redis://` (or `rediss://`) URL, or BullMQ's connection
 * options as they are (host, port, an ioredis instance…).
 * @module
 */
import type { ConnectionOptions } from 'bullmq';
import * as is from '../is';

/** A Redis URL, `redis://[user:password@]host:port[/db]`, or BullMQ's connection options. */
export type RedisTarget = string | ConnectionOptions;

/**
 * BullMQ's connection options for `target`; a URL is checked here so that a typo fails at once rather than as a
 * connection that retries for ever.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG).
 */
export function connectionOptions(target: unknown, name = 'connection'): ConnectionOptions {
  if (is.string(target)) {
    let url: URL | undefined;
    try {
      url = new URL(target);
    } catch {
      url = undefined;
    }
    if (url === undefined || !['redis:', 'rediss:'].includes(url.protocol) || url.hostname === '') {
      throw is.invalidParameterError(name, 'a URL redis://HOST:PORT', target, 'range');
    }
    return { url: target };
  }
  if (typeof target !== 'object' || target === null) {
    throw is.invalidParameterError(name, 'a URL redis://HOST:PORT or BullMQ connection options', target);
  }
  return target as ConnectionOptions;
}
