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
