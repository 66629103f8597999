// SPDX-License-Identifier: Apache-2.0
// `san-seg worker`'s flags: what they become, and the usage errors that stop it before Redis or the model is touched;
// the command in-process with its metrics server, stopped by a Promise rather than a signal (so that nothing signals
// the test runner), and a model that does not load. The command runs as real processes in fleet.test.ts.
import * as path from 'node:path';
import { main } from '../../lib/cli/main';
import { parseWorkerArgs, WORKER_USAGE } from '../../lib/cli/worker';
import { TORCH_MODEL_DEFAULTS } from '../../lib/runtime/torch-model';
import { SAN_MODEL_DEFAULTS } from '../../lib/segment/model';
import { workerCommand } from '../../lib/cli/worker';
import { captureIo } from '../helpers/cli-io';
import { RedisServer, startRedis } from '../helpers/redis';
import { tinyModelDir } from '../native/support';

const BATCHING = SAN_MODEL_DEFAULTS.batching;
const REQUIRED = ['--redis', 'redis://10.0.0.5:6379', '--queue', 'san', '--model', 'models/m'];

test('the required flags and the defaults', () => {
  expect(parseWorkerArgs(REQUIRED)).toEqual({
    modelDir: path.resolve('models/m'),
    queue: 'san',
    load: { batching: { maxBatchSize: BATCHING.maxBatchSize, maxDelayMs: BATCHING.maxDelayMs,
      maxQueue: BATCHING.maxQueue }, device: TORCH_MODEL_DEFAULTS.device },
    worker: { connection: 'redis://10.0.0.5:6379', concurrency: 8 },
    metrics: undefined,
  });
});

test('every option', () => {
  const job = parseWorkerArgs([...REQUIRED, '--concurrency', '300', '--prefix', 'p', '--input-root', 'in',
    '--output-root', 'out', '--text-cache', 'cache.bin', '--max-image-bytes', '1000', '--max-image-pixels', '4096',
    '--max-batch-size', '2', '--max-delay-ms', '0', '--lock-duration-ms', '5000', '--stalled-interval-ms', '1000',
    '--max-stalled-count', '0', '--metrics-port', '0', '--metrics-host', '0.0.0.0', '--threads', '2', '--device', 'cpu',
    '--dtype', 'bfloat16']);
  expect(job).toEqual({
    modelDir: path.resolve('models/m'),
    queue: 'san',
    // The batcher holds every job the worker runs at once.
    load: { batching: { maxBatchSize: 2, maxDelayMs: 0, maxQueue: 300 }, device: 'cpu', dtype: 'bfloat16',
      maxInputPixels: 4096, threads: 2, textCache: { file: path.resolve('cache.bin') } },
    worker: { connection: 'redis://10.0.0.5:6379', concurrency: 300, prefix: 'p', inputRoot: path.resolve('in'),
      outputRoot: path.resolve('out'), maxImageBytes: 1000, lockDurationMs: 5000, stalledIntervalMs: 1000,
      maxStalledCount: 0 },
    metrics: { port: 0, host: '0.0.0.0' },
  });
});

test.each([
  [['--queue', 'san', '--model', 'm'], /--redis is required/],
  [['--redis', 'redis://h:1', '--model', 'm'], /--queue is required/],
  [['--redis', 'localhost:6379', '--queue', 'q', '--model', 'm'], /--redis must be a URL redis:\/\/HOST:PORT/],
  [[...REQUIRED, '--concurrency', '0'], /--concurrency must be a positive integer/],
  [[...REQUIRED, '--metrics-port', '70000'], /--metrics-port must be 0 to 65535/],
  [[...REQUIRED, '--url', 'x'], /unknown option '--url'/],
])('usage error: %j', async (args, message) => {
  const io = captureIo();
  expect(await main(['worker', ...args], io)).toBe(2);
  expect(io.err()).toMatch(message);
  expect(io.err()).toContain("see 'san-seg worker --help'");
});

test('--help, and the command in the top-level help', async () => {
  const io = captureIo();
  expect(await main(['worker', '--help'], io)).toBe(0);
  expect(io.out()).toBe(WORKER_USAGE);
  const top = captureIo();
  await main(['--help'], top);
  expect(top.out()).toMatch(/^ {2}worker {5}take segmentation jobs from a BullMQ queue/m);
});

describe('the command', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  test('takes jobs, serves /metrics, and drains when told to stop: exit 0', async () => {
    const io = captureIo();
    let metrics = '';
    const status = await workerCommand(['--redis', redis.url, '--queue', 'cli', '--model', tinyModelDir, '--device', 'cpu',
      '--threads', '1', '--metrics-port', '0'], io, async () => {
      metrics = await (await fetch(io.out().trim())).text();
      return 'test stop';
    });
    expect(status).toBe(0);
    expect(io.out()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics\n$/);
    expect(metrics).toContain('san_queue_jobs{state="waiting"} 0');
    expect(metrics).toContain('san_worker_active_jobs 0');
    expect(io.err()).toMatch(/taking jobs from queue 'cli' \(tiny on cpu, concurrency 8\)[\s\S]*test stop: taking no new jobs; finishing the 0 being run\n[\s\S]*stopped\n$/);
  });

  test('a model that does not load: exit 1', async () => {
    const io = captureIo();
    expect(await main(['worker', '--redis', redis.url, '--queue', 'cli', '--model', '/no/such/model',
      '--metrics-port', '0'], io)).toBe(1);
    expect(io.err()).toMatch(/^san-seg: .*\/no\/such\/model/);
  });
});
