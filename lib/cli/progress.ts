// SPDX-License-Identifier: Apache-2.0
/**
 * Progress of a batch on stderr: a bar redrawn in place on a terminal (`[=====     ] 12/40 street.jpg`), else one
 * plain line per item (`[12/40] street.jpg`). Failures get a line of their own either way, and lines meant for
 * stdout go through {@link Progress.print} so that they never land inside the bar.
 * @module
 */
import type { CliIo } from './common';

const BAR_WIDTH = 20;
const CLEAR_LINE = '\r\x1b[K';

export class Progress {
  readonly #io: CliIo;
  readonly #total: number;
  readonly #bar: boolean;
  #done = 0;
  #last = '';

  /**
   * @param io - where to write.
   * @param total - how many items the batch has.
   * @param bar - draw a bar (when stderr is a terminal and there is more than one item) or plain lines.
   */
  constructor(io: CliIo, total: number, bar: boolean) {
    this.#io = io;
    this.#total = total;
    this.#bar = bar;
    if (bar) this.#draw();
  }

  /** Should a batch of `total` items written to `io` get a bar? */
  static wantsBar(io: CliIo, total: number): boolean {
    return io.stderr.isTTY === true && total > 1;
  }

  /** One item is done. */
  succeeded(name: string): void {
    this.#done += 1;
    this.#last = name;
    if (this.#bar) this.#draw();
    else this.#io.stderr.write(`[${this.#done}/${this.#total}] ${name}\n`);
  }

  /** One item failed: `line` is written to stderr on its own line. */
  failed(name: string, line: string): void {
    this.#done += 1;
    this.#last = name;
    this.#aside(() => this.#io.stderr.write(`${line}\n`));
  }

  /** Writes `lines` to stdout, around the bar. */
  print(lines: readonly string[]): void {
    this.#aside(() => this.#io.stdout.write(lines.map((line) => `${line}\n`).join('')));
  }

  /** Removes the bar, if one is drawn. */
  finish(): void {
    if (this.#bar) this.#io.stderr.write(CLEAR_LINE);
  }

  #aside(write: () => void): void {
    if (this.#bar) this.#io.stderr.write(CLEAR_LINE);
    write();
    if (this.#bar) this.#draw();
  }

  #draw(): void {
    const filled = Math.round((BAR_WIDTH * this.#done) / this.#total);
    const line = `[${'='.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}] ${this.#done}/${this.#total} ${this.#last}`;
    // One column short of the terminal's width, so that the line never wraps.
    const columns = this.#io.stderr.columns;
    this.#io.stderr.write(CLEAR_LINE + (columns && columns > 1 ? line.slice(0, columns - 1) : line));
  }
}
