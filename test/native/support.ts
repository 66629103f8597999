// SPDX-License-Identifier: Apache-2.0
// Shared by the native tests: where the fixtures are, the reader of `cases.json` files, and the one tolerance check.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Result } from '../../lib/runtime/torch-model';
import { Tensor, TENSOR_TYPES, TensorType } from '../../lib/runtime/tensor';
import { testModelsDir } from '../helpers/paths';

/** Small TorchScript modules written by test/native/make_modules.py (run by scripts/setup.sh). */
export const nativeModelsDir = path.join(testModelsDir, 'native');
/** The tiny SAN export written by `python3 -m models.make_tiny` (run by scripts/setup.sh). */
export const tinyModelDir = path.join(testModelsDir, 'tiny');

/** Module name -> path, for every given file of a folder; the names are the file names, as cases.json uses. */
export function moduleFiles(dir: string, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name, path.join(dir, name)]));
}

interface TensorFile {
  type: TensorType;
  dims: number[];
  file: string;
}

/** An int argument, in the SAN exporter's cases. */
interface IntInput {
  type: 'int';
  value: number;
}

/** One call and its expected result, computed by the scripted module in Python. */
export interface Case {
  /** What the case checks; the file's index when the file gives no name. */
  name: string;
  module: string;
  method: string;
  inputs: Array<Tensor | number>;
  /** The result's tensors, flattened in order (see flattenTensors). */
  outputs: Tensor[];
}

function readTensor(dir: string, { type, dims, file }: TensorFile): Tensor {
  const bytes = fs.readFileSync(path.join(dir, file));
  // Copied into a fresh ArrayBuffer: a Buffer's offset into Node's pool need not be aligned for the TypedArray.
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return { type, dims, data: new TENSOR_TYPES[type](buffer) };
}

/**
 * Reads a `cases.json`: a list of `{ name?, module, method, inputs, outputs }`, each tensor `{ type, dims, file }`
 * with its data in a raw little-endian file beside it, each int argument `{ type: 'int', value }`.
 */
export function readCases(file: string): Case[] {
  const dir = path.dirname(file);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{
    name?: string;
    module: string;
    method: string;
    inputs: Array<TensorFile | IntInput>;
    outputs: TensorFile[];
  }>;
  return raw.map(({ name, module, method, inputs, outputs }, index) => ({
    name: `${index}: ${module} ${method}${name && name !== method ? ` (${name})` : ''}`,
    module,
    method,
    inputs: inputs.map((input) => (input.type === 'int' ? input.value : readTensor(dir, input))),
    outputs: outputs.map((t) => readTensor(dir, t)),
  }));
}

/** The tensors of a result in order: depth first through arrays, and dict values in key order. */
export function flattenTensors(result: Result): Tensor[] {
  if (Array.isArray(result)) return result.flatMap(flattenTensors);
  if (result !== null && typeof result === 'object') {
    return 'data' in result && 'dims' in result ? [result as Tensor] : Object.values(result).flatMap(flattenTensors);
  }
  return [];
}

export interface Tolerance {
  /** Largest absolute difference allowed, on top of `rtol`. */
  atol: number;
  /** Largest difference allowed relative to the expected value. */
  rtol: number;
}

/** float32 parity with Python: LibTorch is the same library, so only summation order may differ. */
export const FLOAT32_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 0 };

/**
 * Asserts `actual` has the type and dims of `expected` and close values: within `|a - e| <= atol + rtol * |e|` for
 * float32/float64, bit for bit for everything else (integers, bool, and float16/bfloat16 whose bits are compared).
 */
export function expectTensorClose(actual: Result, expected: Tensor, tolerance: Tolerance = FLOAT32_TOLERANCE): void {
  const tensor = actual as Tensor;
  expect({ type: tensor.type, dims: tensor.dims }).toEqual({ type: expected.type, dims: expected.dims });
  // Compared by tag: the addon's arrays come from Node's realm, not from jest's sandbox.
  expect(tensor.data[Symbol.toStringTag]).toBe(expected.data[Symbol.toStringTag]);
  if (expected.type !== 'float32' && expected.type !== 'float64') {
    const elements = (t: Tensor): Array<number | bigint> => Array.from(t.data as ArrayLike<number | bigint>);
    expect(elements(tensor)).toEqual(elements(expected));
    return;
  }
  const a = tensor.data as Float32Array;
  const e = expected.data as Float32Array;
  let worst = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < e.length; i++) {
    const excess = Math.abs(a[i] - e[i]) - (tolerance.atol + tolerance.rtol * Math.abs(e[i]));
    if (Number.isNaN(excess) || excess > worstExcess) {
      [worst, worstExcess] = [i, Number.isNaN(excess) ? Infinity : excess];
    }
  }
  if (worstExcess > 0) {
    const { atol, rtol } = tolerance;
    throw new Error(`element ${worst} is ${a[worst]}, expected ${e[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/**
 * Asserts a label map picks, at every pixel, a class whose reference score is the best or within `tolerance` of it:
 * where two classes nearly tie, a GPU or float16 run may pick either. `referenceScores` is float32 [C, H, W] (a
 * leading batch dim of 1 is allowed); with a zero tolerance only exact ties may differ.
 */
export function expectLabelsNearArgmax(labels: ArrayLike<number | bigint>, expected: ArrayLike<number | bigint>,
  referenceScores: Tensor, tolerance: Tolerance): void {
  const scores = referenceScores.data as Float32Array;
  const pixels = expected.length;
  const classes = scores.length / pixels;
  expect(labels.length).toBe(pixels);
  const offTies: string[] = [];
  for (let p = 0; p < pixels; p++) {
    const [got, want] = [Number(labels[p]), Number(expected[p])];
    if (got === want) continue;
    const best = scores[want * pixels + p];
    const chosen = got >= 0 && got < classes ? scores[got * pixels + p] : -Infinity;
    if (!(best - chosen <= tolerance.atol + tolerance.rtol * Math.abs(best))) {
      offTies.push(`pixel ${p}: label ${got} (score ${chosen}) where ${want} scores ${best}`);
    }
  }
  if (offTies.length > 0) {
    throw new Error(`${offTies.length} label(s) differ beyond a near tie (atol ${tolerance.atol}, rtol ` +
      `${tolerance.rtol}); first: ${offTies[0]}`);
  }
}
