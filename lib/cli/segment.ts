// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg segment`: loads the model once, segments the images a few at a time, and writes three files for each.
 * A bad image is reported on one line and skipped; the exit status then says that something failed.
 * @module
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SanModel } from '../segment/model';
import { SegmentResult } from '../segment/result';
import { CliError, CliIo, ExitCode, firstLine, isArgumentError, isExpectedError, PROGRAM } from './common';
import { Progress } from './progress';
import { parseSegmentArgs, SEGMENT_USAGE, SegmentJob } from './segment-args';

/** Images in flight at once: the model runs them one at a time anyway; two keep decoding and encoding overlapped. */
const CONCURRENCY = 2;

/** The files written for one image. */
export interface SegmentOutputs {
  readonly overlay: string;
  readonly labels: string;
  readonly json: string;
}

/** What `<stem>.json` holds. */
export interface SegmentSummary {
  /** The image's absolute path. */
  readonly image: string;
  /** The model folder's absolute path. */
  readonly model: string;
  readonly classes: readonly string[];
  /** [height, width] of the label map. */
  readonly size: [number, number];
  /** Each class's fraction of the pixels, 0 to 1; they sum to 1. */
  readonly shares: Record<string, number>;
}

/** Runs `san-seg segment` with the arguments after the command. */
export async function segmentCommand(args: string[], io: CliIo): Promise<number> {
  const job = parseSegmentArgs(args);
  if (job === 'help') {
    io.stdout.write(SEGMENT_USAGE);
    return ExitCode.OK;
  }
  await makeOutputDir(job.outDir);
  const model = await SanModel.load(job.modelDir, job.load);
  try {
    const failed = await segmentAll(model, job, io);
    return failed === 0 ? ExitCode.OK : ExitCode.FAILURE;
  } finally {
    await model.dispose();
  }
}

/**
 * A file stem for each image, in order: its own name without the extension, or with `-2`, `-3`, ... when an earlier
 * image already took that stem (compared without case, for case-insensitive file systems).
 */
export function outputStems(images: readonly string[]): string[] {
  const taken = new Set<string>();
  return images.map((image) => {
    const stem = path.parse(image).name || 'image';
    let candidate = stem;
    for (let n = 2; taken.has(candidate.toLowerCase()); n += 1) candidate = `${stem}-${n}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}

async function makeOutputDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new CliError(`cannot create the output folder ${dir}: ${(error as Error).message}`);
  }
}

/** Segments every image; returns how many failed. A rejected option (the same for every image) stops the batch. */
async function segmentAll(model: SanModel, job: SegmentJob, io: CliIo): Promise<number> {
  const stems = outputStems(job.images);
  const progress = new Progress(io, job.images.length, Progress.wantsBar(io, job.images.length));
  let failed = 0;
  try {
    await forEachBounded(job.images, CONCURRENCY, async (image, i) => {
      try {
        const outputs = await segmentOne(model, job, image, stems[i]);
        progress.succeeded(image);
        progress.print(Object.values(outputs));
      } catch (error) {
        if (isArgumentError(error) || !isExpectedError(error)) throw error;
        failed += 1;
        progress.failed(image, `${PROGRAM}: ${image}: ${firstLine(error)}`);
      }
    });
  } finally {
    progress.finish();
  }
  const total = job.images.length;
  io.stderr.write(`${PROGRAM}: segmented ${total - failed} of ${total} image${total === 1 ? '' : 's'} into ` +
    `${job.outDir}${failed > 0 ? ` (${failed} failed)` : ''}\n`);
  return failed;
}

async function segmentOne(model: SanModel, job: SegmentJob, image: string, stem: string): Promise<SegmentOutputs> {
  const result = await model.segment(image, job.segment);
  const base = path.join(job.outDir, stem);
  const outputs: SegmentOutputs = {
    overlay: `${base}.overlay.png`,
    labels: `${base}.labels.png`,
    json: `${base}.json`,
  };
  const [overlay, labels] = await Promise.all([result.toPng(), result.labelsPng()]);
  const summary = summarize(result, image, job.modelDir);
  await Promise.all([
    fsp.writeFile(outputs.overlay, overlay),
    fsp.writeFile(outputs.labels, labels),
    fsp.writeFile(outputs.json, `${JSON.stringify(summary, null, 2)}\n`),
  ]);
  return outputs;
}

function summarize(result: SegmentResult, image: string, modelDir: string): SegmentSummary {
  return {
    image: path.resolve(image),
    model: modelDir,
    classes: result.classes,
    size: [result.height, result.width],
    shares: Object.fromEntries(result.shares().map(({ name, share }) => [name, share])),
  };
}

/**
 * Calls `fn` on every item, at most `limit` at a time, in order of start. Once a call throws no new one starts;
 * the calls under way settle, then the first error is thrown.
 */
async function forEachBounded<T>(items: readonly T[], limit: number,
  fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && next < items.length) {
      const index = next++;
      try {
        await fn(items[index], index);
      } catch (error) {
        stopped = true;
        throw error;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
}
