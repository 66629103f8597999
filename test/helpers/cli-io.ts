// SPDX-License-Identifier: Apache-2.0
// An in-memory CliIo for running san-seg's main() in-process, and what was written to it.
import type { CliIo } from '../../lib/cli/main';

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

/** A CliIo whose stdout and stderr are strings; `isTTY` decides whether progress is a bar or plain lines. */
export function captureIo(isTTY = false): CapturedIo {
  const written = { out: '', err: '' };
  return {
    stdout: { write: (text: string) => { written.out += text; } },
    stderr: { write: (text: string) => { written.err += text; }, isTTY, columns: 80 },
    out: () => written.out,
    err: () => written.err,
  };
}

/** The non-empty lines of `text`. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}
