#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg`, the command line of san-node: `segment` images with a model folder, `eval`uate one on a benchmark,
 * `export` (Python) or `import` (no Python) an official checkpoint to one. This file dispatches to the commands
 * (lib/cli/) and turns what they throw into one line and an exit status: 0 success, 1 failure, 2 bad usage.
 * docs/cli.md describes every command and flag.
 * @module
 */
// First: sizes libuv's pool before anything can start it.
import './host-threads';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CliIo, ExitCode, firstLine, isArgumentError, isExpectedError, PACKAGE_ROOT, PROGRAM, UsageError,
} from './common';
import { evalCommand } from './eval';
import { exportCommand } from './export';
import { importCommand } from './import';
import { segmentCommand } from './segment';
import { serveCommand } from './serve';
import { workerCommand } from './worker';

export type { CliIo } from './common';

const COMMANDS: Readonly<Record<string, (args: string[], io: CliIo) => Promise<number>>> = Object.freeze({
  segment: segmentCommand,
  eval: evalCommand,
  export: exportCommand,
  import: importCommand,
  serve: serveCommand,
  worker: workerCommand,
});

export const USAGE = `Usage: ${PROGRAM} <command> [options]

Open-vocabulary semantic segmentation with SAN (CVPR 2023) on LibTorch.

Commands:
  segment    segment images into the classes you name: an overlay, a label map and a JSON
             summary per image
  eval       score a model on a benchmark's images and label maps: mIoU, fwIoU, mACC, pACC
             and per-class IoU, as SAN's evaluation computes them
  export     export an official SAN checkpoint (.pth) to a model folder (runs Python)
  import     the same without Python: binds the checkpoint's weights into the
             architectures the package ships
  serve      serve a model over HTTP on this machine: POST /segment, GET /healthz, GET /metrics
  worker     take segmentation jobs from a BullMQ queue in Redis, one of a fleet of workers

Options:
  -h, --help     show this help; '${PROGRAM} <command> --help' shows a command's
  --version      print the version of san-node

Examples:
  ${PROGRAM} import --checkpoint san_vit_b_16.pth --out models/vit_b_16
  ${PROGRAM} segment street.jpg --model models/vit_b_16 --classes "road;car;person, someone" -o out
  ${PROGRAM} serve --model models/vit_b_16 --port 8080
  ${PROGRAM} worker --redis redis://127.0.0.1:6379 --queue san --model models/vit_b_16
  ${PROGRAM} eval --model models/vit_b_16 --images ADEChallengeData2016/images/validation \\
    --labels ADEChallengeData2016/annotations_detectron2/validation --classes-file assets/classes/ade150.txt
`;

/** The version in package.json. */
export function version(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/**
 * Runs `san-seg` with `argv` (the arguments after the program's name) and resolves with the exit status. Never
 * rejects: every failure is reported on `io.stderr`, as one line when it is an expected one.
 * @param argv - e.g. `['segment', 'a.jpg', '--model', 'dir', '--classes', 'sky;sea', '-o', 'out']`.
 * @param io - where to write; the process's stdout and stderr by default.
 * @returns 0 on success, 1 when something failed, 2 for bad usage.
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    return report(error, io);
  }
}

function dispatch(argv: string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('no command given');
  if (first === '--help' || first === '-h' || first === 'help') return Promise.resolve(help(rest, io));
  if (first === '--version') {
    io.stdout.write(`${version()}\n`);
    return Promise.resolve(ExitCode.OK);
  }
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (command === undefined) {
    throw new UsageError(first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`);
  }
  return command(rest, io);
}

/** `san-seg --help` and `san-seg help [command]`. */
function help(rest: string[], io: CliIo): Promise<number> | number {
  const [command] = rest;
  if (command !== undefined && Object.hasOwn(COMMANDS, command)) return COMMANDS[command](['--help'], io);
  io.stdout.write(USAGE);
  return ExitCode.OK;
}

/** Writes what `error` means for the user and returns the exit status it calls for. */
function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    const helpCommand = error.command ? `${PROGRAM} ${error.command} --help` : `${PROGRAM} --help`;
    io.stderr.write(`${PROGRAM}: ${error.message} (see '${helpCommand}')\n`);
    return ExitCode.USAGE;
  }
  if (isArgumentError(error)) {
    io.stderr.write(`${PROGRAM}: ${firstLine(error)}\n`);
    return ExitCode.USAGE;
  }
  if (isExpectedError(error)) {
    // An addon that fails to load explains itself over several lines ("Possible solutions"); keep them all.
    const code = (error as Error & { code?: unknown }).code;
    io.stderr.write(`${PROGRAM}: ${code === 'ERR_SAN_ADDON_LOAD' ? error.message : firstLine(error)}\n`);
    return ExitCode.FAILURE;
  }
  io.stderr.write(`${PROGRAM}: unexpected error, please report it with the command that caused it:\n` +
    `${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  return ExitCode.FAILURE;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
