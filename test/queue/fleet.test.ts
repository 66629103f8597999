// SPDX-License-Identifier: Apache-2.0
// The worker fleet as it runs: real redis-server, real `san-seg worker` processes on the tiny model. A worker killed
// mid-run, one stopped with SIGTERM, bad jobs among good ones, Redis restarted under load: every job ends as it
// should, and every result equals a single-process segment() of the same image. The waits are on conditions (job
// counts, exits), not on how fast the machine is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import { ErrorCode } from '../../lib/errors';
import { AddOptions, SegmentJob, SegmentQueue } from '../../lib/queue/queue';
import { SegmentJobResult } from '../../lib/queue/job-data';
import { SanModel } from '../../lib/segment/model';
import { TextEmbeddingCache } from '../../lib/segment/text-cache';
import { startRedis, RedisServer } from '../helpers/redis';
import { useTempDir } from '../helpers/temp-dir';
import {
  CLASSES, loadReferenceModel, noisePng, Reference, references, SEGMENT, startWorker, waitFor, WorkerProcess,
} from './support';

/** Distinct images the jobs cycle through: 48 × 32, one padded shape, so that jobs batch together. */
const IMAGE_COUNT = 24;

let redis: RedisServer;
let model: SanModel;
let images: Buffer[];
let expected: Reference[];
const workers: WorkerProcess[] = [];
const queues: SegmentQueue[] = [];
const tempDir = useTempDir('san-fleet-');

beforeAll(async () => {
  redis = await startRedis();
  model = await loadReferenceModel();
  images = await Promise.all(Array.from({ length: IMAGE_COUNT }, (_, i) => noisePng(32, 48, i)));
  expected = await references(model, images);
});

afterAll(async () => {
  for (const { child } of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(workers.map((worker) => worker.exited));
  await Promise.all(queues.map((queue) => queue.close()));
  await redis?.stop();
  await model?.dispose();
});

async function fleet(queue: string, count: number, extra: string[] = []): Promise<WorkerProcess[]> {
  const started = await Promise.all(Array.from({ length: count }, () => startWorker(redis.url, queue, extra)));
  workers.push(...started);
  return started;
}

function producer(name: string): SegmentQueue {
  const queue = new SegmentQueue(name, { connection: redis.url, backoffMs: 200 });
  queues.push(queue);
  return queue;
}

/** Adds `count` jobs cycling through the images, in bulks of 250; job i's image is images[i % IMAGE_COUNT]. */
async function addJobs(queue: SegmentQueue, count: number, options: (i: number) => Partial<AddOptions> = () => ({}))
  : Promise<SegmentJob[]> {
  const jobs: SegmentJob[] = [];
  for (let start = 0; start < count; start += 250) {
    const items = Array.from({ length: Math.min(250, count - start) }, (_, k) => {
      const i = start + k;
      return { image: images[i % IMAGE_COUNT], options: { ...SEGMENT, classes: [...CLASSES], format: 'rle' as const,
        jobId: `job-${i}`, ...options(i) } };
    });
    jobs.push(...await queue.addBulk(items));
  }
  return jobs;
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  return [items.filter(test), items.filter((item) => !test(item))];
}

/** Checks that job i's result is image i's reference. */
function expectReference(result: SegmentJobResult, i: number, outputRoot?: string): void {
  const reference = expected[i % IMAGE_COUNT];
  expect(result.jobId).toBe(`job-${i}`);
  expect(result.size).toEqual([32, 48]);
  expect(result.shares).toEqual(reference.shares);
  if ('file' in result.labels) {
    const written = fs.readFileSync(path.join(outputRoot!, result.labels.file), 'utf8');
    expect(JSON.parse(written)).toEqual(reference.rle);
  } else {
    expect(result.labels).toEqual({ format: 'rle', data: reference.rle });
  }
}

test('2,000 jobs through 3 workers, one SIGKILLed mid-run: every job completes with its reference result', async () => {
  const outputRoot = path.join(tempDir(), 'out');
  fs.mkdirSync(outputRoot);
  const queue = producer('fleet');
  const [victim] = await fleet('fleet', 3, ['--output-root', outputRoot]);
  // Every 10th job writes its label map to a file: a job run twice must leave one whole file.
  const jobs = await addJobs(queue, 2000, (i) => (i % 10 === 0 ? { store: 'file' } : {}));
  await waitFor(async () => (await queue.counts()).completed >= 400, 120_000);
  victim.child.kill('SIGKILL');
  expect(await victim.exited).toBe('SIGKILL');

  const results = await Promise.all(jobs.map((job) => job.result()));
  results.forEach((result, i) => expectReference(result, i, outputRoot));
  expect(await queue.counts()).toMatchObject({ completed: 2000, failed: 0, waiting: 0, active: 0, delayed: 0 });
  // The jobs the killed worker held came back through BullMQ's stalled-job check and ran again elsewhere.
  const redelivered = results.filter((result) => result.attempt > 1);
  expect(redelivered.length).toBeGreaterThan(0);
  expect(new Set(results.map((result) => result.worker)).size).toBe(3);
  // One whole file per job; a worker killed while writing leaves at most its own temporary file, never a torn one.
  const [written, temporary] = partition(fs.readdirSync(path.join(outputRoot, 'fleet')), (name) => !name.endsWith('.tmp'));
  expect(written.sort()).toEqual(Array.from({ length: 200 }, (_, k) => `job-${k * 10}.labels.rle.json`).sort());
  for (const name of temporary) expect(name).toMatch(new RegExp(`^job-\\d+\\.labels\\.rle\\.json\\.${victim.child.pid}\\.`));
}, 300_000);

test('a worker stopped with SIGTERM finishes its jobs and exits 0: nothing is lost or run twice', async () => {
  const queue = producer('drain');
  // The stopped worker keeps its text embeddings in a file of its own, saved as it stops.
  const textCache = path.join(tempDir(), 'drain-text-cache.bin');
  const [stopped] = await fleet('drain', 1, ['--text-cache', textCache]);
  await fleet('drain', 1);
  const jobs = await addJobs(queue, 200);
  await waitFor(async () => (await queue.counts()).completed >= 50, 120_000);
  stopped.child.kill('SIGTERM');
  expect(await stopped.exited).toBe(0);
  expect(stopped.log()).toMatch(/SIGTERM: taking no new jobs; finishing the \d+ being run[\s\S]*stopped/);
  expect(new TextEmbeddingCache({ maxBytes: 2 ** 20, file: textCache }).stats().entries).toBe(CLASSES.length);

  const results = await Promise.all(jobs.map((job) => job.result()));
  results.forEach((result, i) => expectReference(result, i));
  expect(await queue.counts()).toMatchObject({ completed: 200, failed: 0 });
  expect(results.filter((result) => result.attempt > 1)).toEqual([]);
  expect(results.some((result) => result.worker.endsWith(`:${stopped.child.pid}`))).toBe(true);
}, 300_000);

test('bad jobs fail at once with their ERR_SAN_ code; the worker goes on with the good ones', async () => {
  const queue = producer('bad');
  const [worker] = await fleet('bad', 1, ['--max-image-bytes', '100000']);
  const good = await addJobs(queue, 40);
  const bad = await Promise.all([
    queue.add(Buffer.from('not an image'), { classes: ['sky'], jobId: 'corrupt' }),
    queue.add(images[0], { classes: ['sky'], templates: 'no-such-set' as 'vild', jobId: 'templates' }),
    queue.add({ path: 'photos/a.jpg' }, { classes: ['sky'], jobId: 'no-input-root' }),
    queue.add(Buffer.alloc(200_000, 1), { classes: ['sky'], jobId: 'too-large' }),
  ]);
  // A payload from another producer, not made by SegmentQueue.
  const raw = new Queue('bad', { connection: { url: redis.url } });
  await raw.add('segment', { hello: 'world' }, { jobId: 'foreign', attempts: 3 });
  await raw.close();
  const foreign = (await queue.job('foreign'))!;

  const codes = await Promise.all([...bad, foreign].map((job) => job.result().then(
    () => 'completed', (error: Error & { code?: string }) => error.code)));
  expect(codes).toEqual([ErrorCode.IMAGE, ErrorCode.INVALID_ARG, ErrorCode.INVALID_ARG, ErrorCode.TOO_LARGE,
    ErrorCode.INVALID_ARG]);
  // The worker logs each one; its stderr may arrive after Redis told the producer.
  const logged = ['corrupt', 'templates', 'no-input-root', 'too-large', 'foreign']
    .map((id) => new RegExp(`job ${id} failed: ERR_SAN_[A-Z_]+: `));
  await waitFor(() => logged.every((line) => line.test(worker.log())), 30_000);
  expect(worker.log()).not.toMatch(/will be retried/);
  (await Promise.all(good.map((job) => job.result()))).forEach((result, i) => expectReference(result, i));
  // Still taking jobs after them all.
  expect(worker.child.exitCode).toBeNull();
  const [after] = await addJobs(queue, 1, () => ({ jobId: 'after' }));
  expect((await after.result()).labels).toEqual({ format: 'rle', data: expected[0].rle });
  expect(await queue.counts()).toMatchObject({ completed: 41, failed: 5 });
}, 300_000);

test('Redis restarted mid-run: the workers reconnect and every job completes', async () => {
  const queue = producer('restart');
  await fleet('restart', 2);
  const jobs = await addJobs(queue, 300);
  await waitFor(async () => (await queue.counts()).completed >= 80, 120_000);
  await redis.restart(1000);
  const results = await Promise.all(jobs.map((job) => job.result()));
  results.forEach((result, i) => expectReference(result, i));
  expect(await queue.counts()).toMatchObject({ completed: 300, failed: 0 });
}, 300_000);
