// SPDX-License-Identifier: Apache-2.0
/**
 * One request's deadline: its `timeoutMs` and its caller's `AbortSignal` as one signal that the stages of the
 * request check between their steps (decoding, each text-encoder chunk, before the network), so that a request
 * whose caller is gone stops doing work instead of finishing it for nobody.
 * @module
 */
import { ErrorCode, SanError } from '../errors';
import { AbortError } from './batcher';

export class Deadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #userSignal: AbortSignal | undefined;
  readonly #onUserAbort: (() => void) | undefined;
  readonly #callSite = new Error();

  /**
   * @param signal - the caller's signal, if any; its abort ends the request with an `AbortError` (ABORT_ERR).
   * @param timeoutMs - milliseconds from now after which the request ends with SanError ERR_SAN_TIMEOUT.
   */
  constructor(signal: AbortSignal | undefined, timeoutMs: number | undefined) {
    this.#userSignal = signal;
    if (signal?.aborted) {
      this.#end(new AbortError('The call was aborted before it started', { cause: signal.reason }));
    } else if (signal !== undefined) {
      this.#onUserAbort = () => this.#end(new AbortError('The call was aborted', { cause: signal.reason }));
      signal.addEventListener('abort', this.#onUserAbort, { once: true });
    }
    if (timeoutMs !== undefined && !this.#controller.signal.aborted) {
      this.#timer = setTimeout(() => this.#end(new SanError(ErrorCode.TIMEOUT,
        `The call timed out after ${timeoutMs} ms (options.timeoutMs)`)), timeoutMs);
    }
  }

  /** Aborts when the request is over for its caller; its `reason` is the error the request rejects with. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Throws the request's error once the caller is gone or the time is up; call it between stages. */
  check(): void {
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }

  /**
   * Settles with `work`, or rejects with the request's error as soon as the deadline passes, even when `work` is
   * stuck; `work`'s own later outcome is then ignored.
   */
  race<T>(work: Promise<T>): Promise<T> {
    const { signal } = this.#controller;
    if (signal.aborted) {
      work.catch(() => undefined);
      return Promise.reject(signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /**
   * Stops the timer and the listener on the caller's signal, and ends the deadline: call it when the request has
   * settled. Work of the request still under way (a text encoding started beside a decoding that then failed) sees
   * the signal aborted and stops, instead of running on for nobody outside every admission limit.
   */
  dispose(): void {
    clearTimeout(this.#timer);
    if (this.#onUserAbort !== undefined) this.#userSignal?.removeEventListener('abort', this.#onUserAbort);
    this.#end(new AbortError('The call has settled; its remaining work is dropped'));
  }

  #end(error: Error): void {
    if (this.#controller.signal.aborted) return;
    // The stack of the caller's call, not of a timer callback.
    error.stack = `${error.name}: ${error.message}\n${(this.#callSite.stack ?? '').split('\n').slice(1).join('\n')}`;
    clearTimeout(this.#timer);
    this.#controller.abort(error);
  }
}
