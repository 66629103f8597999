// SPDX-License-Identifier: Apache-2.0
/**
 * A first-come-first-served gate with a fixed number of slots, for text-encoder chunks.
 *
 * The model's runtime runs its calls one at a time in the order they were submitted. Were every cold request to
 * submit its text-encoder chunks as fast as it could, a segment batch of a cached request would queue behind all of
 * them; through this gate at most `slots` chunks are in the runtime at once, and concurrent cold requests take turns
 * chunk by chunk, so a batch waits behind at most `slots` chunks whatever the cold load.
 * @module
 */

export class FairGate {
  readonly #slots: number;
  /** Each waiter's admission, oldest first. */
  readonly #waiters: (() => void)[] = [];
  #busy = 0;

  constructor(slots: number) {
    this.#slots = slots;
  }

  /** Waiters not yet admitted. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Runs `work` once a slot is free, in arrival order. A waiter whose `signal` aborts leaves the line at once and
   * rejects with the signal's reason, so work whose caller is gone is never started.
   */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  #acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#busy < this.#slots) {
      this.#busy += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(signal?.reason);
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(): void {
    const next = this.#waiters.shift();
    // The slot passes straight to the next waiter; `busy` only drops when nobody waits.
    if (next !== undefined) next();
    else this.#busy -= 1;
  }
}
