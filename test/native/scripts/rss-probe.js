// SPDX-License-Identifier: Apache-2.0
// Run by memory.test.ts in its own process (node --expose-gc rss-probe.js ADDON MODULES_DIR CALLS DEVICE), so that RSS
// measures this workload alone. Prints one JSON line: RSS after warm-up and after CALLS more calls, in bytes.
'use strict';
const path = require('node:path');

const [addon, modulesDir, calls, device] = process.argv.slice(2);
const { NativeModel } = require(addon);

async function main() {
  const model = new NativeModel({ device, dtype: 'float32', threads: 1, queueLimit: 64 });
  await model.load({ conv: path.join(modulesDir, 'conv.pt'), ops: path.join(modulesDir, 'ops.pt') });
  const options = { float32Outputs: false, copyOutputs: false };
  // 1x3x64x64 in, 1x2x64x64 out: 48 KiB and 32 KiB a call, plus the outputs of ops.forward (nested, views).
  const image = { type: 'float32', dims: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64).fill(0.5) };
  const small = { type: 'float32', dims: [8, 8], data: new Float32Array(64).fill(1) };
  const round = async () => {
    await model.run('conv', 'forward', [image], options);
    await model.run('ops', 'forward', [small], options);
    await model.run('ops', 'forward', [small], { float32Outputs: false, copyOutputs: true });
    await model.run('ops', 'scale', [small, 2, 1, true, null], options).catch(() => undefined);
    await model.run('ops', 'fail', [small], options).catch(() => undefined);
  };
  const settle = () => {
    global.gc();
    return new Promise((resolve) => setImmediate(resolve)).then(() => global.gc());
  };
  for (let i = 0; i < 100; i++) await round();
  await settle();
  const warm = process.memoryUsage().rss;
  for (let i = 0; i < Number(calls); i++) await round();
  await settle();
  const after = process.memoryUsage().rss;
  await model.dispose();
  process.stdout.write(`${JSON.stringify({ warm, after })}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
