// SPDX-License-Identifier: Apache-2.0
/**
 * The errors the HTTP server answers with on its own (with their status), besides the API's typed errors.
 * @module
 */
import { ErrorCode } from '../errors';

/** The codes of errors only the server answers with, besides {@link ErrorCode}'s. */
export const ServeErrorCode = Object.freeze({
  /** The route exists, the method does not (405). */
  METHOD_NOT_ALLOWED: 'ERR_SAN_METHOD_NOT_ALLOWED',
  /** No such route (404). */
  NOT_FOUND: 'ERR_SAN_NOT_FOUND',
  /** The body is larger than `maxBodyBytes` (413). */
  BODY_TOO_LARGE: 'ERR_SAN_BODY_TOO_LARGE',
  /** The body did not arrive whole within `bodyTimeoutMs` of the headers (408). */
  BODY_TIMEOUT: 'ERR_SAN_BODY_TIMEOUT',
  /** The Content-Type is not image/*, application/octet-stream, application/json or multipart/form-data (415). */
  MEDIA_TYPE: 'ERR_SAN_MEDIA_TYPE',
  /** A multipart/form-data or JSON body that does not parse (400). */
  MALFORMED_BODY: 'ERR_SAN_MALFORMED_BODY',
  /** The server is shutting down (503). */
  SHUTTING_DOWN: 'ERR_SAN_SHUTTING_DOWN',
} as const);

/** An error answered with its own status: everything the server refuses on its own. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The client went away before its answer; nothing is answered. */
export class ClientGone extends Error {
  override readonly name = 'ClientGone';
}

/** 400 with ERR_SAN_INVALID_ARG: a request whose parameters do not fit. */
export function badRequest(message: string): HttpError {
  return new HttpError(400, ErrorCode.INVALID_ARG, message);
}

/** 400 with ERR_SAN_MALFORMED_BODY: a body that does not parse as its Content-Type says. */
export function malformedBody(message: string): HttpError {
  return new HttpError(400, ServeErrorCode.MALFORMED_BODY, message);
}

export function bodyTooLarge(maxBytes: number): HttpError {
  return new HttpError(413, ServeErrorCode.BODY_TOO_LARGE, `The body is larger than ${maxBytes} bytes (maxBodyBytes)`);
}

/** 503 with ERR_SAN_OVERLOADED and Retry-After: a request refused at once because a server-wide limit is reached. */
export function overloaded(message: string, retryAfterSeconds: number): HttpError {
  return new HttpError(503, ErrorCode.OVERLOADED, message, { 'Retry-After': String(retryAfterSeconds) });
}

/**
 * The status, code and headers an error is answered with: an {@link HttpError}'s own, or one taken from the
 * `ERR_SAN_…` code of the API's errors (500 ERR_SAN_RUNTIME for anything else).
 * @example
 * ```ts
 * errorAnswer(new SanError(ErrorCode.TOO_LARGE, '…'), 1); // { status: 413, code: 'ERR_SAN_TOO_LARGE', headers: {} }
 * ```
 */
export function errorAnswer(error: unknown, retryAfterSeconds: number): { status: number; code: string;
  headers: Record<string, string> } {
  if (error instanceof HttpError) return { status: error.status, code: error.code, headers: error.headers };
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  const sanCode = typeof code === 'string' && code.startsWith('ERR_SAN_') ? code : undefined;
  // Before the argument errors: a budget may be refused as a RangeError as well as a SanError.
  if (sanCode === ErrorCode.TOO_LARGE) return { status: 413, code: sanCode, headers: {} };
  if ((name === 'TypeError' || name === 'RangeError') && sanCode !== undefined) {
    return { status: 400, code: sanCode, headers: {} };
  }
  switch (sanCode) {
    case ErrorCode.IMAGE:
      return { status: 400, code: sanCode, headers: {} };
    case ErrorCode.OVERLOADED:
      return { status: 503, code: sanCode, headers: { 'Retry-After': String(retryAfterSeconds) } };
    case ErrorCode.TIMEOUT:
      return { status: 504, code: sanCode, headers: {} };
    case ErrorCode.DISPOSED:
      return { status: 503, code: sanCode, headers: {} };
    default:
      return { status: 500, code: sanCode ?? ErrorCode.RUNTIME, headers: {} };
  }
}
