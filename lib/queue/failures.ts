// SPDX-License-Identifier: Apache-2.0
/**
 * How a job's failure crosses Redis: BullMQ keeps only a message (`failedReason`), so the worker writes the error's
 * `ERR_SAN_…` code in front of it and the producer turns it back into a {@link SanError}. Bad input (a wrong option,
 * an image that does not decode or is too large) fails at once; anything else may pass and is retried.
 * @module
 */
import { ErrorCode, SanError, SanErrorCode } from '../errors';

/** Codes that say the job itself is wrong: running it again gives the same error. */
export const BAD_INPUT_CODES: readonly SanErrorCode[] = [ErrorCode.INVALID_ARG, ErrorCode.IMAGE, ErrorCode.TOO_LARGE,
  ErrorCode.SHAPE, ErrorCode.DTYPE];

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
const REASON_PATTERN = /^(ERR_SAN_[A-Z_]+): ([\s\S]*)$/;

/** The `ERR_SAN_…` code of an error, ERR_SAN_RUNTIME when it has none of ours. */
export function errorCode(error: unknown): SanErrorCode {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && KNOWN_CODES.has(code) ? (code as SanErrorCode) : ErrorCode.RUNTIME;
}

/** Is `error` about the job's input, so that retrying is pointless? TypeError and RangeError always are. */
export function isBadInput(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  return (BAD_INPUT_CODES as readonly string[]).includes(errorCode(error));
}

/** What the worker fails a job with: `ERR_SAN_IMAGE: Could not read …`, the message's first line. */
export function failureReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `${errorCode(error)}: ${message.split('\n', 1)[0]}`;
}

/**
 * The error a producer sees for a failed job: a SanError with the code the worker wrote, or ERR_SAN_RUNTIME for a
 * reason BullMQ wrote itself (a job that stalled too often, a lost lock).
 */
export function errorFromReason(reason: string): SanError {
  const match = REASON_PATTERN.exec(reason);
  if (match !== null && KNOWN_CODES.has(match[1])) return new SanError(match[1] as SanErrorCode, match[2]);
  return new SanError(ErrorCode.RUNTIME, reason);
}
