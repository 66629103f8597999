// SPDX-License-Identifier: Apache-2.0
// Runs in a worker_thread for lifecycle.test.ts: loads a model from workerData and answers each message
// ({ iterations }) on workerData.device with the run's result, or runs forever when told to be terminated mid-inference.
'use strict';
const path = require('node:path');
const { parentPort, workerData } = require('node:worker_threads');

const { NativeModel } = require(workerData.addon);
const model = new NativeModel({ device: workerData.device, dtype: 'float32', threads: 1, queueLimit: 8 });
const options = { float32Outputs: false, copyOutputs: false };
const loaded = model.load({
  affine: path.join(workerData.modulesDir, 'affine.pt'),
  slow: path.join(workerData.modulesDir, 'slow.pt'),
});

parentPort.on('message', async ({ task, input, iterations }) => {
  await loaded;
  if (task === 'affine') {
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await model.run('affine', 'forward', [input], options));
    parentPort.postMessage(results.map((r) => Array.from(r.data)));
  } else {
    parentPort.postMessage('started');
    await model.run('slow', 'forward', [input, iterations], options);
  }
});
