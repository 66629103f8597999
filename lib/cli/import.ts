// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg import`: an official SAN checkpoint to a model folder in Node and LibTorch, without Python
 * (lib/import/import.ts). `san-seg export` does the same with the Python exporter.
 * @module
 */
import { importCheckpoint, type ImportOptions } from '../import/import';
import { CliIo, ExitCode, parseCommandArgs, PROGRAM, required } from './common';

const COMMAND = 'import';

const FLAGS = {
  checkpoint: { type: 'string' },
  out: { type: 'string', short: 'o' },
  variant: { type: 'string' },
  vocab: { type: 'string' },
  architectures: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const IMPORT_USAGE = `Usage: ${PROGRAM} import --checkpoint FILE.pth --out DIR [--variant NAME] [--vocab FILE]

Imports an official SAN checkpoint (san_vit_b_16.pth, san_vit_large_14.pth) to a model folder
(san.pt, text_encoder.pt, bpe_vocab.txt.gz, manifest.json) without Python: the weights are
bound into the architectures the package ships. The folder is the one 'export' writes.

Options:
  --checkpoint FILE      official SAN weights, e.g. san_vit_b_16.pth (required)
  -o, --out DIR          model folder to write, created if missing (required)
  --variant NAME         auto (recognised from the weights), vit_b_16 or vit_l_14_336
                         (default: auto)
  --vocab FILE           CLIP's BPE merges (default: the package's
                         assets/clip/bpe_simple_vocab_16e6.txt.gz)
  --architectures DIR    architecture templates, one folder per variant (default: the
                         package's assets/architectures; python3 -m models.export_architecture)
  -h, --help             show this help

Exit status: 0 when the folder was written, 1 when the checkpoint is not SAN or cannot be read,
2 for bad arguments.
`;

/** What the command imports, and where. */
export interface ImportJob {
  readonly checkpoint: string;
  readonly out: string;
  readonly options: ImportOptions;
}

/**
 * Parses and checks the arguments after `import`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for anything that does not fit.
 */
export function parseImportArgs(args: string[]): ImportJob | 'help' {
  const { values } = parseCommandArgs(COMMAND, { args, options: FLAGS, allowPositionals: false });
  if (values.help) return 'help';
  const options: ImportOptions = {};
  if (values.variant !== undefined) options.variant = values.variant;
  if (values.vocab !== undefined) options.vocab = values.vocab;
  if (values.architectures !== undefined) options.architectures = values.architectures;
  return {
    checkpoint: required(values.checkpoint, '--checkpoint', COMMAND),
    out: required(values.out, '-o/--out', COMMAND),
    options,
  };
}

/** Runs `san-seg import` with the arguments after the command. */
export async function importCommand(args: string[], io: CliIo): Promise<number> {
  const job = parseImportArgs(args);
  if (job === 'help') {
    io.stdout.write(IMPORT_USAGE);
    return ExitCode.OK;
  }
  const { variant, dir, manifest } = await importCheckpoint(job.checkpoint, job.out, job.options);
  const files = Object.values(manifest.files as Record<string, { name: string }>).map((entry) => entry.name);
  io.stdout.write(`Imported ${variant} to ${dir}: ${files.join(', ')}, manifest.json\n`);
  return ExitCode.OK;
}
