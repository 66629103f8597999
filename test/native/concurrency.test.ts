// SPDX-License-Identifier: Apache-2.0
// Calls run on the model's own thread, in order, with a bounded queue, and the JS thread stays free meanwhile.
import { ErrorCode, SanError } from '../../lib/errors';
import { TorchModel } from '../../lib/runtime/torch-model';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { testRuntime } from '../helpers/device';
import { moduleFiles, nativeModelsDir } from './support';

const SLOW = moduleFiles(nativeModelsDir, ['slow.pt', 'identity.pt', 'ops.pt']);
const slowInput = (): Tensor => tensor('float32', [256, 256], new Float32Array(256 * 256).fill(0.01));
const values = (result: unknown): number[] => Array.from((result as Tensor).data as Float32Array);

let model: TorchModel;
beforeAll(async () => {
  model = await TorchModel.load(SLOW, testRuntime('float32'));
});
afterAll(() => model.dispose());

/** slow.pt iterations that take about `ms` on this machine (and device). */
async function iterationsFor(ms: number): Promise<number> {
  // Warm first: a GPU's first call also pays for kernel and library set-up, which would make later calls too short.
  await model.run('slow.pt', 'forward', [slowInput(), 20]);
  const started = process.hrtime.bigint();
  await model.run('slow.pt', 'forward', [slowInput(), 200]);
  const perIteration = Number(process.hrtime.bigint() - started) / 1e6 / 200;
  return Math.max(20, Math.round(ms / perIteration));
}

test('100 concurrent calls all resolve, each with its own result', async () => {
  const calls = Array.from({ length: 100 }, (_, i) =>
    model.run('ops.pt', 'scale', [tensor('float32', [2], new Float32Array([i, -i])), 2, 1, false, null]),
  );
  expect(model.queueDepth).toBe(100);
  const results = await Promise.all(calls);
  results.forEach((result, i) => expect(values(result)).toEqual([2 * i + 1, -2 * i + 1]));
  expect(model.queueDepth).toBe(0);
});

test('the JS thread keeps running timers while a long inference is pending', async () => {
  // Ordering, not timing: a call that blocked the event loop would settle before any timer below could fire.
  const iterations = await iterationsFor(1500);
  let settled = false;
  const call = model.run('slow.pt', 'forward', [slowInput(), iterations]).then(() => {
    settled = true;
  });
  const timerTurns: boolean[] = [];
  for (let turn = 0; turn < 3; turn += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    timerTurns.push(settled);
  }
  await call;
  expect(timerTurns).toEqual([false, false, false]);
  expect(settled).toBe(true);
});

test('calls beyond queueLimit reject with ERR_SAN_OVERLOADED, and the queue drains', async () => {
  const small = await TorchModel.load(SLOW, { ...testRuntime('float32'), queueLimit: 2 });
  try {
    const first = small.run('slow.pt', 'forward', [slowInput(), 20]);
    const second = small.run('identity.pt', 'forward', [tensor('uint8', [1])]);
    const third = small.run('identity.pt', 'forward', [tensor('uint8', [1])]);
    await expect(third).rejects.toThrow(SanError);
    await expect(third).rejects.toMatchObject({
      code: ErrorCode.OVERLOADED,
      message: "The model's queue is full (2 calls pending, the queueLimit option); wait for some to settle",
    });
    await Promise.all([first, second]);
    await expect(small.run('identity.pt', 'forward', [tensor('uint8', [1])])).resolves.toMatchObject({ dims: [1] });
  } finally {
    await small.dispose();
  }
});

test('dispose() lets every earlier call finish, then rejects later ones', async () => {
  const doomed = await TorchModel.load(SLOW, testRuntime('float32'));
  const earlier = Array.from({ length: 5 }, (_, i) => doomed.run('ops.pt', 'label', ['call', i]));
  const disposing = doomed.dispose();
  const later = doomed.run('ops.pt', 'label', ['late', 0]);
  await expect(later).rejects.toMatchObject({ code: ErrorCode.DISPOSED });
  await expect(Promise.all(earlier)).resolves.toEqual(['call#0', 'call#1', 'call#2', 'call#3', 'call#4']);
  await disposing;
  expect(doomed.queueDepth).toBe(0);
});

test("each model has its own thread: a short call on one does not wait for a long call on another", async () => {
  const other = await TorchModel.load(SLOW, testRuntime('float32'));
  try {
    const iterations = await iterationsFor(1000);
    const order: string[] = [];
    const long = model.run('slow.pt', 'forward', [slowInput(), iterations]).then(() => order.push('long'));
    const short = other.run('ops.pt', 'label', ['short', 1]).then(() => order.push('short'));
    await Promise.all([long, short]);
    expect(order).toEqual(['short', 'long']);
  } finally {
    await other.dispose();
  }
});
