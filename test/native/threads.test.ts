// SPDX-License-Identifier: Apache-2.0
// Intra-op threads: at most the cores the process may use (more only contend for them), one budget shared by every
// model, and what is in effect shown in metrics().
import * as os from 'node:os';
import * as path from 'node:path';
import { SanModel } from '../../lib/segment/model';
import { TorchModel } from '../../lib/runtime/torch-model';
import { tensor, Tensor } from '../../lib/runtime/tensor';
import { nativeModelsDir, tinyModelDir } from './support';

const cores = os.availableParallelism();

test('threads above the core count are refused, naming the cores', async () => {
  await expect(TorchModel.load({ conv: path.join(nativeModelsDir, 'conv.pt') }, { device: 'cpu', threads: cores + 1 }))
    .rejects.toMatchObject({
      name: 'RangeError',
      code: 'ERR_SAN_INVALID_ARG',
      message: `Expected at most ${cores}, the cores this process may use (more threads than cores make every call ` +
        `slower) for options.threads but received ${cores + 1} of type number`,
    });
});

test('models running at once share the cores and give the same results', async () => {
  const files = { conv: path.join(nativeModelsDir, 'conv.pt') };
  const [a, b] = await Promise.all([TorchModel.load(files, { device: 'cpu', threads: cores }),
    TorchModel.load(files, { device: 'cpu', threads: cores })]);
  try {
    const image = tensor('float32', [1, 3, 96, 96], new Float32Array(3 * 96 * 96).map((_, i) => Math.sin(i)));
    const runs = await Promise.all([a, b, a, b].map((m) => m.run('conv', 'forward', [image]) as Promise<Tensor>));
    for (const out of runs.slice(1)) expect(out.data).toEqual(runs[0].data);
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('metrics() shows the threads, the shared budget, OPENBLAS_NUM_THREADS and OMP_WAIT_POLICY', async () => {
  const model = await SanModel.load(tinyModelDir, { device: 'cpu', threads: 1 });
  try {
    expect(model.metrics().threads).toEqual({ model: 1, coreBudget: cores,
      openblas: process.env.OPENBLAS_NUM_THREADS ?? null, ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null });
    // The addon sets them before OpenBLAS and libgomp load.
    expect(process.env.OPENBLAS_NUM_THREADS).toBeDefined();
    expect(process.env.OMP_WAIT_POLICY).toBeDefined();
    expect(model.metrics().memory.cpuAllocator.limitBytes).toBeGreaterThan(0);
  } finally {
    await model.dispose();
  }
});
