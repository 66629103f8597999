// SPDX-License-Identifier: Apache-2.0
// What the queue tests share: small seeded PNG images, the single-process reference they are compared with, and
// `san-seg worker` run as a real process on the tiny model. The fleet runs on the CPU whatever SAN_TEST_DEVICE says:
// these tests are about the queue, and their results are compared bit for bit with a CPU segment().
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { SanModel } from '../../lib/segment/model';
import { encodeRle } from '../../lib/serve/labels';
import { repoRoot } from '../helpers/paths';
import { tinyModelDir } from '../native/support';

export const CLASSES = ['sky', 'sea', 'sand', 'boat'];
/** Every job's segment options: the image as it is, so that small images stay small. */
export const SEGMENT = { classes: CLASSES, resize: false } as const;
const CLI = path.join(repoRoot, 'dist', 'cli', 'main.js');

export { noisePng } from '../../lib/serve/noise-image';

/** What a job on an image must give: the run-length labels and shares of a single-process `segment()`. */
export interface Reference {
  rle: number[];
  shares: Record<string, number>;
  png: Buffer;
}

/** The tiny model on the CPU, one thread, as the workers run it. */
export function loadReferenceModel(): Promise<SanModel> {
  return SanModel.load(tinyModelDir, { device: 'cpu', threads: 1, verify: false });
}

/** The reference of each image, one `segment()` at a time. */
export async function references(model: SanModel, images: Buffer[]): Promise<Reference[]> {
  const out: Reference[] = [];
  for (const image of images) {
    const result = await model.segment(image, { ...SEGMENT, classes: [...CLASSES] });
    out.push({
      rle: encodeRle(result.labels.data),
      shares: Object.fromEntries(result.shares().map(({ name, share }) => [name, share])),
      png: await result.labelsPng(),
    });
  }
  return out;
}

/** A `san-seg worker` process, with what it wrote so far. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly log: () => string;
  /** Resolves with the exit code (or the signal's name) once it has exited. */
  readonly exited: Promise<number | string>;
}

/**
 * Starts `san-seg worker` on the tiny model and resolves once it takes jobs. Locks are short (5 s) so that the jobs
 * of a killed worker come back within seconds.
 */
export async function startWorker(redisUrl: string, queue: string, extra: string[] = []): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', redisUrl, '--queue', queue, '--model', tinyModelDir,
    '--device', 'cpu', '--threads', '1', '--concurrency', '8', '--lock-duration-ms', '5000',
    '--stalled-interval-ms', '1000', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { log += chunk.toString(); });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const ready = await Promise.race([
    waitFor(() => log.includes('taking jobs from queue'), 60_000).then(() => true),
    exited.then(() => false),
  ]);
  if (!ready) throw new Error(`san-seg worker exited before taking jobs:\n${log}`);
  return { child, log: () => log, exited };
}

/** Resolves once `condition` holds (checked every 20 ms); rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
