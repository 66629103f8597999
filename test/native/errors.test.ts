// SPDX-License-Identifier: Apache-2.0
// Every failure has its class, stable code and a one-line message, and leaves the model usable.
import * as path from 'node:path';
import { ErrorCode, SanError } from '../../lib/errors';
import { binding } from '../../lib/runtime/native';
import { Argument, TorchModel, TorchModelOptions } from '../../lib/runtime/torch-model';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { testRuntime } from '../helpers/device';
import { moduleFiles, nativeModelsDir } from './support';

let model: TorchModel;
const MODULES = ['affine.pt', 'conv.pt', 'ops.pt', 'identity.pt'];

beforeAll(async () => {
  model = await TorchModel.load(moduleFiles(nativeModelsDir, MODULES), testRuntime('float32'));
});
afterAll(() => model.dispose());

const float32 = (...dims: number[]): Tensor => tensor('float32', dims);

/** The model still answers correctly after a failure. */
async function expectModelStillWorks(): Promise<void> {
  const result = (await model.run('identity.pt', 'forward', [tensor('int32', [2], new Int32Array([7, 8]))])) as Tensor;
  expect(Array.from(result.data as Int32Array)).toEqual([7, 8]);
}

describe('EXPECTED FAILURE - run() reports LibTorch errors by code, then the next call works', () => {
  const cases: Array<[string, string, string, Argument[], string, RegExp]> = [
    // LibTorch 1.13's wording, and 2.x's ("… the same dtype, but got Int and Float", or "but got: int != float").
    ['wrong dtype', 'affine.pt', 'forward', [tensor('int32', [5, 4])], ErrorCode.DTYPE,
      /^(expected )?mat1 and mat2 (must|to) have the same dtype(, but got:? \w+ (and|!=) \w+)?$/],
    ['wrong dtype for a convolution', 'conv.pt', 'forward', [tensor('uint8', [1, 3, 8, 8])], ErrorCode.DTYPE,
      /^Input type \(unsigned char\) and bias type \(float\) should be the same$/],
    ['wrong shape', 'affine.pt', 'forward', [float32(5, 7)], ErrorCode.SHAPE,
      /^mat1 and mat2 shapes cannot be multiplied \(5x7 and 4x3\)$/],
    ['wrong rank', 'conv.pt', 'forward', [float32(5, 7)], ErrorCode.SHAPE,
      /^Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: \[5, 7\]$/],
    ['wrong channel count', 'conv.pt', 'forward', [float32(1, 4, 8, 8)], ErrorCode.SHAPE,
      /expected input\[1, 4, 8, 8\] to have 3 channels, but got 4 channels instead$/],
    // LibTorch's index check (TORCH_CHECK_INDEX, a c10::IndexError).
    ['an index into a scalar', 'ops.pt', 'first_row', [tensor('float32', [])], ErrorCode.SHAPE,
      /^select\(\) cannot be applied to a 0-dim tensor\.$/],
    ['an error raised by the model', 'ops.pt', 'fail', [tensor('float32', [2], new Float32Array([1, 1]))],
      ErrorCode.RUNTIME, /^positive input refused$/],
    ['an argument of the wrong kind', 'affine.pt', 'forward', [3], ErrorCode.INVALID_ARG,
      /^forward\(\) Expected a value of type 'Tensor' for argument 'x' but instead found type 'int'\.$/],
    ['a missing argument', 'ops.pt', 'scale', [float32(2)], ErrorCode.INVALID_ARG,
      /^scale\(\) is missing value for argument 'factor'\. Declaration: scale\(/],
    ['too many arguments', 'affine.pt', 'forward', [float32(5, 4), float32(1)], ErrorCode.INVALID_ARG,
      /^affine\.pt forward\(\) takes 1 argument\(s\) but received 2: forward\(/],
    ['an unknown method', 'ops.pt', 'nope', [], ErrorCode.INVALID_ARG,
      /^Module 'ops\.pt' has no method 'nope' \(methods: forward, as_dict, /],
    ['an unknown module', 'nope.pt', 'forward', [], ErrorCode.INVALID_ARG,
      /^No module 'nope\.pt' is loaded \(loaded: 'affine\.pt', 'conv\.pt', 'identity\.pt', 'ops\.pt'\)$/],
  ];
  test.each(cases)('%s', async (_name, module, method, args, code, message) => {
    const failure = model.run(module, method, args);
    await expect(failure).rejects.toThrow(SanError);
    await expect(failure).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    await expectModelStillWorks();
  });

  test('the error carries the stack of the calling code, not C++ frames', async () => {
    const error = (await model.run('affine.pt', 'forward', [float32(5, 7)]).catch((e: unknown) => e)) as Error;
    expect(error.stack).toMatch(/^SanError: mat1 and mat2 shapes/);
    expect(error.stack).toContain(path.basename(__filename));
    expect(error.stack).not.toMatch(/frame #|Exception raised from|\.cpp/);
  });
});

describe('BAD CALL - run() checks its arguments before any native work', () => {
  const cases: Array<[string, unknown[], typeof TypeError, string, RegExp]> = [
    ['an empty tensor', ['conv.pt', 'forward', [{ type: 'float32', dims: [1, 0], data: new Float32Array(0) }]],
      RangeError, ErrorCode.SHAPE,
      /^Expected an integer of at least 1 for args\[0\]\.dims\[1\] but received 0 of type number$/],
    ['data that does not fit the dims',
      ['identity.pt', 'forward', [{ type: 'float32', dims: [2, 3], data: new Float32Array(5) }]],
      RangeError, ErrorCode.SHAPE, /^Expected 6 elements \(dims \[2, 3\]\) for args\[0\]\.data but received 5$/],
    ['data of another type', ['identity.pt', 'forward', [{ type: 'int64', dims: [2], data: new Int32Array(2) }]],
      TypeError, ErrorCode.DTYPE,
      /^Expected BigInt64Array data \(tensor type int64\) for args\[0\]\.data but received Int32Array of type object$/],
    ['an unknown tensor type',
      ['identity.pt', 'forward', [{ type: 'complex64', dims: [1], data: new Float32Array(2) }]], RangeError,
      ErrorCode.DTYPE, /^Expected one of: float32, float64, float16, .* for args\[0\]\.type but received 'complex64'/],
    ['dims that are not integers',
      ['identity.pt', 'forward', [{ type: 'uint8', dims: [1.5], data: new Uint8Array(1) }]],
      RangeError, ErrorCode.SHAPE, /^Expected an integer of at least 1 for args\[0\]\.dims\[0\] but received 1\.5/],
    ['a bare TypedArray', ['identity.pt', 'forward', [new Float32Array(2)]], TypeError, ErrorCode.INVALID_ARG,
      /^Expected a tensor, number, bigint, boolean, string, null or Array for args\[0\] but received Float32Array of/],
    ['a nested bad value', ['ops.pt', 'stack', [[float32(1), { length: 1 }]]], TypeError, ErrorCode.INVALID_ARG,
      /for args\[0\]\[1\] but received Object of type object$/],
    ['a module name that is not a string', [1, 'forward', []], TypeError, ErrorCode.INVALID_ARG,
      /^Expected a string for module but received 1 of type number$/],
    ['args that are not an Array', ['identity.pt', 'forward', float32(1)], TypeError, ErrorCode.INVALID_ARG,
      /^Expected an Array for args but received Object of type object$/],
    ['a bad float32Outputs', ['identity.pt', 'forward', [], { float32Outputs: 1 }], TypeError, ErrorCode.INVALID_ARG,
      /^Expected a boolean for options\.float32Outputs but received 1 of type number$/],
    ['a bad copyOutputs', ['identity.pt', 'forward', [], { copyOutputs: 'yes' }], TypeError, ErrorCode.INVALID_ARG,
      /^Expected a boolean for options\.copyOutputs but received 'yes' of type string$/],
  ];
  test.each(cases)('%s', async (_name, args, errorClass, code, message) => {
    const failure = (model.run as (...a: unknown[]) => Promise<unknown>)(...args);
    await expect(failure).rejects.toThrow(errorClass);
    await expect(failure).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });
});

describe('EXPECTED FAILURE - load() names what cannot be loaded', () => {
  const file = (name: string): Record<string, string> => ({ net: path.join(nativeModelsDir, name) });
  const cases: Array<[string, Record<string, string>, TorchModelOptions, string, RegExp]> = [
    ['a missing file', file('missing.pt'), {}, ErrorCode.MODEL_LOAD,
      /^Cannot open module 'net' at .*missing\.pt: No such file or directory$/],
    ['a file that is not TorchScript', file('not_torchscript.pt'), {}, ErrorCode.MODEL_LOAD,
      /^Cannot load module 'net' from .*not_torchscript\.pt: not a TorchScript archive, as written by torch\.jit/],
    ['float16 on the CPU', file('identity.pt'), { device: 'cpu', dtype: 'float16' }, ErrorCode.DTYPE,
      /^dtype float16 needs a CUDA device, but device 'cpu' is the CPU here; use float32 on the CPU$/],
  ];
  test.each(cases)('%s', async (_name, files, options, code, message) => {
    const failure = TorchModel.load(files, options);
    await expect(failure).rejects.toThrow(SanError);
    await expect(failure).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });

  test('CUDA that this LibTorch cannot give', async () => {
    const { build } = binding().versions();
    const count = binding().cudaDeviceCount();
    // On a CPU-only build any CUDA device fails; on a CUDA build, one index past the last.
    const device = count > 0 ? `cuda:${count}` : 'cuda';
    const reason =
      build === 'cpu'
        ? /the addon is built against a CPU-only LibTorch [\d.]+; rebuild it against a CUDA LibTorch \(LIBTORCH_DIR=/
        : count === 0
          ? /no CUDA device is visible/
          : new RegExp(`only ${count} CUDA device\\(s\\) are visible`);
    const failure = TorchModel.load(moduleFiles(nativeModelsDir, ['identity.pt']), { device });
    await expect(failure).rejects.toMatchObject({ code: ErrorCode.DEVICE, message: expect.stringMatching(reason) });
    await expect(failure).rejects.toThrow(new RegExp(`^Device '${device}' was requested, but `));
  });
});

test('cudaMemory gives figures for a visible GPU and says why it has none otherwise', () => {
  const count = binding().cudaDeviceCount();
  const past = binding().cudaMemory(count);
  expect(past).toEqual({
    unavailable: binding().versions().cuda === null ? 'no CUDA in this LibTorch' : `no CUDA device ${count} is visible`,
  });
  if (count > 0) {
    expect(binding().cudaMemory(0)).toEqual({
      allocatedBytes: expect.any(Number), reservedBytes: expect.any(Number), peakAllocatedBytes: expect.any(Number),
    });
  }
});

describe('BAD CALL - load() checks its options', () => {
  const files = moduleFiles(nativeModelsDir, ['identity.pt']);
  // [what is wrong, files, options, error class, message]
  const cases: Array<[string, unknown, unknown, typeof TypeError, string]> = [
    ['no files', {}, {}, TypeError,
      'Expected an object of module name to file path, not empty for files but received Object of type object'],
    ['a file that is not a string', { net: 3 }, {}, TypeError,
      'Expected a file path (without NUL bytes) for files.net but received 3 of type number'],
    ['options that are not an object', files, 'cpu', TypeError,
      "Expected an object for options but received 'cpu' of type string"],
    ['an unknown device', files, { device: 'gpu' }, RangeError,
      "Expected one of: cpu, cuda, cuda:N, auto for options.device but received 'gpu' of type string"],
    ['a device that is not a string', files, { device: 0 }, TypeError,
      'Expected a string for options.device but received 0 of type number'],
    ['an unknown dtype', files, { dtype: 'int8' }, RangeError,
      "Expected one of: float32, float16, bfloat16 for options.dtype but received 'int8' of type string"],
    ['zero threads', files, { threads: 0 }, RangeError,
      'Expected an integer between 1 and 1024 for options.threads but received 0 of type number'],
    ['fractional threads', files, { threads: 1.5 }, RangeError,
      'Expected an integer between 1 and 1024 for options.threads but received 1.5 of type number'],
    ['threads that are not a number', files, { threads: '2' }, TypeError,
      "Expected an integer for options.threads but received '2' of type string"],
    ['a zero queueLimit', files, { queueLimit: 0 }, RangeError,
      'Expected an integer between 1 and 2^31-1 for options.queueLimit but received 0 of type number'],
    ['a queueLimit that is not a number', files, { queueLimit: null }, TypeError,
      'Expected an integer for options.queueLimit but received null of type object'],
  ];
  test.each(cases)('%s', async (_name, badFiles, options, errorClass, message) => {
    const failure = TorchModel.load(badFiles as Record<string, string>, options as TorchModelOptions);
    await expect(failure).rejects.toThrow(errorClass);
    await expect(failure).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG, message });
  });
});

describe('EXPECTED FAILURE - the native boundary re-checks what users can build', () => {
  // Straight to the addon, past lib/'s checks, as a caller of the binding could.
  const native = new (binding().NativeModel)({ ...testRuntime('float32'), queueLimit: 8 });
  const loaded = native.load(moduleFiles(nativeModelsDir, ['identity.pt']));
  const options = { float32Outputs: false, copyOutputs: false };
  afterAll(() => native.dispose());

  const cases: Array<[string, unknown, typeof TypeError, string, RegExp]> = [
    ['a bool byte other than 0 or 1', { type: 'bool', dims: [2], data: new Uint8Array([0, 3]) }, RangeError,
      ErrorCode.DTYPE, /^Expected 0 or 1 \(type bool\) for args\[0\]\.data\[1\] but received 3 of type number$/],
    ['data of another type', { type: 'float16', dims: [2], data: new Float32Array(2) }, TypeError, ErrorCode.DTYPE,
      /^Expected Uint16Array data \(tensor type float16\) for args\[0\]\.data but received Float32Array of type/],
    ['data that does not fit the dims', { type: 'uint8', dims: [2, 2], data: new Uint8Array(3) }, RangeError,
      ErrorCode.SHAPE, /^Expected 4 elements \(dims \[2, 2\]\) for args\[0\]\.data but received 3$/],
    ['a negative dim', { type: 'uint8', dims: [-1], data: new Uint8Array(1) }, RangeError, ErrorCode.SHAPE,
      /^Expected an integer of at least 1 for args\[0\]\.dims\[0\] but received -1 of type number$/],
    ['dims that are not an Array', { type: 'uint8', dims: 2, data: new Uint8Array(2) }, TypeError, ErrorCode.SHAPE,
      /^Expected an Array for args\[0\]\.dims but received 2 of type number$/],
    ['a type that is not a string', { type: 1, dims: [1], data: new Uint8Array(1) }, TypeError, ErrorCode.DTYPE,
      /^Expected a string for args\[0\]\.type but received 1 of type number$/],
    ['a bigint too large for int64', 2n ** 64n, RangeError, ErrorCode.INVALID_ARG,
      /^Expected a 64-bit integer for args\[0\] but received 18446744073709551616 of type bigint$/],
  ];
  test.each(cases)('%s', async (_name, arg, errorClass, code, message) => {
    await loaded;
    const failure = native.run('identity.pt', 'forward', [arg as Argument], options);
    // By name: the addon's errors belong to Node's realm, not to jest's sandbox.
    const expected = { name: errorClass.name, code, message: expect.stringMatching(message) };
    await expect(failure).rejects.toMatchObject(expected);
  });

  test('load() twice', async () => {
    await loaded;
    await expect(native.load({})).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARG,
      message: 'load() was already called on this model',
    });
  });
});

describe('EXPECTED FAILURE - a disposed model', () => {
  test('rejects every later call with ERR_SAN_DISPOSED; dispose() again is the same Promise', async () => {
    const doomed = await TorchModel.load(moduleFiles(nativeModelsDir, ['identity.pt']), testRuntime('float32'));
    const disposing = doomed.dispose();
    expect(doomed.dispose()).toBe(disposing);
    const failure = doomed.run('identity.pt', 'forward', [float32(1)]);
    await expect(failure).rejects.toThrow(SanError);
    await expect(failure).rejects.toMatchObject({ code: ErrorCode.DISPOSED, message: 'The model was disposed' });
    await disposing;
    expect(doomed.disposed).toBe(true);
    await expectModelStillWorks();
  });
});

describe('how LibTorch messages are shortened and classified', () => {
  const traceback = [
    'The following operation failed in the TorchScript interpreter.',
    'Traceback of TorchScript, serialized code (most recent call last):',
    '  File "code/__torch__.py", line 10, in forward',
    '    return (linear).forward(x, )',
    '            ~~~~~~~~~~~~~~~ <--- HERE',
    'RuntimeError: mat1 and mat2 shapes cannot be multiplied (5x7 and 4x3)',
    '',
  ].join('\n');
  const stacked = [
    'Sizes of tensors must match except in dimension 1. Expected size 4 but got size 3 for tensor number 1.',
    'Exception raised from cat_out at aten/src/ATen/native/TensorShape.cpp:123 (most recent call first):',
    'frame #0: c10::Error::Error() + 0x1',
  ].join('\n');
  // [raw message, code, what reaches JS when it differs from the raw message]
  const cases: Array<[string, string, string?]> = [
    [traceback, ErrorCode.SHAPE, 'mat1 and mat2 shapes cannot be multiplied (5x7 and 4x3)'],
    [traceback.replace(/RuntimeError: .*/, 'builtins.ValueError: classes must not be empty'), ErrorCode.RUNTIME,
      'classes must not be empty'],
    [stacked, ErrorCode.SHAPE, stacked.split('\n')[0]],
    ['CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity)', ErrorCode.OUT_OF_MEMORY],
    ["DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes.", ErrorCode.OUT_OF_MEMORY],
    ['Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!',
      ErrorCode.DEVICE],
    ['Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same', ErrorCode.DEVICE],
    ['Input type (torch.cuda.HalfTensor) and weight type (torch.cuda.FloatTensor) should be the same', ErrorCode.DTYPE],
    ['expected scalar type Float but found Half', ErrorCode.DTYPE],
    ['"addmm_impl_cpu_" not implemented for \'Half\'', ErrorCode.DTYPE],
    ['index 7 is out of bounds for dimension 0 with size 3', ErrorCode.SHAPE],
  ];
  test.each(cases)('%#: %s', (raw, code, message = raw) => {
    expect(binding()._describeError(raw)).toEqual({ code, message });
  });
});
