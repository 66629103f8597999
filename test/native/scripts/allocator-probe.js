// SPDX-License-Identifier: Apache-2.0
// Run by allocator.test.ts in its own process (node --expose-gc allocator-probe.js ADDON MODULES_DIR CALLS DEVICE),
// so that RSS and the allocator's counters measure this workload alone. Prints one JSON line.
'use strict';
const path = require('node:path');

const [addon, modulesDir, calls, device] = process.argv.slice(2);
const binding = require(addon);

const image = (side) => ({ type: 'float32', dims: [1, 3, side, side], data: new Float32Array(3 * side * side).fill(0.5) });
const settle = () => {
  global.gc();
  return new Promise((resolve) => setImmediate(resolve)).then(() => global.gc());
};

async function main() {
  const model = new binding.NativeModel({ device, dtype: 'float32', threads: 1, queueLimit: 64 });
  await model.load({ conv: path.join(modulesDir, 'conv.pt') });
  const options = { float32Outputs: false, copyOutputs: false };
  const run = (side) => model.run('conv', 'forward', [image(side)], options);
  const initial = binding.cpuAllocator();

  // Steady state: the same shape again and again (each output is 512 KiB, above the allocator's 64 KiB floor).
  for (let i = 0; i < 50; i++) await run(256);
  await settle();
  const warm = { rss: process.memoryUsage().rss, stats: binding.cpuAllocator() };
  for (let i = 0; i < Number(calls); i++) {
    await run(256);
    if (i % 10 === 9) await settle();  // outputs are freed when V8 collects them
  }
  await settle();
  const steady = { rss: process.memoryUsage().rss, stats: binding.cpuAllocator() };

  // Changing shapes under a small limit: the cache never holds more than the limit.
  binding.setCpuCacheLimit(1 << 20);
  let mostCached = 0;
  for (let side = 200; side < 420; side += 6) {
    await run(side);
    await settle();
    mostCached = Math.max(mostCached, binding.cpuAllocator().cachedBytes);
  }
  const bounded = binding.cpuAllocator();
  binding.setCpuCacheLimit(0);
  const off = binding.cpuAllocator();
  await model.dispose();
  process.stdout.write(`${JSON.stringify({ initial, warm, steady, mostCached, bounded, off })}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
