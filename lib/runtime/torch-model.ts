// SPDX-License-Identifier: Apache-2.0
/**
 * `TorchModel`: TorchScript modules loaded by the native runtime, run off the JS thread.
 *
 * The runtime knows nothing about SAN: a model is a set of named TorchScript files (a SAN model folder holds
 * `san.pt` and `text_encoder.pt`) on one device and dtype, and `run(module, method, args)` calls any method they
 * export. Each model has its own native thread and a bounded queue: calls run one at a time, in order, and never on
 * the JS thread or in libuv's pool.
 * @module
 */
import * as os from 'node:os';
import { nativeError } from '../errors';
import * as is from '../is';
import { binding, NativeModel, NativeModelOptions } from './native';
import { checkTensor, isTensorLike } from './tensor';
import type { Argument, ModelDtype, Result } from './values';

export type { Argument, ModelDtype, Result } from './values';

/** Options of {@link TorchModel.load}. */
export interface TorchModelOptions {
  /**
   * `'cpu'`, `'cuda'` (the first GPU), `'cuda:N'`, or `'auto'`: the first GPU when LibTorch sees one, else the CPU.
   * @defaultValue `'auto'`
   */
  device?: string;
  /**
   * `'float32'`; `'float16'` on CUDA; `'bfloat16'` on CUDA or on a CPU with AVX512-BF16 or AMX-BF16 (elsewhere
   * ERR_SAN_DTYPE names what the CPU lacks). Floating inputs are cast to it on the device.
   * @defaultValue `'float32'`
   */
  dtype?: ModelDtype;
  /**
   * Modules left in float32 whatever `dtype`: their parameters are not cast, nor their floating inputs. For a module
   * whose outputs are worth float32's precision and whose calls are rare, such as a text encoder whose embeddings are
   * cached. Names must be keys of the files given to {@link TorchModel.load}.
   * @defaultValue `[]`
   */
  float32Modules?: readonly string[];
  /**
   * LibTorch intra-op threads of this model's calls, 1 to the cores this process may use
   * (`os.availableParallelism()`): more threads than cores only contend for them. The cores are one budget shared
   * by every model in the process: while one model's call holds them all, another model's call waits for some.
   * OpenBLAS's own thread pool is set to 1 thread (OPENBLAS_NUM_THREADS, unless already set) when the addon loads.
   * @defaultValue the machine's cores (`os.availableParallelism()`)
   */
  threads?: number;
  /**
   * Most calls pending at once (running and queued), 1 to 2^31-1; more reject with ERR_SAN_OVERLOADED.
   * @defaultValue `256`
   */
  queueLimit?: number;
}

/** Options of {@link TorchModel.run}. */
export interface RunOptions {
  /** Cast every floating output (float16, bfloat16, float64) to float32. @defaultValue `false` */
  float32Outputs?: boolean;
  /**
   * Cast floating input tensors to the model's dtype (a no-op for float32 models and for `float32Modules`); `false`
   * hands them over as given, for a method that takes float32 on purpose in a float16 or bfloat16 model.
   * @defaultValue `true`
   */
  castInputs?: boolean;
  /**
   * Copy outputs into memory owned by V8 instead of handing over LibTorch's (done anyway where the runtime refuses
   * external buffers). @defaultValue `false`
   */
  copyOutputs?: boolean;
}

/** Every option's default; `threads` is the machine's core count. */
export const TORCH_MODEL_DEFAULTS = Object.freeze({
  device: 'auto',
  dtype: 'float32' as ModelDtype,
  queueLimit: 256,
  float32Outputs: false,
  copyOutputs: false,
  castInputs: true,
});

/**
 * The names {@link TorchModel.load} takes that a `SanModel` passes through from its own options (it picks
 * `float32Modules` itself).
 */
export const TORCH_MODEL_OPTIONS: readonly string[] = Object.freeze(['device', 'dtype', 'threads', 'queueLimit']);
/** The devices {@link TorchModel.load} takes. */
export const DEVICE_PATTERN = /^(cpu|auto|cuda(:\d{1,2})?)$/;
/** The dtypes {@link TorchModel.load} takes. */
export const MODEL_DTYPES: readonly ModelDtype[] = Object.freeze(['float32', 'float16', 'bfloat16']);
const MAX_THREADS = 1024;
const MAX_QUEUE_LIMIT = 2 ** 31 - 1;

function checkModelOptions(options: unknown, files: Record<string, string>): NativeModelOptions {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  is.knownOptions(options, 'options', [...TORCH_MODEL_OPTIONS, 'float32Modules']);
  const { float32Modules = [] } = options;
  const isModule = (name: unknown): boolean => is.string(name) && Object.hasOwn(files, name);
  if (!Array.isArray(float32Modules) || !float32Modules.every(isModule)) {
    const names = Object.keys(files).join(', ');
    throw is.invalidParameterError('options.float32Modules', `an Array of module names (${names})`, float32Modules);
  }
  const { device = TORCH_MODEL_DEFAULTS.device, dtype = TORCH_MODEL_DEFAULTS.dtype } = options;
  const { threads = os.availableParallelism(), queueLimit = TORCH_MODEL_DEFAULTS.queueLimit } = options;
  if (!is.string(device)) throw is.invalidParameterError('options.device', 'a string', device);
  if (!DEVICE_PATTERN.test(device)) {
    throw is.invalidParameterError('options.device', "one of: cpu, cuda, cuda:N, auto", device, 'range');
  }
  if (!is.string(dtype)) throw is.invalidParameterError('options.dtype', 'a string', dtype);
  if (!is.inArray(dtype, MODEL_DTYPES)) {
    throw is.invalidParameterError('options.dtype', `one of: ${MODEL_DTYPES.join(', ')}`, dtype, 'range');
  }
  if (typeof threads !== 'number') throw is.invalidParameterError('options.threads', 'an integer', threads);
  if (!is.integer(threads) || !is.inRange(threads, 1, MAX_THREADS)) {
    throw is.invalidParameterError('options.threads', `an integer between 1 and ${MAX_THREADS}`, threads, 'range');
  }
  if (threads > os.availableParallelism()) {
    throw is.invalidParameterError('options.threads', `at most ${os.availableParallelism()}, the cores this process ` +
      'may use (more threads than cores make every call slower)', threads, 'range');
  }
  if (typeof queueLimit !== 'number') throw is.invalidParameterError('options.queueLimit', 'an integer', queueLimit);
  if (!is.integer(queueLimit) || !is.inRange(queueLimit, 1, MAX_QUEUE_LIMIT)) {
    throw is.invalidParameterError('options.queueLimit', 'an integer between 1 and 2^31-1', queueLimit, 'range');
  }
  return { device, dtype, float32Modules: [...float32Modules] as string[], threads, queueLimit };
}

function checkFiles(files: unknown): asserts files is Record<string, string> {
  if (!is.plainObject(files) || Object.keys(files).length === 0) {
    throw is.invalidParameterError('files', 'an object of module name to file path, not empty', files);
  }
  for (const [name, file] of Object.entries(files)) {
    if (!is.path(file)) throw is.invalidParameterError(`files.${name}`, 'a file path (without NUL bytes)', file);
  }
}

function checkArgument(value: unknown, name: string): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkArgument(item, `${name}[${i}]`));
  } else if (isTensorLike(value)) {
    checkTensor(value, name);
  } else if (!['number', 'bigint', 'boolean', 'string', 'undefined'].includes(typeof value) && value !== null) {
    throw is.invalidParameterError(name, 'a tensor, number, bigint, boolean, string, null or Array', value);
  }
}

function checkRunOptions(options: unknown): Required<RunOptions> {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  is.knownOptions(options, 'options', ['float32Outputs', 'copyOutputs', 'castInputs']);
  const { float32Outputs = TORCH_MODEL_DEFAULTS.float32Outputs } = options;
  const { copyOutputs = TORCH_MODEL_DEFAULTS.copyOutputs, castInputs = TORCH_MODEL_DEFAULTS.castInputs } = options;
  if (!is.bool(float32Outputs)) throw is.invalidParameterError('options.float32Outputs', 'a boolean', float32Outputs);
  if (!is.bool(copyOutputs)) throw is.invalidParameterError('options.copyOutputs', 'a boolean', copyOutputs);
  if (!is.bool(castInputs)) throw is.invalidParameterError('options.castInputs', 'a boolean', castInputs);
  return { float32Outputs, copyOutputs, castInputs };
}

/**
 * TorchScript modules on one device, each call run on the model's own native thread.
 * @example
 * ```ts
 * const model = await TorchModel.load({ san: 'model/san.pt', text: 'model/text_encoder.pt' }, { device: 'auto' });
 * const [maskLogits, classLogits] = (await model.run('san', 'forward', [image, textEmbeds])) as Tensor[];
 * await model.dispose();
 * ```
 * @example
 * ```ts
 * // float16 on a GPU, float32 results
 * const model = await TorchModel.load({ net: 'net.pt' }, { device: 'cuda:0', dtype: 'float16' });
 * const pixels = tensor('float32', [1, 3, 224, 224], data);
 * const out = await model.run('net', 'forward', [pixels], { float32Outputs: true });
 * ```
 */
export class TorchModel {
  readonly #native: NativeModel;
  readonly #methods: Readonly<Record<string, readonly string[]>>;
  readonly #threads: number;
  #disposing: Promise<void> | undefined;

  private constructor(native: NativeModel, methods: Record<string, string[]>, threads: number) {
    this.#native = native;
    this.#threads = threads;
    this.#methods = Object.freeze(methods);
  }

  /**
   * Loads TorchScript files on the model's thread.
   * @param files - module name to `.pt` file, e.g. `{ 'san.pt': '/models/san/san.pt' }`; names are what
   *   {@link TorchModel.run} takes.
   * @param options - device, dtype, threads and queue size; see {@link TorchModelOptions}.
   * @returns the loaded model.
   * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad option; SanError ERR_SAN_MODEL_LOAD for a
   *   missing or broken file, ERR_SAN_DEVICE when the device cannot be used, ERR_SAN_DTYPE for float16 on the CPU.
   */
  static async load(files: Record<string, string>, options: TorchModelOptions = {}): Promise<TorchModel> {
    const callSite = new Error();
    checkFiles(files);
    const checked = checkModelOptions(options, files);
    const native = new (binding().NativeModel)(checked);
    try {
      const { methods } = await native.load(files);
      return new TorchModel(native, methods, checked.threads);
    } catch (error) {
      await native.dispose();
      throw nativeError(error, callSite);
    }
  }

  /** The device in use: `'cpu'` or `'cuda:N'`. */
  get device(): string {
    return this.#native.device;
  }

  /** The intra-op threads of this model's calls. */
  get threads(): number {
    return this.#threads;
  }

  get dtype(): ModelDtype {
    return this.#native.dtype as ModelDtype;
  }

  /** Calls submitted and not yet settled (running included). */
  get queueDepth(): number {
    return this.#native.queueDepth;
  }

  /** Every module's methods, by module name. */
  get methods(): Readonly<Record<string, readonly string[]>> {
    return this.#methods;
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /**
   * Calls `module.method(...args)` on the model's thread, under inference mode.
   * @param module - a name given to {@link TorchModel.load}.
   * @param method - any method the module exports (`forward`, or one marked `@torch.jit.export`).
   * @param args - the method's arguments; see {@link Argument}. Input tensors are copied when the call is made, so
   *   their buffers may be changed, transferred or detached at once.
   * @param options - output conversion; see {@link RunOptions}.
   * @returns the method's result; see {@link Result}.
   * @throws TypeError or RangeError for a malformed argument (code ERR_SAN_INVALID_ARG, or ERR_SAN_DTYPE /
   *   ERR_SAN_SHAPE for a malformed tensor); SanError ERR_SAN_DISPOSED, ERR_SAN_OVERLOADED, ERR_SAN_INVALID_ARG
   *   (unknown module or method, arguments the method does not take), ERR_SAN_SHAPE / ERR_SAN_DTYPE /
   *   ERR_SAN_DEVICE / ERR_SAN_OUT_OF_MEMORY / ERR_SAN_RUNTIME from LibTorch.
   */
  async run(module: string, method: string, args: readonly Argument[], options: RunOptions = {}): Promise<Result> {
    const callSite = new Error();
    if (!is.string(module)) throw is.invalidParameterError('module', 'a string', module);
    if (!is.string(method)) throw is.invalidParameterError('method', 'a string', method);
    if (!Array.isArray(args)) throw is.invalidParameterError('args', 'an Array', args);
    args.forEach((arg, i) => checkArgument(arg, `args[${i}]`));
    const runOptions = checkRunOptions(options);
    try {
      return await this.#native.run(module, method, args, runOptions);
    } catch (error) {
      throw nativeError(error, callSite);
    }
  }

  /**
   * Frees the modules once the calls already submitted have settled; later calls reject with ERR_SAN_DISPOSED.
   * Calling it again returns the same Promise.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#native.dispose();
    return this.#disposing;
  }
}
