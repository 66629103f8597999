// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg segment`: its flags and help, and the checks that turn argv into a {@link SegmentJob}. Everything that
 * can be checked without the model is checked here, so that a bad flag fails before a model is loaded.
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAX_CLASS_LENGTH, MAX_CLASSES, SegmentOptions } from '../segment/model';
import { TEMPLATE_SETS, TemplateSetName } from '../segment/prompts';
import { TorchModelOptions } from '../runtime/torch-model';
import { parseCommandArgs, PROGRAM, required, UsageError } from './common';
import { parseRuntimeArgs, runtimeUsage, RUNTIME_FLAGS } from './runtime-args';

const COMMAND = 'segment';

const FLAGS = {
  model: { type: 'string' },
  classes: { type: 'string' },
  'classes-file': { type: 'string' },
  out: { type: 'string', short: 'o' },
  templates: { type: 'string' },
  'output-size': { type: 'string' },
  'no-resize': { type: 'boolean' },
  ...RUNTIME_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

const TEMPLATE_NAMES = Object.keys(TEMPLATE_SETS) as TemplateSetName[];
const SIZE_PATTERN = /^(\d+)[x×X](\d+)$/;

export const SEGMENT_USAGE = `\
Usage: ${PROGRAM} segment <image>... --model DIR --classes LIST|--classes-file FILE -o DIR [options]

Segments each image into the classes named and writes, for each, into the output folder:
  <stem>.overlay.png   the classes drawn over the image, with a legend
  <stem>.labels.png    16-bit greyscale label map: each pixel's value is its class's index
  <stem>.json          { image, model, classes, size: [h, w], shares: { class: share } }
An image whose stem an earlier one took gets <stem>-2, <stem>-3, ...

Options:
  --model DIR          model folder, as written by '${PROGRAM} export' (required)
  --classes LIST       the classes, separated by ';' when LIST holds one, else by ',';
                       with ';' a class may list synonyms: "sky;person, someone;car"
  --classes-file FILE  instead of --classes: one class a line, synonyms separated by ',';
                       blank lines and lines starting with # are skipped
  -o, --out DIR        output folder, created if missing (required)
  --templates NAME     prompt templates: ${TEMPLATE_NAMES.map((n) => `${n} (${TEMPLATE_SETS[n].length})`).join(' or ')}
                       (default: the model's)
  --output-size HxW    height and width of the outputs, e.g. 480x640 (default: each image's own)
  --no-resize          feed each image at its own size, not at the model's scale (short side 640,
                       long side at most 2560 for the official models)
${runtimeUsage(23)}
  -h, --help           show this help

Writes the paths of the files to stdout, progress to stderr. Exit status: 0 when every image was
written; 1 when an image failed (the others are still written) or the model did not load; 2 for
bad arguments.
`;

/** Everything `san-seg segment` does, checked. */
export interface SegmentJob {
  /** The images, as given. */
  readonly images: readonly string[];
  readonly modelDir: string;
  readonly outDir: string;
  readonly load: TorchModelOptions;
  readonly segment: SegmentOptions & { classes: readonly string[] };
}

/**
 * Parses and checks the arguments after `segment`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for anything that does not fit.
 */
export function parseSegmentArgs(args: string[]): SegmentJob | 'help' {
  const { values, positionals } = parseCommandArgs(COMMAND, { args, options: FLAGS, allowPositionals: true });
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('no images given', COMMAND);
  const classes = readClasses(values.classes, values['classes-file']);
  const load = parseRuntimeArgs(values, COMMAND);
  const segment: SegmentJob['segment'] = { classes, resize: !values['no-resize'] };
  if (values.templates !== undefined) segment.templates = checkTemplates(values.templates);
  if (values['output-size'] !== undefined) segment.outputSize = parseSize(values['output-size']);
  return {
    images: positionals,
    modelDir: path.resolve(required(values.model, '--model', COMMAND)),
    outDir: path.resolve(required(values.out, '-o/--out', COMMAND)),
    load,
    segment,
  };
}

/**
 * Splits a `--classes` value: by ';' when it holds one (so that a class can list synonyms with ','), else by ','.
 * Blank entries (a trailing separator) are dropped.
 */
export function splitClassList(list: string): string[] {
  const separator = list.includes(';') ? ';' : ',';
  return list.split(separator).map((name) => name.trim()).filter((name) => name.length > 0);
}

/** The classes of a `--classes-file` text: one a line; blank lines and lines starting with # are skipped. */
export function parseClassesFile(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0 && !line.startsWith('#'));
}

/**
 * The classes of `--classes` or `--classes-file` (one of them, not both), checked: 1 to MAX_CLASSES names of at most
 * MAX_CLASS_LENGTH characters, none twice. Shared with `eval`. @throws UsageError for `command`.
 */
export function readClasses(list: string | undefined, file: string | undefined, command = COMMAND): string[] {
  if (list !== undefined && file !== undefined) {
    throw new UsageError('give either --classes or --classes-file, not both', command);
  }
  let classes: string[];
  if (list !== undefined) {
    classes = splitClassList(list);
  } else if (file !== undefined) {
    classes = parseClassesFile(readTextFile(file, command));
  } else {
    throw new UsageError('--classes or --classes-file is required', command);
  }
  return checkClasses(classes, list !== undefined ? '--classes' : `--classes-file ${file}`, command);
}

function readTextFile(file: string, command: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --classes-file ${file}: ${(error as Error).message}`, command);
  }
}

function checkClasses(classes: string[], source: string, command: string): string[] {
  if (classes.length === 0) throw new UsageError(`${source} names no classes`, command);
  if (classes.length > MAX_CLASSES) {
    throw new UsageError(`${source} names ${classes.length} classes, more than the ${MAX_CLASSES} allowed`, command);
  }
  const long = classes.find((name) => name.length > MAX_CLASS_LENGTH);
  if (long !== undefined) {
    throw new UsageError(`${source} has a class longer than ${MAX_CLASS_LENGTH} characters: '${long.slice(0, 40)}...'`,
      command);
  }
  // The JSON summaries key figures by class name, so each name must be unique.
  const repeated = classes.find((name, i) => classes.indexOf(name) !== i);
  if (repeated !== undefined) throw new UsageError(`${source} names the class '${repeated}' twice`, command);
  return classes;
}

/** `--templates`: the name of a template set. @throws UsageError for `command`. */
export function checkTemplates(name: string, command = COMMAND): TemplateSetName {
  if (!(TEMPLATE_NAMES as string[]).includes(name)) {
    throw new UsageError(`--templates must be one of: ${TEMPLATE_NAMES.join(', ')} (got '${name}')`, command);
  }
  return name as TemplateSetName;
}

/** `HxW` (or `H×W`) → [height, width]; the model checks the upper bound. */
function parseSize(text: string): [number, number] {
  const match = SIZE_PATTERN.exec(text);
  const size = match ? [Number(match[1]), Number(match[2])] : [];
  if (size.length !== 2 || size.some((side) => side < 1)) {
    throw new UsageError(`--output-size must be HEIGHTxWIDTH in pixels, e.g. 480x640 (got '${text}')`, COMMAND);
  }
  return [size[0], size[1]];
}
