// SPDX-License-Identifier: Apache-2.0
/**
 * The values that cross the runtime's boundary: the dtypes a model computes in, method arguments and results.
 * Their own module, so that the addon's declaration (native.ts) and its wrapper (torch-model.ts) both use them
 * without importing each other.
 * @module
 */
import type { Tensor } from './tensor';

/** The dtype a model computes in. */
export type ModelDtype = 'float32' | 'float16' | 'bfloat16';

/**
 * A method argument: tensors, numbers (integral ones are passed as int, and as float where the method declares
 * one), bigints (int), booleans, strings, null/undefined (None, for Optional parameters) and Arrays of these (as
 * the List or Tuple the method declares).
 */
export type Argument = Tensor | number | bigint | boolean | string | null | undefined | readonly Argument[];

/**
 * A method's result: tensors, numbers (int and float), booleans, strings, null (None), Arrays (lists and tuples)
 * and plain objects (dicts with str or int keys).
 */
export type Result = Tensor | number | boolean | string | null | Result[] | { [key: string]: Result };
