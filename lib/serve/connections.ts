// SPDX-License-Identifier: Apache-2.0
/**
 * The open connections of a server and the requests unanswered on each: at most `maxConnections` are kept open (to
 * make room for a new one, the connection idle the longest, one that has sent no request or is between keep-alive
 * requests, is closed first), and at the drain deadline every one left is closed.
 * @module
 */
import { Socket } from 'node:net';
import type { ClosedReason } from './prometheus';

/** A request's way to finish itself when its connection closes before its answer. */
type Finish = () => void;

export class Connections {
  readonly #max: number;
  readonly #onClosed: (reason: ClosedReason) => void;
  /** Open connections and their unanswered requests. */
  readonly #open = new Map<Socket, Set<Finish>>();
  /** Open connections with no request unanswered, the longest idle first (a Set keeps insertion order). */
  readonly #idle = new Set<Socket>();

  /**
   * @param max - most connections kept open.
   * @param onClosed - told each time a connection is closed by this class, and why.
   */
  constructor(max: number, onClosed: (reason: ClosedReason) => void) {
    this.#max = max;
    this.#onClosed = onClosed;
  }

  /** Open connections. */
  get size(): number {
    return this.#open.size;
  }

  /** A new connection: kept, after closing the longest idle one at the cap, or closed when none is idle. */
  accept(socket: Socket): void {
    if (this.#open.size >= this.#max) {
      const [oldest] = this.#idle;
      if (oldest === undefined) {
        socket.destroy();
        this.#onClosed('refused');
        return;
      }
      this.#forget(oldest);
      oldest.destroy();
      this.#onClosed('evicted');
    }
    const requests = new Set<Finish>();
    this.#open.set(socket, requests);
    this.#idle.add(socket);
    // A request queued behind another on its connection gets no 'close' of its own when the connection drops: the
    // connection's one 'close' listener finishes them all.
    socket.once('close', () => {
      this.#forget(socket);
      requests.forEach((finish) => finish());
    });
  }

  /** A request received on `socket`: the connection is busy until `end`. */
  begin(socket: Socket, finish: Finish): void {
    const requests = this.#open.get(socket);
    if (requests === undefined) return; // closed already: its request is finished by the handler's own 'close'
    requests.add(finish);
    this.#idle.delete(socket);
  }

  /** The request's answer is sent (or its client is gone): the connection is idle from now when it has no other. */
  end(socket: Socket, finish: Finish): void {
    const requests = this.#open.get(socket);
    if (requests === undefined || !requests.delete(finish) || requests.size > 0) return;
    this.#idle.add(socket);
  }

  /** Closes every open connection, e.g. at the drain deadline. @returns how many there were. */
  closeAll(reason: ClosedReason): number {
    const sockets = [...this.#open.keys()];
    for (const socket of sockets) {
      socket.destroy();
      this.#onClosed(reason);
    }
    return sockets.length;
  }

  #forget(socket: Socket): void {
    this.#open.delete(socket);
    this.#idle.delete(socket);
  }
}
