// SPDX-License-Identifier: Apache-2.0
/**
 * Tensors as they cross into and out of the native runtime: `{ type, dims, data }`, with `data` the TypedArray
 * that matches `type` (cpp/tensor_convert.cc holds the same table).
 *
 * | type       | data            | note                                                     |
 * | ---------- | --------------- | -------------------------------------------------------- |
 * | `float32`  | `Float32Array`  |                                                          |
 * | `float64`  | `Float64Array`  |                                                          |
 * | `float16`  | `Uint16Array`   | IEEE half bits (Node 20 has no Float16Array)             |
 * | `bfloat16` | `Uint16Array`   | bfloat16 bits (the upper half of a float32)              |
 * | `int8`     | `Int8Array`     |                                                          |
 * | `uint8`    | `Uint8Array`    |                                                          |
 * | `int16`    | `Int16Array`    |                                                          |
 * | `int32`    | `Int32Array`    |                                                          |
 * | `int64`    | `BigInt64Array` |                                                          |
 * | `bool`     | `Uint8Array`    | each element 0 or 1                                      |
 *
 * Inputs are copied when a call is submitted: their buffers may be changed, transferred or detached at once. Outputs own their memory (LibTorch's, released when the output is garbage-collected).
 * @module
 */
import { ErrorCode, withCode } from '../errors';
import * as is from '../is';

/** The TypedArray class for each tensor type. */
export const TENSOR_TYPES = Object.freeze({
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
});

export type TensorType = keyof typeof TENSOR_TYPES;

/** The data array of each tensor type, over any buffer (a Buffer's pool, a SharedArrayBuffer, LibTorch's memory). */
interface TensorDataTypes {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
}

/** The data array of a tensor of type `T`. */
export type TensorData<T extends TensorType = TensorType> = TensorDataTypes[T];

/** A dense, row-major tensor. */
export interface Tensor<T extends TensorType = TensorType> {
  /** Element type. */
  type: T;
  /** Size of each dimension, outermost first; `[]` is a scalar. Every size is at least 1. */
  dims: readonly number[];
  /** The elements, `dims` multiplied together of them. */
  data: TensorData<T>;
}

const TYPE_NAMES = Object.keys(TENSOR_TYPES) as TensorType[];

/** Number of elements of a tensor with these dims. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((count, size) => count * size, 1);
}

/**
 * Makes a tensor, zero-filled unless `data` is given.
 * @example
 * ```ts
 * const image = tensor('uint8', [1, 3, 640, 640]);
 * const ids = tensor('int64', [2], new BigInt64Array([49406n, 49407n]));
 * ```
 * @throws TypeError or RangeError when the three do not fit together (see {@link checkTensor}).
 */
export function tensor<T extends TensorType>(type: T, dims: readonly number[], data?: TensorData<T>): Tensor<T> {
  const made = { type, dims, data: data ?? (new TENSOR_TYPES[type](elementCount(dims)) as TensorData<T>) };
  checkTensor(made, 'tensor');
  return made;
}

/** Has this value the shape of a tensor (an object with `type`, `dims` and `data`)? Its fields are not checked. */
export function isTensorLike(value: unknown): value is Record<'type' | 'dims' | 'data', unknown> {
  return is.plainObject(value) && 'type' in value && 'dims' in value && 'data' in value;
}

/**
 * Checks a tensor field by field, naming the field in the error (`args[0].dims[2]`).
 * @throws TypeError or RangeError, with code ERR_SAN_DTYPE (type, data class) or ERR_SAN_SHAPE (dims, length).
 */
export function checkTensor(value: unknown, name: string): asserts value is Tensor {
  if (!isTensorLike(value)) throw is.invalidParameterError(name, 'a tensor { type, dims, data }', value);
  const { type, dims, data } = value;
  if (!is.string(type)) throw is.invalidParameterError(`${name}.type`, 'a string', type, 'type', ErrorCode.DTYPE);
  if (!is.inArray(type, TYPE_NAMES)) {
    throw is.invalidParameterError(`${name}.type`, `one of: ${TYPE_NAMES.join(', ')}`, type, 'range', ErrorCode.DTYPE);
  }
  if (!Array.isArray(dims)) throw is.invalidParameterError(`${name}.dims`, 'an Array', dims, 'type', ErrorCode.SHAPE);
  dims.forEach((size: unknown, i) => {
    if (typeof size !== 'number') {
      throw is.invalidParameterError(`${name}.dims[${i}]`, 'an integer', size, 'type', ErrorCode.SHAPE);
    }
    // Empty tensors are refused: no exported model takes one, they only ever come from a bug upstream.
    if (!Number.isSafeInteger(size) || size < 1) {
      throw is.invalidParameterError(`${name}.dims[${i}]`, 'an integer of at least 1', size, 'range', ErrorCode.SHAPE);
    }
  });
  const arrayClass = TENSOR_TYPES[type];
  // By tag, not instanceof: arrays from another realm (a vm context, jest's sandbox) are welcome too.
  const tag = ArrayBuffer.isView(data) ? (data as unknown as Record<symbol, unknown>)[Symbol.toStringTag] : undefined;
  if (tag !== arrayClass.name) {
    throw is.invalidParameterError(`${name}.data`, `${arrayClass.name} data (tensor type ${type})`, data, 'type',
      ErrorCode.DTYPE);
  }
  const count = elementCount(dims as number[]);
  const { length } = data as TensorData;
  if (length !== count) {
    const expected = `Expected ${count} elements (dims [${dims.join(', ')}]) for ${name}.data`;
    throw withCode(new RangeError(`${expected} but received ${length}`), ErrorCode.SHAPE);
  }
}
