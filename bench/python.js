// SPDX-License-Identifier: Apache-2.0
/**
 * The Python baseline as a child process (bench/python_baseline.py): one JSON request a line on its stdin, one
 * answer a line on its stdout. The process keeps its model loaded between requests, so that the bench can time a
 * Python call right after each addon call.
 */
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

class PythonBaseline {
  #child;
  #lines;
  #exited;

  /** Starts `python bench/python_baseline.py` with the placement and threads; it inherits the environment. */
  constructor(python, { device, dtype, threads }) {
    this.#child = spawn(python, [path.join(__dirname, 'python_baseline.py'), '--device', device, '--dtype', dtype,
      '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = readline.createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
    this.#exited = new Promise((resolve) => this.#child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Sends one request and waits for its answer; rejects with Python's error, or when the process has died. */
  async request(op, fields = {}) {
    this.#child.stdin.write(`${JSON.stringify({ op, ...fields })}\n`);
    const { value: line, done } = await this.#lines.next();
    if (done) {
      const { code, signal } = await this.#exited;
      throw new Error(`bench/python_baseline.py exited (${signal ?? `code ${code}`}) before answering '${op}'`);
    }
    const answer = JSON.parse(line);
    if (answer.error) throw new Error(`bench/python_baseline.py, '${op}': ${answer.error}`);
    return answer;
  }

  /** Milliseconds of one call of san.pt's `method` on `batch` images in Python (after `load`). */
  async timeCall(method, batch) {
    const { seconds } = await this.request('time', { method, batch, warmup: 0, repeats: 1 });
    return seconds[0] * 1000;
  }

  /** Ends the process (its stdin closes) and waits for it. */
  async close() {
    this.#child.stdin.end();
    await this.#exited;
  }
}

module.exports = { PythonBaseline };
