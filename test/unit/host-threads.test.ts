// SPDX-License-Identifier: Apache-2.0
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { sizeThreadPool, threadPoolSize } from '../../lib/cli/host-threads';

test('one pool thread per core, at least libuv\'s 4 and at most its 1024', () => {
  expect([1, 2, 4, 16, 96, 4096].map(threadPoolSize)).toEqual([4, 4, 4, 16, 96, 1024]);
});

test('a UV_THREADPOOL_SIZE the user set is kept', () => {
  const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '7' };
  expect(sizeThreadPool(env, 16)).toBe('7');
  expect(env.UV_THREADPOOL_SIZE).toBe('7');
  const unset: NodeJS.ProcessEnv = {};
  expect(sizeThreadPool(unset, 16)).toBe('16');
  expect(unset.UV_THREADPOOL_SIZE).toBe('16');
});

test('the CLI entry point sets it before anything else runs', () => {
  const main = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const script = `require(${JSON.stringify(main)}); process.stdout.write(process.env.UV_THREADPOOL_SIZE)`;
  const run = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  expect(run.stdout).toBe(String(threadPoolSize(os.availableParallelism())));
});
