// SPDX-License-Identifier: Apache-2.0
/**
 * The errors san-node rejects with. Every one carries a stable `code`; match on it, not on the message.
 *
 * - Arguments refused before any native work are a `TypeError` (wrong type) or `RangeError` (bad value).
 * - Failures reported by the native runtime are a {@link SanError}, with the native message cut to its first
 *   meaningful line and the stack of the JS call that started the work.
 *
 * @module
 */
import { isNativeError } from 'node:util/types';

/** Every error code, with what it means. cpp/common.h lists the native ones. */
export const ErrorCode = Object.freeze({
  /** A module file is missing, unreadable, or not a TorchScript archive. */
  MODEL_LOAD: 'ERR_SAN_MODEL_LOAD',
  /** A tensor's dims do not fit its data, are empty, or do not fit what the model computes. */
  SHAPE: 'ERR_SAN_SHAPE',
  /** A tensor's type does not fit its data or the model (e.g. int32 into a convolution). */
  DTYPE: 'ERR_SAN_DTYPE',
  /** The device cannot be used: CUDA asked of a CPU-only LibTorch, no such GPU, tensors on two devices. */
  DEVICE: 'ERR_SAN_DEVICE',
  /** The model was disposed before the call. */
  DISPOSED: 'ERR_SAN_DISPOSED',
  /** Too many calls pending: the runtime's `queueLimit`, or a batcher's `maxQueue` with `onFull: 'reject'`. */
  OVERLOADED: 'ERR_SAN_OVERLOADED',
  /** A bad option or argument: wrong type or range, unknown module or method, arguments the method does not take. */
  INVALID_ARG: 'ERR_SAN_INVALID_ARG',
  /** LibTorch could not allocate memory (host or GPU). */
  OUT_OF_MEMORY: 'ERR_SAN_OUT_OF_MEMORY',
  /** Any other failure inside LibTorch or the model's own code. */
  RUNTIME: 'ERR_SAN_RUNTIME',
  /** An image could not be decoded (corrupt or unsupported bytes, a missing file) or is larger than allowed. */
  IMAGE: 'ERR_SAN_IMAGE',
  /** A request waited longer than its `timeoutMs`. */
  TIMEOUT: 'ERR_SAN_TIMEOUT',
  /** The native addon could not be loaded (see the message's "Possible solutions"). */
  ADDON_LOAD: 'ERR_SAN_ADDON_LOAD',
  /**
   * A request would need more than a budget allows, judged before any work is done: output pixels, the memory
   * estimated for its maps, prompts to encode. The message names the limit and the option that sets it.
   */
  TOO_LARGE: 'ERR_SAN_TOO_LARGE',
} as const);

export type SanErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** A failure reported by the native runtime or its loader. */
export class SanError extends Error {
  override readonly name = 'SanError';
  /** Stable code, one of {@link ErrorCode}. */
  readonly code: SanErrorCode;

  constructor(code: SanErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Attaches a stable `code` to an error (TypeError and RangeError included), as Node's own errors carry one. */
export function withCode<E extends Error>(error: E, code: SanErrorCode): E & { code: SanErrorCode } {
  return Object.assign(error, { code });
}

/**
 * Turns what the addon rejected with into the error users see: same class for TypeError/RangeError (raised by the
 * addon's own argument checks), SanError otherwise, with the stack of `callSite` (an `Error` made when the user
 * called in, so the stack points at their code rather than at a thread-safe function callback).
 * @ignore
 */
export function nativeError(native: unknown, callSite: Error): Error {
  // Read by name, not instanceof: the addon's errors come from Node's main realm, which need not be the caller's.
  const { name, message, code } = isNativeError(native)
    ? (native as Error & { code?: unknown })
    : { name: 'Error', message: String(native), code: undefined };
  const known = typeof code === 'string' && KNOWN_CODES.has(code) ? (code as SanErrorCode) : ErrorCode.RUNTIME;
  const error =
    name === 'TypeError' || name === 'RangeError'
      ? withCode(new (name === 'TypeError' ? TypeError : RangeError)(message), known)
      : new SanError(known, message);
  const frames = (callSite.stack ?? '').split('\n').slice(1).join('\n');
  error.stack = `${error.name}: ${error.message}\n${frames}`;
  return error;
}
