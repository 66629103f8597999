// SPDX-License-Identifier: Apache-2.0
// A float16 or bfloat16 model: `float32Modules` keeps named modules (and their inputs) in float32, and `castInputs:
// false` hands a call's floating inputs over as given. Run in bfloat16 on a CPU with AVX512-BF16 or AMX, in float16
// on CUDA; the option checks run everywhere.
import path from 'node:path';
import { binding } from '../../lib/runtime/native';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { ModelDtype, TorchModel } from '../../lib/runtime/torch-model';
import { onCuda, testDevice } from '../helpers/device';
import { nativeModelsDir } from './support';

const lowDtype: ModelDtype | null = onCuda ? 'float16' : binding().cpuBfloat16() === null ? 'bfloat16' : null;
const withLowDtype = lowDtype === null ? test.skip : test;
if (lowDtype === null) console.log(`low-precision tests skipped: this CPU lacks ${binding().cpuBfloat16()}`);

const AFFINE = path.join(nativeModelsDir, 'affine.pt');
const IDENTITY = path.join(nativeModelsDir, 'identity.pt');
// Values that bfloat16 and float16 round: 1 + 2^-12 and friends.
const input = (): Tensor<'float32'> => tensor('float32', [2, 4], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8],
  (v) => v + 2 ** -12));

withLowDtype('a module named in float32Modules keeps float32 weights and inputs; the others are cast', async () => {
  const reference = await TorchModel.load({ affine: AFFINE }, { device: testDevice, threads: 1 });
  const model = await TorchModel.load({ low: AFFINE, kept: AFFINE, identity: IDENTITY },
    { device: testDevice, dtype: lowDtype!, threads: 1, float32Modules: ['kept', 'identity'] });
  try {
    const expected = (await reference.run('affine', 'forward', [input()])) as Tensor;
    const kept = (await model.run('kept', 'forward', [input()])) as Tensor;
    const low = (await model.run('low', 'forward', [input()], { float32Outputs: true })) as Tensor;
    expect(kept.type).toBe('float32');
    expect(kept.data).toEqual(expected.data);
    expect(low.data).not.toEqual(expected.data);
    // Its inputs are not cast either.
    expect(await model.run('identity', 'forward', [input()])).toEqual(input());
  } finally {
    await Promise.all([reference.dispose(), model.dispose()]);
  }
});

withLowDtype('castInputs: false hands floating inputs over as given; by default they are cast', async () => {
  const model = await TorchModel.load({ identity: IDENTITY }, { device: testDevice, dtype: lowDtype!, threads: 1 });
  try {
    expect(((await model.run('identity', 'forward', [input()])) as Tensor).type).toBe(lowDtype);
    expect(await model.run('identity', 'forward', [input()], { castInputs: false })).toEqual(input());
  } finally {
    await model.dispose();
  }
});

test('float32Modules must name loaded modules, and castInputs must be a boolean', async () => {
  for (const float32Modules of ['identity', ['other'], ['toString'], [1]]) {
    await expect(TorchModel.load({ identity: IDENTITY }, { device: 'cpu', threads: 1, float32Modules } as never))
      .rejects.toMatchObject({ name: 'TypeError', code: 'ERR_SAN_INVALID_ARG',
        message: expect.stringContaining('options.float32Modules') });
  }
  const model = await TorchModel.load({ identity: IDENTITY }, { device: 'cpu', threads: 1 });
  try {
    await expect(model.run('identity', 'forward', [input()], { castInputs: 'no' } as never))
      .rejects.toMatchObject({ name: 'TypeError', code: 'ERR_SAN_INVALID_ARG' });
  } finally {
    await model.dispose();
  }
});
