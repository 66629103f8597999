// SPDX-License-Identifier: Apache-2.0
// SegmentQueue and SegmentWorker in one process against a real redis-server: what a job carries and gives back,
// the input and output roots, retries of a transient failure, an id added twice, the metrics; and the checks made
// before anything reaches Redis.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import sharp from 'sharp';
import { ErrorCode } from '../../lib/errors';
import { errorFromReason, failureReason, isBadInput } from '../../lib/queue/failures';
import { WorkerMetrics } from '../../lib/queue/metrics';
import { SegmentQueue } from '../../lib/queue/queue';
import { SegmentWorker } from '../../lib/queue/worker';
import { SanModel, SanModelOptions } from '../../lib/segment/model';
import * as is from '../../lib/is';
import { startRedis, RedisServer } from '../helpers/redis';
import { useTempDir } from '../helpers/temp-dir';
import { tinyModelDir } from '../native/support';
import { CLASSES, loadReferenceModel, noisePng, Reference, references, SEGMENT } from './support';

let redis: RedisServer;
let model: SanModel;
let images: Buffer[];
let expected: Reference[];
const tempDir = useTempDir('san-jobs-');
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  model = await loadReferenceModel();
  images = await Promise.all([noisePng(32, 48, 100), noisePng(40, 40, 101)]);
  expected = await references(model, images);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await redis?.stop();
  await model?.dispose();
});

function producer(name: string, options: Partial<ConstructorParameters<typeof SegmentQueue>[1]> = {}): SegmentQueue {
  const queue = new SegmentQueue(name, { connection: redis.url, ...options });
  closers.push(() => queue.close());
  return queue;
}

async function worker(name: string, options: Partial<Parameters<typeof SegmentWorker.start>[2]> = {},
  on: SanModel = model): Promise<SegmentWorker> {
  const started = await SegmentWorker.start(on, name, { connection: redis.url, ...options });
  closers.push(() => started.close());
  return started;
}

describe('a job and its result', () => {
  test('PNG labels in Redis, with shares, timings and progress', async () => {
    const queue = producer('png');
    await worker('png');
    const job = await queue.add(images[0], { ...SEGMENT, classes: [...CLASSES] });
    const progress: unknown[] = [];
    job.on('progress', (data) => progress.push(data));
    const completed = new Promise((resolve) => job.once('completed', resolve));
    const result = await job.result();
    expect(await completed).toEqual(result);
    expect(result).toMatchObject({ jobId: job.id, size: [32, 48], classes: CLASSES, shares: expected[0].shares,
      attempt: 1 });
    expect(result.labels).toEqual({ format: 'png', data: expected[0].png.toString('base64') });
    const { timings } = result;
    expect(timings.totalMs).toBeGreaterThanOrEqual(timings.segmentMs);
    expect(timings.queuedMs).toBeGreaterThanOrEqual(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(progress).toEqual([{ stage: 'segmented', segmentMs: timings.segmentMs }]);
  });

  test('store: file writes the label map under the output root, named by job id, as PNG or RLE', async () => {
    const outputRoot = path.join(tempDir(), 'out');
    fs.mkdirSync(outputRoot);
    const queue = producer('files');
    await worker('files', { outputRoot });
    const first = await (await queue.add(images[1], { ...SEGMENT, classes: [...CLASSES], store: 'file',
      jobId: 'cam-1' })).result();
    expect(first.labels).toEqual({ format: 'png', file: path.join('files', 'cam-1.labels.png') });
    const file = path.join(outputRoot, 'files', 'cam-1.labels.png');
    expect(fs.readFileSync(file)).toEqual(expected[1].png);
    expect(await sharp(file).metadata()).toMatchObject({ width: 40, height: 40, depth: 'ushort' });
    const second = await (await queue.add(images[1], { ...SEGMENT, classes: [...CLASSES], store: 'file', format: 'rle',
      jobId: 'cam-2' })).result();
    expect(JSON.parse(fs.readFileSync(path.join(outputRoot, (second.labels as { file: string }).file), 'utf8')))
      .toEqual(expected[1].rle);
    expect(fs.readdirSync(path.join(outputRoot, 'files')).sort()).toEqual(['cam-1.labels.png', 'cam-2.labels.rle.json']);
  });

  test('an id added twice is one job: the second add returns it, and it runs once', async () => {
    const queue = producer('idempotent');
    const ran: string[] = [];
    const consumer = await worker('idempotent');
    consumer.on('completed', (id: string) => ran.push(id));
    const options = { ...SEGMENT, classes: [...CLASSES], format: 'rle' as const, jobId: 'same' };
    const first = await (await queue.add(images[0], options)).result();
    const again = await queue.add(images[1], options);
    expect(again.id).toBe('same');
    expect(await again.result()).toEqual(first);
    expect(ran).toEqual(['same']);
    expect((await (await queue.job('same'))!.result()).labels).toEqual({ format: 'rle', data: expected[0].rle });
    expect(await queue.job('missing')).toBeUndefined();
  });
});

test('waiting jobs are the Redis list bull:<queue>:wait, which KEDA counts (deploy/worker-autoscaling.yaml)', async () => {
  const queue = producer('unattended');
  const [first] = await queue.addBulk([0, 1, 2].map(() => ({ image: images[0], options: { classes: ['sky'] } })));
  const client = new Redis(redis.url);
  closers.push(() => client.quit());
  expect(await client.llen('bull:unattended:wait')).toBe(3);
  expect(await queue.counts()).toMatchObject({ waiting: 3 });
  // Nobody takes them: a result awaited with a time limit gives up with ERR_SAN_TIMEOUT.
  await expect(first.result(100)).rejects.toMatchObject({ name: 'SanError', code: ErrorCode.TIMEOUT });
});

describe('the input root', () => {
  test('a path under it is read; absolute paths, URLs, ../ and links out of it fail with ERR_SAN_INVALID_ARG', async () => {
    const inputRoot = path.join(tempDir(), 'in');
    fs.mkdirSync(path.join(inputRoot, 'cam'), { recursive: true });
    fs.writeFileSync(path.join(inputRoot, 'cam', 'a.png'), images[0]);
    fs.writeFileSync(path.join(tempDir(), 'outside.png'), images[1]);
    fs.symlinkSync(path.join(tempDir(), 'outside.png'), path.join(inputRoot, 'link.png'));
    const queue = producer('paths');
    await worker('paths', { inputRoot });
    const options = { ...SEGMENT, classes: [...CLASSES], format: 'rle' as const };
    expect((await (await queue.add({ path: 'cam/a.png' }, options)).result()).labels)
      .toEqual({ format: 'rle', data: expected[0].rle });
    const outcomes = await Promise.all(['/etc/passwd', 'file:///etc/passwd', 'http://example.com/a.png', '../outside.png',
      'link.png', 'cam/missing.png'].map(async (relative) => (await queue.add({ path: relative }, options)).result()
      .then(() => 'completed', (error: Error & { code?: string }) => error.code)));
    expect(outcomes).toEqual([ErrorCode.INVALID_ARG, ErrorCode.INVALID_ARG, ErrorCode.INVALID_ARG,
      ErrorCode.INVALID_ARG, ErrorCode.INVALID_ARG, ErrorCode.IMAGE]);
  });
});

describe('failures', () => {
  test('a transient failure is retried with back-off until the job completes', async () => {
    // A batcher that runs one request, holds one more and refuses the next (ERR_SAN_OVERLOADED): 4 jobs at once.
    const cramped = await loadTiny({ batching: { maxBatchSize: 1, maxDelayMs: 0, maxQueue: 1 } });
    const queue = producer('transient', { backoffMs: 20, attempts: 20 });
    const consumer = await worker('transient', { concurrency: 4 }, cramped);
    const retried: string[] = [];
    consumer.on('failed', (id: string, reason: string, willRetry: boolean) => {
      if (willRetry && reason.startsWith(ErrorCode.OVERLOADED)) retried.push(id);
    });
    const jobs = await queue.addBulk(Array.from({ length: 4 }, (_, i) => ({ image: images[i % 2],
      options: { ...SEGMENT, classes: [...CLASSES], format: 'rle' as const } })));
    const results = await Promise.all(jobs.map((job) => job.result()));
    results.forEach((result, i) => expect(result.labels).toEqual({ format: 'rle', data: expected[i % 2].rle }));
    expect(retried.length).toBeGreaterThan(0);
    expect(results.some((result) => result.attempt > 1)).toBe(true);
  });

  test('bad input is told from the rest by its error', () => {
    expect(isBadInput(is.invalidParameterError('x', 'y', 1))).toBe(true);
    for (const code of [ErrorCode.IMAGE, ErrorCode.TOO_LARGE, ErrorCode.SHAPE, ErrorCode.DTYPE]) {
      expect(isBadInput(Object.assign(new Error('m'), { code }))).toBe(true);
    }
    for (const code of [ErrorCode.OVERLOADED, ErrorCode.RUNTIME, ErrorCode.OUT_OF_MEMORY, ErrorCode.TIMEOUT, undefined]) {
      expect(isBadInput(Object.assign(new Error('m'), { code }))).toBe(false);
    }
    const reason = failureReason(Object.assign(new Error('Could not read\nsecond line'), { code: ErrorCode.IMAGE }));
    expect(reason).toBe('ERR_SAN_IMAGE: Could not read');
    expect(errorFromReason(reason)).toMatchObject({ name: 'SanError', code: ErrorCode.IMAGE, message: 'Could not read' });
    expect(errorFromReason('job stalled more than allowable limit')).toMatchObject({ code: ErrorCode.RUNTIME });
  });
});

describe('checks before Redis', () => {
  test('unknown options, bad values and oversized images are refused by add()', async () => {
    const queue = producer('checks', { maxImageBytes: 1000 });
    const classes = ['sky'];
    await expect(queue.add(images[0], { classes, colour: 'red' } as never)).rejects.toMatchObject({
      name: 'RangeError', code: ErrorCode.INVALID_ARG, message: expect.stringContaining('options.colour') });
    await expect(queue.add(images[0], { classes, format: 'jpeg' as never })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARG, message: expect.stringContaining('options.format') });
    await expect(queue.add(images[0], { classes, jobId: '../x' })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARG, message: expect.stringContaining('options.jobId') });
    await expect(queue.add(Buffer.alloc(1001), { classes })).rejects.toMatchObject({
      name: 'SanError', code: ErrorCode.TOO_LARGE });
    await expect(queue.add('photo.jpg' as never, { classes })).rejects.toMatchObject({
      name: 'TypeError', code: ErrorCode.INVALID_ARG });
    await expect(queue.addBulk([{ image: Buffer.alloc(10), options: { classes } },
      { image: Buffer.alloc(10), options: { classes: 'sky' as never } }])).rejects.toMatchObject({
      message: expect.stringContaining('items[1].options.classes') });
    expect(await queue.counts()).toMatchObject({ waiting: 0, completed: 0, failed: 0 });
  });

  test('a connection that is not a redis:// URL, and unknown options, are refused', () => {
    expect(() => new SegmentQueue('q', { connection: 'http://localhost:6379' })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARG }));
    expect(() => new SegmentQueue('q', { connection: redis.url, attempt: 3 } as never)).toThrow(/options\.attempt/);
    expect(() => new SegmentQueue('a:b', { connection: redis.url })).toThrow(/queue name/);
  });

  test('SegmentWorker.start refuses a bad option and an input root that is not a folder', async () => {
    await expect(SegmentWorker.start(model, 'w', { connection: redis.url, concurrency: 0 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARG, message: expect.stringContaining('options.concurrency') });
    await expect(SegmentWorker.start(model, 'w', { connection: redis.url, inputRoot: '/no/such/folder' }))
      .rejects.toMatchObject({ code: ErrorCode.INVALID_ARG, message: expect.stringContaining('options.inputRoot') });
  });
});

test('/metrics: queue depth by state, active jobs, jobs by outcome and batch sizes', async () => {
  const metrics = new WorkerMetrics('metered', { connection: redis.url });
  closers.push(() => metrics.close());
  const metered = await loadTiny({ onBatch: ({ size }) => metrics.recordBatch(size) });
  const queue = producer('metered');
  metrics.watch(await worker('metered', {}, metered));
  const url = await metrics.serve(0, '127.0.0.1');
  const jobs = await queue.addBulk([images[0], images[1], Buffer.from('bad')].map((image) => ({ image,
    options: { ...SEGMENT, classes: [...CLASSES] } })));
  const failed = new Promise<Error & { code?: string }>((resolve) => jobs[2].once('failed', resolve));
  await Promise.allSettled(jobs.map((job) => job.result()));
  expect(await failed).toMatchObject({ name: 'SanError', code: ErrorCode.IMAGE });
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const body = await response.text();
  expect(body).toContain('san_queue_jobs{state="completed"} 2');
  expect(body).toContain('san_queue_jobs{state="failed"} 1');
  expect(body).toContain('san_queue_jobs{state="waiting"} 0');
  expect(body).toContain('san_worker_active_jobs 0');
  expect(body).toContain('san_worker_jobs_total{outcome="completed"} 2');
  expect(body).toContain('san_worker_jobs_total{outcome="failed"} 1');
  expect(body).toMatch(/san_batch_size_count [12]\n/);
  expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
});

/** Another tiny model on the CPU, disposed after the tests (and after the workers that use it). */
async function loadTiny(options: SanModelOptions): Promise<SanModel> {
  const loaded = await SanModel.load(tinyModelDir, { device: 'cpu', threads: 1, verify: false, ...options });
  closers.push(() => loaded.dispose());
  return loaded;
}
