// SPDX-License-Identifier: Apache-2.0
// Spawned by terminate-settling.test.ts as `node terminate-mid-flight.js ADDON OPS_MODULE DEVICE`. The main thread
// starts worker_threads (this same file) that keep the model's whole queue busy with quick runs, terminates each
// mid-flight (every other one just after asking it to dispose its model), then loads a model itself and prints one
// run's result. It never calls process.exit: a job whose
// settling failed and left its executor counted as pending would keep Node referenced and the process alive.
'use strict';
const { once } = require('node:events');
const { isMainThread, parentPort, Worker, workerData } = require('node:worker_threads');

const IN_FLIGHT = 8; // the queue limit: every slot holds a job queued, running or posted back to settle
const BUSY_AFTER = 200; // runs settled before the worker tells the main thread it is busy
const ROUNDS = 16;

const [addon, opsModule, device] = isMainThread ? process.argv.slice(2) : workerData;
const { NativeModel } = require(addon);
const runOptions = { float32Outputs: false, copyOutputs: false };

async function loadOps() {
  const model = new NativeModel({ device, dtype: 'float32', threads: 1, queueLimit: IN_FLIGHT });
  await model.load({ ops: opsModule });
  return model;
}

async function keepBusy() {
  const model = await loadOps();
  let settled = 0;
  let disposing = false;
  // Each settled run submits the next, so jobs are settling on this thread when terminate() stops its JS.
  const submit = () =>
    model.run('ops', 'label', ['worker', settled], runOptions).then(
      () => {
        if (++settled === BUSY_AFTER) parentPort.postMessage('busy');
        submit();
      },
      (error) => {
        if (!disposing) throw error; // after dispose() runs are refused, and the loop ends
      },
    );
  for (let i = 0; i < IN_FLIGHT; i++) submit();
  // Told to, it disposes the model: its final job, which joins the executor thread when it settles, is then
  // among the jobs terminate() interrupts. The listener also keeps the worker alive until it is terminated.
  parentPort.on('message', () => {
    disposing = true;
    model.dispose();
  });
}

async function main() {
  for (let round = 0; round < ROUNDS; round++) {
    const worker = new Worker(__filename, { workerData: [addon, opsModule, device] });
    await once(worker, 'message');
    if (round % 2 === 1) worker.postMessage('dispose');
    // A later moment of the submit-run-settle cycle each round.
    await new Promise((resolve) => setTimeout(resolve, round % 4));
    const code = await worker.terminate();
    if (code !== 1) throw new Error(`worker ${round} ended with code ${code}, not 1 (terminated)`);
  }
  const model = await loadOps();
  console.log(await model.run('ops', 'label', ['main', ROUNDS], runOptions));
}

if (isMainThread) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  keepBusy().catch((error) => parentPort.postMessage(String(error)));
}
