// SPDX-License-Identifier: Apache-2.0
/**
 * What every `san-seg` command shares: the streams it writes to, the two kinds of expected failure (a usage error,
 * exit 2; a run-time failure, exit 1), and the argv parser that turns `node:util` parse errors into usage errors.
 * @module
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { SanError } from '../errors';

export const PROGRAM = 'san-seg';
export { PACKAGE_ROOT } from '../package-root';

/** Exit codes: every command returns one of these. */
export const ExitCode = Object.freeze({ OK: 0, FAILURE: 1, USAGE: 2 } as const);

/** Where the CLI writes; `process.stdout` and `process.stderr` unless a test passes its own. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  /** `isTTY` (and `columns`) decide whether a progress bar is drawn. */
  readonly stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
}

/** Bad arguments or usage: reported as one line plus a pointer to the command's help, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command whose `--help` the hint names; none for the top level. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** An expected run-time failure of the CLI itself (an output folder it cannot make, Python missing): exit 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/**
 * Is this an error whose message says all there is (no stack trace wanted)? The CLI's own, SanError, TypeError and
 * RangeError with an ERR_SAN code, and Node's system errors (a file that cannot be read or written).
 */
export function isExpectedError(error: unknown): error is Error {
  if (error instanceof UsageError || error instanceof CliError || error instanceof SanError) return true;
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as Error & { code?: unknown; syscall?: unknown };
  if (typeof code === 'string' && code.startsWith('ERR_SAN')) return true;
  return typeof syscall === 'string';
}

/** Is this a rejected option (TypeError or RangeError with code ERR_SAN_INVALID_ARG), that is, bad usage? */
export function isArgumentError(error: unknown): error is Error {
  return (error instanceof TypeError || error instanceof RangeError) &&
    (error as Error & { code?: unknown }).code === 'ERR_SAN_INVALID_ARG';
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(error: Error): string {
  return error.message.split('\n', 1)[0];
}

/**
 * `parseArgs` (strict, its default: unknown options are refused), with its errors turned into a {@link UsageError}
 * for `command`.
 * @throws UsageError naming the unknown option, the missing value or the unexpected argument.
 */
export function parseCommandArgs<T extends ParseArgsConfig & { strict?: true }>(command: string,
  config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(describeParseError(error as Error & { code?: string }), command);
  }
}

function describeParseError(error: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted ?? error.message}'`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted ?? error.message}'`;
    default: {
      // "Option '--model <value>' argument missing" and the like: the first sentence is the reason.
      const sentence = error.message.split(/\.\s/, 1)[0].replace(/\.$/, '');
      return sentence.charAt(0).toLowerCase() + sentence.slice(1);
    }
  }
}

/** The value of a required string option. @throws UsageError when it is missing or empty. */
export function required(value: string | undefined, flag: string, command: string): string {
  if (value === undefined || value.length === 0) throw new UsageError(`${flag} is required`, command);
  return value;
}

/** A flag's value as an integer of at least 1. @throws UsageError for `command`. */
export function parsePositiveInteger(text: string, flag: string, command: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${flag} must be a positive integer (got '${text}')`, command);
  }
  return value;
}
