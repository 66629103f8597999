// SPDX-License-Identifier: Apache-2.0
// Every run() call's inputs go through the model's stager thread (cpp/stager.h), which places them while earlier
// calls run; the executor takes them back in submission order. On the CPU placing is a no-op for a float32 model,
// so these tests check the hand-over itself: order, results, and that calls which never run release their place
// (a leaked place would hold every later call forever: the test would time out).
import { ErrorCode } from '../../lib/errors';
import { TorchModel } from '../../lib/runtime/torch-model';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { testRuntime } from '../helpers/device';
import { moduleFiles, nativeModelsDir } from './support';

const FILES = moduleFiles(nativeModelsDir, ['slow.pt', 'identity.pt', 'ops.pt']);
const slowInput = (): Tensor => tensor('float32', [256, 256], new Float32Array(256 * 256).fill(0.01));
const scale = (model: TorchModel, i: number): Promise<unknown> =>
  model.run('ops.pt', 'scale', [tensor('float32', [2], new Float32Array([i, -i])), 2, 1, false, null]);
const values = (result: unknown): number[] => Array.from((result as Tensor).data as Float32Array);

test('calls queued behind a long one are staged ahead, run in order, each with its own inputs', async () => {
  const model = await TorchModel.load(FILES, testRuntime('float32'));
  try {
    const settled: number[] = [];
    const long = model.run('slow.pt', 'forward', [slowInput(), 200]).then(() => settled.push(-1));
    const calls = Array.from({ length: 20 }, (_, i) => scale(model, i).then((result) => {
      settled.push(i);
      return values(result);
    }));
    const results = await Promise.all(calls);
    await long;
    expect(settled).toEqual([-1, ...Array.from({ length: 20 }, (_, i) => i)]);
    results.forEach((result, i) => expect(result).toEqual([2 * i + 1, -2 * i + 1]));
  } finally {
    await model.dispose();
  }
});

test('calls refused by a full queue release their place: later calls still run', async () => {
  const model = await TorchModel.load(FILES, { ...testRuntime('float32'), queueLimit: 2 });
  try {
    const long = model.run('slow.pt', 'forward', [slowInput(), 200]);
    const staged = scale(model, 1); // staged while the long call runs
    const refused = Array.from({ length: 3 }, (_, i) => scale(model, 10 + i));
    for (const call of refused) await expect(call).rejects.toMatchObject({ code: ErrorCode.OVERLOADED });
    await long;
    expect(values(await staged)).toEqual([3, -1]);
    for (let i = 0; i < 5; i += 1) expect(values(await scale(model, i))).toEqual([2 * i + 1, -2 * i + 1]);
  } finally {
    await model.dispose();
  }
});

test('a failing call between staged ones fails alone', async () => {
  const model = await TorchModel.load(FILES, testRuntime('float32'));
  try {
    const before = scale(model, 1);
    const failing = model.run('ops.pt', 'fail', [tensor('float32', [1], new Float32Array([1]))]);
    const after = scale(model, 2);
    await expect(failing).rejects.toMatchObject({ code: ErrorCode.RUNTIME });
    expect(values(await before)).toEqual([3, -1]);
    expect(values(await after)).toEqual([5, -3]);
  } finally {
    await model.dispose();
  }
});

test('dispose() with calls staged and queued: they all run, and the stager is gone with the model', async () => {
  const model = await TorchModel.load(FILES, testRuntime('float32'));
  const long = model.run('slow.pt', 'forward', [slowInput(), 100]);
  const queued = Array.from({ length: 4 }, (_, i) => scale(model, i));
  const disposing = model.dispose();
  await expect(scale(model, 9)).rejects.toMatchObject({ code: ErrorCode.DISPOSED });
  await long;
  expect((await Promise.all(queued)).map(values)).toEqual([0, 1, 2, 3].map((i) => [2 * i + 1, -2 * i + 1]));
  await disposing;
  expect(model.queueDepth).toBe(0);
});
