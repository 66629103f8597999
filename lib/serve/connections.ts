// SPDX-License-Identifier: Apache-2.0
/**
 * The open connections of a server and the requests unanswered on each: at most `maxConnections` are kept open, and
 * at the drain deadline every one left is closed. To make room for a new connection at the cap, the oldest one that
 * has not sent a request yet is closed first (a flood of silent connections closes its own), then the one idle the
 * longest between keep-alive requests; a connection with a request unanswered is never closed for room.
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
  /** Open connections that have not sent a request yet, the oldest first (a Set keeps insertion order). */
  readonly #fresh = new Set<Socket>();
  /** Open connections between keep-alive requests, the longest idle first. */
  readonly #between = new Set<Socket>();

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

  /** A new connection: kept, after closing an idle one at the cap, or closed when none is idle. */
  accept(socket: Socket): void {
    if (this.#open.size >= this.#max) {
      const [oldest] = this.#fresh.size > 0 ? this.#fresh : this.#between;
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
    this.#fresh.add(socket);
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
    this.#fresh.delete(socket);
    this.#between.delete(socket);
  }

  /** The request's answer is sent (or its client is gone): the connection is idle from now when it has no other. */
  end(socket: Socket, finish: Finish): void {
    const requests = this.#open.get(socket);
    if (requests === undefined || !requests.delete(finish) || requests.size > 0) return;
    this.#between.add(socket);
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
    this.#fresh.delete(socket);
    this.#between.delete(socket);
  }
}
