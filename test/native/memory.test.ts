// SPDX-License-Identifier: Apache-2.0
// Repeated calls must not leak: output buffers give LibTorch's memory back when collected, failed calls free their
// inputs' pins. Measured in a child process (with --expose-gc), so that jest's own memory does not blur it.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { testDevice } from '../helpers/device';
import { addonPath } from '../helpers/paths';
import { nativeModelsDir } from './support';

const ROUNDS = 500;
// Each round allocates about 130 KiB of outputs: a leak of the outputs alone would be ~64 MiB over 500 rounds.
const ALLOWED_GROWTH = 16 * 1024 * 1024;

test(`${ROUNDS} rounds of calls (5 calls each: outputs shared, copied, failed) leave RSS flat`, () => {
  const probe = path.join(__dirname, 'scripts', 'rss-probe.js');
  const args = ['--expose-gc', probe, addonPath, nativeModelsDir, String(ROUNDS), testDevice];
  const output = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
  });
  const { warm, after } = JSON.parse(output) as { warm: number; after: number };
  expect(after - warm).toBeLessThan(ALLOWED_GROWTH);
});
