// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg export`: runs the Python exporter (`python3 -m models.export`) from the package root, with the
 * terminal handed over to it, and exits with its status.
 * @module
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { CliError, CliIo, ExitCode, PACKAGE_ROOT, parseCommandArgs, PROGRAM, required, UsageError } from './common';

const COMMAND = 'export';
/** Debian's Python, the one with python3-torch; scripts/env.sh has the same default. */
const DEFAULT_PYTHON = '/usr/bin/python3';
const VARIANTS = ['auto', 'vit_b_16', 'vit_l_14_336'];
/** CLIP's BPE merges as OpenAI released them (MIT), shipped in the package: assets/clip/README.md. */
export const CLIP_VOCAB = path.join(PACKAGE_ROOT, 'assets', 'clip', 'bpe_simple_vocab_16e6.txt.gz');

const FLAGS = {
  checkpoint: { type: 'string' },
  out: { type: 'string', short: 'o' },
  variant: { type: 'string' },
  vocab: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const EXPORT_USAGE = `Usage: ${PROGRAM} export --checkpoint FILE.pth --out DIR [--variant NAME] [--vocab FILE]

Exports an official SAN checkpoint to a model folder (san.pt, text_encoder.pt, bpe_vocab.txt.gz,
manifest.json) and checks the folder it wrote. Runs \${SAN_PYTHON:-${DEFAULT_PYTHON}} -m models.export
from the package root; it needs PyTorch.

Options:
  --checkpoint FILE    official SAN weights, e.g. san_vit_b_16.pth (required)
  -o, --out DIR        model folder to write, created if missing (required)
  --variant NAME       ${VARIANTS.join(', ')} (default: auto, recognised from the weights)
  --vocab FILE         CLIP's BPE merges (default: the package's copy of CLIP's
                       bpe_simple_vocab_16e6.txt.gz, in assets/clip/)
  -h, --help           show this help

Exit status: the exporter's (0 when the folder was written and checked), 2 for bad arguments.
`;

/** What the exporter is run with. */
export interface ExportJob {
  readonly python: string;
  /** The exporter's arguments, paths made absolute (it runs in the package root, not the caller's folder). */
  readonly args: readonly string[];
}

/** Runs `san-seg export` with the arguments after the command. */
export async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const job = parseExportArgs(args);
  if (job === 'help') {
    io.stdout.write(EXPORT_USAGE);
    return ExitCode.OK;
  }
  return runExporter(job);
}

/**
 * Parses and checks the arguments after `export`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for anything that does not fit.
 */
export function parseExportArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ExportJob | 'help' {
  const { values } = parseCommandArgs(COMMAND, { args, options: FLAGS, allowPositionals: false });
  if (values.help) return 'help';
  const variant = values.variant ?? 'auto';
  if (!VARIANTS.includes(variant)) {
    throw new UsageError(`--variant must be one of: ${VARIANTS.join(', ')} (got '${variant}')`, COMMAND);
  }
  const exporterArgs = [
    '-m', 'models.export',
    '--checkpoint', path.resolve(required(values.checkpoint, '--checkpoint', COMMAND)),
    '--out', path.resolve(required(values.out, '-o/--out', COMMAND)),
    '--variant', variant,
    '--vocab', values.vocab === undefined ? CLIP_VOCAB : path.resolve(values.vocab),
  ];
  return { python: env.SAN_PYTHON || DEFAULT_PYTHON, args: exporterArgs };
}

/** Runs the exporter with stdio inherited; resolves with its exit status (128 + the signal's number if killed). */
function runExporter(job: ExportJob): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(job.python, job.args, { cwd: PACKAGE_ROOT, stdio: 'inherit' });
    child.on('error', (error) => {
      reject(new CliError(`cannot run ${job.python} (set SAN_PYTHON to a Python with PyTorch): ${error.message}`));
    });
    child.on('close', (code, signal) => {
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
    });
  });
}
