// SPDX-License-Identifier: Apache-2.0
/**
 * Reads a request body chunk by chunk under three bounds: its size (`maxBodyBytes`), the time it may take to arrive
 * (`bodyTimeoutMs`), and the server's budget of body bytes held in memory at once (`maxBytesInFlight`), so that no
 * client can hold memory or a slot for longer or larger than the limits say.
 * @module
 */
import * as http from 'node:http';
import { bodyTooLarge, ClientGone, HttpError, ServeErrorCode } from './http-error';

/** What a body is read under. */
export interface BodyLimits {
  /** Largest body, in bytes: more is refused with 413. */
  maxBytes: number;
  /** Time from the start of the read to the body's last byte: later is refused with 408. */
  timeoutMs: number;
  /**
   * Called with each chunk's size before it is kept, and with the size of a copy decoded from the body (a JSON body's
   * base64 image) before it is made; throws (a 503) when the server's byte budget is spent.
   */
  admit: (bytes: number) => void;
}

/**
 * Reads `req` to its end, handing each chunk to `onChunk`. A throw from `admit` or `onChunk` stops the read and
 * rejects with what was thrown; the rest of the body is left unread (the server answers, then discards it).
 * @throws HttpError 413 (ERR_SAN_BODY_TOO_LARGE) past `maxBytes`, 408 (ERR_SAN_BODY_TIMEOUT) past `timeoutMs`;
 *   ClientGone when the client closes the connection while sending.
 */
export function readBody(req: http.IncomingMessage, limits: BodyLimits,
  onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const settle = (error: unknown): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      try {
        if (size > limits.maxBytes) throw bodyTooLarge(limits.maxBytes);
        limits.admit(chunk.length);
        onChunk(chunk);
      } catch (error) {
        settle(error);
      }
    };
    const onEnd = (): void => settle(undefined);
    const onError = (): void => settle(new ClientGone('The client closed the connection while sending'));
    const onClose = (): void => {
      if (!req.complete) onError();
    };
    // Unref'd: a body still arriving must not keep a process alive that is otherwise done.
    const timer = setTimeout(() => settle(new HttpError(408, ServeErrorCode.BODY_TIMEOUT,
      `The body did not arrive within ${limits.timeoutMs} ms (bodyTimeoutMs); ${size} bytes came`)),
    limits.timeoutMs).unref();
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    // Gone before the read began: its 'close' has been and will not come again.
    if (req.destroyed && !req.complete) onError();
  });
}
