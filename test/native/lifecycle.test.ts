// SPDX-License-Identifier: Apache-2.0
// Threads end with their environment: worker_threads load and run models at once and can be terminated mid-call,
// and a process that never disposes its models still exits by itself.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Tensor, tensor } from '../../lib/runtime/tensor';
import { TorchModel } from '../../lib/runtime/torch-model';
import { testDevice, testRuntime } from '../helpers/device';
import { addonPath } from '../helpers/paths';
import { moduleFiles, nativeModelsDir } from './support';

const workerScript = path.join(__dirname, 'scripts', 'worker-run.js');

function startWorker(): Worker {
  const workerData = { addon: addonPath, modulesDir: nativeModelsDir, device: testDevice };
  return new Worker(workerScript, { workerData });
}

function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

test('two worker threads load and run models at the same time, with the same results as the main thread', async () => {
  const input = tensor('float32', [5, 4], Float32Array.from({ length: 20 }, (_, i) => i / 10));
  const main = await TorchModel.load(moduleFiles(nativeModelsDir, ['affine.pt']), testRuntime('float32'));
  const expected = Array.from(((await main.run('affine.pt', 'forward', [input])) as Tensor).data as Float32Array);
  await main.dispose();

  const workers = [startWorker(), startWorker()];
  try {
    const replies = workers.map((worker) => nextMessage<number[][]>(worker));
    workers.forEach((worker) => worker.postMessage({ task: 'affine', input }));
    for (const results of await Promise.all(replies)) {
      expect(results).toHaveLength(20);
      results.forEach((result) => expect(result).toEqual(expected));
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
});

test('a worker terminated during a long inference ends cleanly, and the main thread carries on', async () => {
  const worker = startWorker();
  const started = nextMessage<string>(worker);
  const input = tensor('float32', [256, 256], new Float32Array(256 * 256).fill(0.01));
  worker.postMessage({ task: 'slow', input, iterations: 300 });
  expect(await started).toBe('started');
  // terminate() returns once the worker's environment is torn down, its executor thread joined.
  await expect(worker.terminate()).resolves.toBe(1);

  const model = await TorchModel.load(moduleFiles(nativeModelsDir, ['affine.pt']), testRuntime('float32'));
  await expect(model.run('affine.pt', 'forward', [input])).rejects.toMatchObject({ code: 'ERR_SAN_SHAPE' });
  await model.dispose();
});

test('a process that never disposes its models still exits by itself', () => {
  const script = `
    const { NativeModel } = require(${JSON.stringify(addonPath)});
    const model = new NativeModel(${JSON.stringify({ ...testRuntime('float32'), queueLimit: 8 })});
    model.load({ ops: ${JSON.stringify(path.join(nativeModelsDir, 'ops.pt'))} })
      .then(() => model.run('ops', 'label', ['done', 1], { float32Outputs: false, copyOutputs: false }))
      .then((label) => console.log(label));
  `;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  expect(run.error).toBeUndefined();
  expect(run.stderr).toBe('');
  expect({ status: run.status, stdout: run.stdout.trim() }).toEqual({ status: 0, stdout: 'done#1' });
});
