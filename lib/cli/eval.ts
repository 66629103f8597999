// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg eval`: scores a model folder on a benchmark's images and label maps (lib/evaluate.ts), and prints mIoU,
 * fwIoU, mACC, pACC and per-class IoU as a table or, with `--json`, as JSON. With `--results FILE`, each image's
 * confusion counts are appended to FILE as it is scored, so that a rerun skips the images already there and adds
 * their counts.
 * @module
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { evaluate, EvaluationResult, ImageCounts, PairBy, pairFiles } from '../eval/evaluate';
import * as is from '../is';
import { SanModel } from '../segment/model';
import { TEMPLATE_SETS, TemplateSetName } from '../segment/prompts';
import { TorchModelOptions } from '../runtime/torch-model';
import {
  CliError, CliIo, ExitCode, parseCommandArgs, parsePositiveInteger, PROGRAM, required, UsageError,
} from './common';
import { Progress } from './progress';
import { checkTemplates, readClasses } from './segment-args';
import { parseRuntimeArgs, runtimeUsage, RUNTIME_FLAGS } from './runtime-args';

const COMMAND = 'eval';

const FLAGS = {
  model: { type: 'string' },
  images: { type: 'string' },
  labels: { type: 'string' },
  classes: { type: 'string' },
  'classes-file': { type: 'string' },
  ignore: { type: 'string' },
  limit: { type: 'string' },
  'pair-by': { type: 'string' },
  json: { type: 'boolean' },
  results: { type: 'string' },
  templates: { type: 'string' },
  ...RUNTIME_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

const TEMPLATE_NAMES = Object.keys(TEMPLATE_SETS) as TemplateSetName[];
const PAIR_BY: readonly PairBy[] = ['images', 'labels'];
/** What the first line of a `--results` file says it is. */
const RESULTS_FORMAT = 'san-seg eval results';
const RESULTS_VERSION = 1;
/** The largest value a 16-bit label map holds. */
const MAX_LABEL_VALUE = 65535;
/** Longest class name shown in the table; the JSON has them whole. */
const NAME_COLUMN = 40;

export const EVAL_USAGE = `\
Usage: ${PROGRAM} eval --model DIR --images DIR --labels DIR --classes LIST|--classes-file FILE [options]

Scores a model on a benchmark as detectron2's SemSegEvaluator does: each image is segmented at the
model's scale, its prediction made at its own size, and the pixels counted. Images pair with label
maps by file stem (images/x.jpg with labels/x.png, x.tif or x.tiff); a label map must have its
image's size. Prints mIoU, fwIoU, mACC and pACC, then each class's IoU and accuracy.
docs/evaluation.md gives the command for each benchmark.

Options:
  --model DIR          model folder, as written by '${PROGRAM} export' (required)
  --images DIR         folder of images (required)
  --labels DIR         folder of label maps: greyscale PNG or TIFF, 8- or 16-bit, each pixel its
                       class's index (required)
  --classes LIST       the classes in label-value order, separated by ';' (or ',' without one)
  --classes-file FILE  instead of --classes: one class a line, in label-value order; blank lines and
                       lines starting with # are skipped (assets/classes/ has the benchmarks')
  --ignore N           label value left out, 0 to 65535 (default: 255 for 8-bit label maps,
                       65535 for 16-bit ones)
  --pair-by WHICH      images: every image needs a label map (default); labels: every label map
                       needs an image and other images are left out (VOC's JPEGImages)
  --limit N            only the first N pairs, in order of file stem
  --json               print the figures as JSON instead of the table
  --results FILE       append each image's confusion counts to FILE (JSON lines); a rerun with the
                       same FILE skips the images in it and adds their counts
  --templates NAME     prompt templates: ${TEMPLATE_NAMES.join(' or ')} (default: the model's)
${runtimeUsage(23)}
  -h, --help           show this help

Writes the table (or JSON) to stdout, progress to stderr. Exit status: 0 when every image was scored;
1 when an image or label map could not be read, a label value is not a class, an image has no label
map or one of another size, or the model did not load; 2 for bad arguments.
`;

/** Everything `san-seg eval` does, checked. */
export interface EvalJob {
  readonly modelDir: string;
  readonly images: string;
  readonly labels: string;
  readonly classes: readonly string[];
  readonly ignore: number | undefined;
  readonly limit: number | undefined;
  readonly pairBy: PairBy;
  readonly templates: TemplateSetName | undefined;
  readonly json: boolean;
  readonly results: string | undefined;
  readonly load: TorchModelOptions;
}

/** The first line of a `--results` file: what its counts were made with. */
export interface ResultsHeader {
  readonly format: string;
  readonly version: number;
  /** sha256 of the model's san.pt. */
  readonly model: string;
  readonly templates: string | null;
  readonly ignore: number | null;
  readonly classes: readonly string[];
}

/** What `--json` prints. */
export interface EvalSummary {
  readonly model: string;
  readonly images: string;
  readonly labels: string;
  /** Images scored, and labelled pixels counted. */
  readonly count: { images: number; pixels: number };
  readonly mIoU: number | null;
  readonly fwIoU: number | null;
  readonly mACC: number | null;
  readonly pACC: number | null;
  /** mIoU over the classes present in the labels only, as the official SAN logs print it. */
  readonly mIoULabelled: number | null;
  /** Each class's IoU and accuracy; null for a class absent from the labels. */
  readonly perClass: { name: string; iou: number | null; acc: number | null }[];
}

/** Runs `san-seg eval` with the arguments after the command. */
export async function evalCommand(args: string[], io: CliIo): Promise<number> {
  const job = parseEvalArgs(args);
  if (job === 'help') {
    io.stdout.write(EVAL_USAGE);
    return ExitCode.OK;
  }
  // The folders are checked before the model is loaded, so that a wrong path fails at once.
  const pairs = await pairFiles(job.images, job.labels, { pairBy: job.pairBy, limit: job.limit });
  const model = await SanModel.load(job.modelDir, job.load);
  let results: ResultsFile | undefined;
  try {
    results = job.results === undefined ? undefined : await ResultsFile.open(job.results, {
      format: RESULTS_FORMAT,
      version: RESULTS_VERSION,
      model: model.manifest.files.san.sha256,
      templates: job.templates ?? null,
      ignore: job.ignore ?? null,
      classes: job.classes,
    });
    const previous = results?.records ?? [];
    const ids = new Set(pairs.map((pair) => pair.id));
    const done = new Set(previous.map((record) => record.image).filter((id) => ids.has(id))).size;
    if (results && done > 0) {
      io.stderr.write(`${PROGRAM}: ${done} of ${pairs.length} images already scored in ${job.results}; ` +
        `scoring the other ${pairs.length - done}\n`);
    }
    const todo = pairs.length - done;
    const progress = new Progress(io, todo, Progress.wantsBar(io, todo));
    let result: EvaluationResult;
    try {
      result = await evaluate(model, pairs, {
        classes: job.classes,
        ...(job.templates === undefined ? {} : { templates: job.templates }),
        ignore: job.ignore,
        previous,
        onImage: async (record, pair) => {
          await results?.append(record);
          progress.succeeded(path.basename(pair.image));
        },
      });
    } finally {
      progress.finish();
    }
    io.stdout.write(job.json ? `${JSON.stringify(summarize(result, job), null, 2)}\n` : formatTable(result));
    return ExitCode.OK;
  } finally {
    await results?.close();
    await model.dispose();
  }
}

/**
 * Parses and checks the arguments after `eval`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for anything that does not fit.
 */
export function parseEvalArgs(args: string[]): EvalJob | 'help' {
  const { values } = parseCommandArgs(COMMAND, { args, options: FLAGS, allowPositionals: false });
  if (values.help) return 'help';
  const load = parseRuntimeArgs(values, COMMAND);
  const pairBy = values['pair-by'] ?? 'images';
  if (!is.inArray(pairBy, PAIR_BY)) {
    throw new UsageError(`--pair-by must be one of: ${PAIR_BY.join(', ')} (got '${pairBy}')`, COMMAND);
  }
  return {
    modelDir: path.resolve(required(values.model, '--model', COMMAND)),
    images: path.resolve(required(values.images, '--images', COMMAND)),
    labels: path.resolve(required(values.labels, '--labels', COMMAND)),
    classes: readClasses(values.classes, values['classes-file'], COMMAND),
    ignore: values.ignore === undefined ? undefined : parseIgnore(values.ignore),
    limit: values.limit === undefined ? undefined : parsePositiveInteger(values.limit, '--limit', COMMAND),
    pairBy,
    templates: values.templates === undefined ? undefined : checkTemplates(values.templates, COMMAND),
    json: values.json === true,
    results: values.results === undefined ? undefined : path.resolve(required(values.results, '--results', COMMAND)),
    load,
  };
}

/** The metrics table: the four figures, then each class's IoU and accuracy in label-value order. */
export function formatTable(result: EvaluationResult): string {
  const figure = (value: number | null): string => (value === null ? '-' : Number.isNaN(value) ? 'n/a' : value.toFixed(2));
  const width = Math.min(NAME_COLUMN, Math.max(5, ...result.classes.map((name) => name.length)));
  const cut = (name: string): string => (name.length > width ? `${name.slice(0, width - 3)}...` : name);
  const lines = [
    `images  ${result.images} (${result.pixels} labelled pixels)`,
    `mIoU    ${figure(result.mIoU)}`,
    `fwIoU   ${figure(result.fwIoU)}`,
    `mACC    ${figure(result.mACC)}`,
    `pACC    ${figure(result.pACC)}`,
  ];
  if (result.mIoULabelled !== result.mIoU && !Number.isNaN(result.mIoULabelled)) {
    lines.push(`mIoU over the classes in the labels only (as SAN's logs): ${figure(result.mIoULabelled)}`);
  }
  lines.push('', `${'class'.padEnd(width)}  ${'IoU'.padStart(6)}  ${'ACC'.padStart(6)}`);
  result.classes.forEach((name, c) => {
    lines.push(`${cut(name).padEnd(width)}  ${figure(result.iou[c]).padStart(6)}  ${figure(result.acc[c]).padStart(6)}`);
  });
  return `${lines.join('\n')}\n`;
}

/** The `--json` content; NaN (no labelled pixel) becomes null. */
export function summarize(result: EvaluationResult, job: Pick<EvalJob, 'modelDir' | 'images' | 'labels'>): EvalSummary {
  const finite = (value: number | null): number | null => (value === null || Number.isNaN(value) ? null : value);
  return {
    model: job.modelDir,
    images: job.images,
    labels: job.labels,
    count: { images: result.images, pixels: result.pixels },
    mIoU: finite(result.mIoU),
    fwIoU: finite(result.fwIoU),
    mACC: finite(result.mACC),
    pACC: finite(result.pACC),
    mIoULabelled: finite(result.mIoULabelled),
    perClass: result.classes.map((name, c) => ({ name, iou: result.iou[c], acc: result.acc[c] })),
  };
}

/**
 * A `--results` file: a header line, then one `{ image, counts }` line per image scored. A last line cut short
 * (the run was killed while writing it) is dropped when the file is opened.
 */
class ResultsFile {
  readonly records: ImageCounts[];
  readonly #file: string;
  readonly #handle: FileHandle;

  private constructor(file: string, handle: FileHandle, records: ImageCounts[]) {
    this.#file = file;
    this.#handle = handle;
    this.records = records;
  }

  /** Opens `file` for appending, writing `header` into a new one, or reading the records of one that matches. */
  static async open(file: string, header: ResultsHeader): Promise<ResultsFile> {
    let text = '';
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new CliError(`cannot read --results ${file}: ${(error as Error).message}`);
      }
    }
    // Every complete line ends with a newline; what follows the last one is an interrupted write.
    const lines = text.split('\n').slice(0, -1);
    const records = lines.length === 0 ? [] : parseResults(file, lines, header);
    try {
      if (lines.length === 0) {
        await fsp.writeFile(file, `${JSON.stringify(header)}\n`);
      } else if (!text.endsWith('\n')) {
        await fsp.truncate(file, Buffer.byteLength(`${lines.join('\n')}\n`));
      }
      return new ResultsFile(file, await fsp.open(file, 'a'), records);
    } catch (error) {
      throw new CliError(`cannot write --results ${file}: ${(error as Error).message}`);
    }
  }

  async append(record: ImageCounts): Promise<void> {
    try {
      await this.#handle.appendFile(`${JSON.stringify(record)}\n`);
    } catch (error) {
      throw new CliError(`cannot write --results ${this.#file}: ${(error as Error).message}`);
    }
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

/** The records of a results file's lines, after checking that its header is `expected`. */
function parseResults(file: string, lines: string[], expected: ResultsHeader): ImageCounts[] {
  const parse = (line: string, i: number): unknown => {
    try {
      return JSON.parse(line);
    } catch (error) {
      throw new CliError(`--results ${file} line ${i + 1} is not JSON (${(error as Error).message}); ` +
        'remove that line or the file');
    }
  };
  const header = parse(lines[0], 0) as Partial<ResultsHeader>;
  if (!is.plainObject(header) || header.format !== RESULTS_FORMAT || header.version !== RESULTS_VERSION) {
    throw new CliError(`--results ${file} is not a ${PROGRAM} eval results file (version ${RESULTS_VERSION}); ` +
      'name another file');
  }
  const differs = (['model', 'classes', 'ignore', 'templates'] as const)
    .filter((key) => JSON.stringify(header[key]) !== JSON.stringify(expected[key]));
  if (differs.length > 0) {
    throw new CliError(`--results ${file} holds counts made with another ${differs.join(', ')}; ` +
      'name another file, or remove it to start over');
  }
  const n = expected.classes.length;
  return lines.slice(1).map((line, k) => {
    const record = parse(line, k + 1) as ImageCounts;
    const valid = is.plainObject(record) && is.string(record.image) && Array.isArray(record.counts) &&
      record.counts.every((triple: unknown) => Array.isArray(triple) && triple.length === 3 &&
        triple.every(is.integer) && triple[0] >= 0 && triple[0] < n && triple[1] >= 0 && triple[1] < n && triple[2] >= 0);
    if (!valid) {
      throw new CliError(`--results ${file} line ${k + 2} is not a record { image, counts: [[predicted, true, ` +
        `pixels], ...] } over ${n} classes; remove that line or the file`);
    }
    return record;
  });
}

/** `--ignore`: a label value, 0 to 65535 (16-bit label maps). */
function parseIgnore(text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value <= MAX_LABEL_VALUE)) {
    throw new UsageError(`--ignore must be an integer from 0 to ${MAX_LABEL_VALUE} (got '${text}')`, COMMAND);
  }
  return value;
}
