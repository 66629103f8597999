// SPDX-License-Identifier: Apache-2.0
/**
 * Type guards and the one wording for a rejected argument:
 * "Expected <kind or range> for <dotted.name> but received <value> of type <typeof>".
 * @module
 */
import { ErrorCode, SanErrorCode, withCode } from './errors';

/** Is this value defined (neither undefined nor null)? */
export function defined<T>(value: T): value is NonNullable<T> {
  return value !== undefined && value !== null;
}

/** Is this a plain object (not null, an Array or a TypedArray)? */
export function plainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function string(value: unknown): value is string {
  return typeof value === 'string';
}

export function bool(value: unknown): value is boolean {
  return typeof value === 'boolean';
}

export function integer(value: unknown): value is number {
  return Number.isInteger(value);
}

export function inRange(value: number, min: number, max: number): boolean {
  return value >= min && value <= max;
}

export function inArray<T>(value: unknown, list: readonly T[]): value is T {
  return list.includes(value as T);
}

/** How a received value is shown in messages: strings quoted (and cut), objects by their class. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'Object';
  return String(value);
}

/**
 * The error for a rejected argument.
 * @param name - dotted name of the argument, e.g. `options.threads` or `args[0].dims[1]`.
 * @param expected - what was expected, concretely: "an integer between 1 and 1024", "one of: cpu, cuda, auto".
 * @param actual - the value received.
 * @param kind - `'type'` (a TypeError: the value has the wrong type) or `'range'` (a RangeError: a bad value).
 * @param code - the `code` the error carries.
 */
export function invalidParameterError(
  name: string,
  expected: string,
  actual: unknown,
  kind: 'type' | 'range' = 'type',
  code: SanErrorCode = ErrorCode.INVALID_ARG,
): TypeError | RangeError {
  const message = `Expected ${expected} for ${name} but received ${describe(actual)} of type ${typeof actual}`;
  return withCode(kind === 'type' ? new TypeError(message) : new RangeError(message), code);
}

/**
 * Refuses option names that are not in `known`, as sharp does: a misspelt option (`devise`) would otherwise be
 * silently ignored.
 * @param options - the options object, already known to be a plain object.
 * @param name - its dotted name, e.g. `options` or `options.batching`.
 * @throws RangeError ERR_SAN_INVALID_ARG naming the unknown option and the known ones.
 */
export function knownOptions(options: Record<string, unknown>, name: string, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw invalidParameterError(`${name}.${key}`, `a known option (one of: ${known.join(', ')})`, key, 'range');
    }
  }
}

/** Is this a usable file path: a non-empty string without NUL bytes (which the C libraries below would cut at)? */
export function path(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !value.includes('\0');
}
