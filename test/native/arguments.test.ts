// SPDX-License-Identifier: Apache-2.0
// How method arguments and results are converted, and when tensor memory is shared or copied.
import { TorchModel } from '../../lib/runtime/torch-model';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { testRuntime } from '../helpers/device';
import { moduleFiles, nativeModelsDir } from './support';

let model: TorchModel;

beforeAll(async () => {
  model = await TorchModel.load(moduleFiles(nativeModelsDir, ['ops.pt', 'identity.pt']), testRuntime('float32'));
});
afterAll(() => model.dispose());

const matrix = (): Tensor<'float32'> => tensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
const values = (result: unknown): number[] => Array.from((result as Tensor).data as Float32Array);

describe('arguments', () => {
  test('an integral number is passed as float where the method declares one', async () => {
    // scale(x, factor: float, offset: int, negate: bool, bias: Optional[Tensor])
    expect(values(await model.run('ops.pt', 'scale', [matrix(), 2, 1, false, null]))).toEqual([3, 5, 7, 9, 11, 13]);
  });

  test('a fractional number is a float; bigint is an int; true is a bool; a tensor fills an Optional', async () => {
    const bias = tensor('float32', [3], new Float32Array([10, 20, 30]));
    const result = await model.run('ops.pt', 'scale', [matrix(), 0.5, 2n, true, bias]);
    expect(values(result)).toEqual([7.5, 17, 26.5, 6, 15.5, 25]);
  });

  test('undefined is None too', async () => {
    expect(values(await model.run('ops.pt', 'scale', [matrix(), 1, 0, false, undefined]))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('an Array of tensors is a List[Tensor]', async () => {
    const result = (await model.run('ops.pt', 'stack', [[matrix(), matrix()]])) as Tensor;
    expect(result.dims).toEqual([2, 2, 3]);
  });

  test('an Array is a Tuple where the method declares one', async () => {
    expect(values(await model.run('ops.pt', 'pair', [[matrix(), 3]]))).toEqual([3, 6, 9, 12, 15, 18]);
  });

  test('strings go both ways', async () => {
    expect(await model.run('ops.pt', 'label', ['cat', 3])).toBe('cat#3');
  });
});

describe('results', () => {
  test('int, float, bool and None become number, number, boolean and null', async () => {
    expect(await model.run('ops.pt', 'scalars', [matrix()])).toEqual([6, 21, true, null]);
  });

  test('a dict becomes a plain object in key order', async () => {
    const result = (await model.run('ops.pt', 'as_dict', [matrix()])) as Record<string, Tensor>;
    expect(Object.keys(result)).toEqual(['double', 'negated']);
    expect(values(result.negated)).toEqual([-1, -2, -3, -4, -5, -6]);
  });

  test('a 0-d tensor has dims []', async () => {
    const [, sum] = (await model.run('ops.pt', 'forward', [matrix()])) as Tensor[];
    expect(sum).toMatchObject({ type: 'float32', dims: [] });
    expect(values(sum)).toEqual([21]);
  });

  test('a transposed (non-contiguous) result arrives row-major', async () => {
    const [, , [, transposed]] = (await model.run('ops.pt', 'forward', [matrix()])) as [Tensor, Tensor, Tensor[]];
    expect(transposed.dims).toEqual([3, 2]);
    expect(values(transposed)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  test('float32Outputs casts float16, bfloat16 and float64 results to float32', async () => {
    // 1.5 and -2 as IEEE half bits and as bfloat16 bits.
    const inputs = [
      tensor('float16', [2], new Uint16Array([0x3e00, 0xc000])),
      tensor('bfloat16', [2], new Uint16Array([0x3fc0, 0xc000])),
      tensor('float64', [2], new Float64Array([1.5, -2])),
    ];
    for (const input of inputs) {
      const result = (await model.run('identity.pt', 'forward', [input], { float32Outputs: true })) as Tensor;
      expect(result.type).toBe('float32');
      expect(values(result)).toEqual([1.5, -2]);
    }
  });
});

describe('memory', () => {
  test('an output never shares memory with an input, even when the method returns its argument', async () => {
    const input = matrix();
    const output = (await model.run('identity.pt', 'forward', [input])) as Tensor;
    const view = (await model.run('ops.pt', 'first_row', [input])) as Tensor;
    input.data.fill(0);
    expect(values(output)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(values(view)).toEqual([1, 2, 3]);
  });

  test('an input may be a view into a larger buffer (byteOffset)', async () => {
    const buffer = new Float32Array([9, 9, 1, 2, 3, 4, 5, 6]);
    const input = tensor('float32', [2, 3], buffer.subarray(2));
    expect(values(await model.run('identity.pt', 'forward', [input]))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('copyOutputs gives the same values in V8-owned memory', async () => {
    const [doubled] = (await model.run('ops.pt', 'forward', [matrix()], { copyOutputs: true })) as Tensor[];
    expect(values(doubled)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  test('outputs outlive the model that made them', async () => {
    const other = await TorchModel.load(moduleFiles(nativeModelsDir, ['ops.pt']), testRuntime('float32'));
    const [doubled] = (await other.run('ops.pt', 'forward', [matrix()])) as Tensor[];
    await other.dispose();
    expect(values(doubled)).toEqual([2, 4, 6, 8, 10, 12]);
  });
});
