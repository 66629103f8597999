// SPDX-License-Identifier: Apache-2.0
/**
 * The architecture templates that `san-seg import` fills: per variant, `<dir>/<variant>/architecture.json` and the
 * two TorchScript files with placeholder weights, written by `python3 -m models.export_architecture` and shipped
 * in `assets/architectures/`. This module recognises a checkpoint's variant from its shapes and checks every key
 * and shape against it, with the wording of models/san/checkpoint.py (on one line, as the CLI reports errors).
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, SanError } from '../errors';
import { PACKAGE_ROOT } from '../package-root';
import { listing, shapeText, type TensorRef } from './checkpoint';

/** Where the package keeps its architectures. */
export const SHIPPED_ARCHITECTURES = path.join(PACKAGE_ROOT, 'assets', 'architectures');
const ARCHITECTURE = 'architecture.json';
const FORMAT_VERSION = 1;

/** A state-dict entry of an exported module: the checkpoint key it is bound to. */
export interface TensorBinding {
  readonly key: string;
  readonly shape: readonly number[];
  readonly dtype: string;
}

/** architecture.json (see models/export_architecture.py). */
export interface Architecture {
  readonly format_version: number;
  readonly variant: string;
  /** A few checkpoint keys and shapes that tell the variants apart. */
  readonly signature: Readonly<Record<string, readonly number[]>>;
  /** Checkpoint keys that inference never reads (training buffers). */
  readonly ignored_keys: readonly string[];
  readonly logit_scale_key: string;
  /** Per module file (san.pt, text_encoder.pt): each parameter or buffer's binding. */
  readonly modules: Readonly<Record<string, Readonly<Record<string, TensorBinding>>>>;
  /** models.export's manifest with torch_version, files' sha256 and logit_scale left null. */
  readonly manifest: Record<string, unknown>;
}

/** An architecture and the folder its module files are in. */
export interface ArchitectureDir {
  readonly dir: string;
  readonly architecture: Architecture;
}

/**
 * Every architecture under `root` (one folder per variant), by variant name.
 * @throws SanError ERR_SAN_MODEL_LOAD when `root` holds none or one cannot be read.
 */
export function readArchitectures(root: string): Map<string, ArchitectureDir> {
  const found = new Map<string, ArchitectureDir>();
  const entries = fs.existsSync(root) ? fs.readdirSync(root, { withFileTypes: true }) : [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = path.join(root, entry.name, ARCHITECTURE);
    if (!fs.existsSync(file)) continue;
    let architecture: Architecture;
    try {
      architecture = JSON.parse(fs.readFileSync(file, 'utf8')) as Architecture;
    } catch (error) {
      throw new SanError(ErrorCode.MODEL_LOAD, `Cannot read the architecture ${file}: ${(error as Error).message}`);
    }
    if (architecture.format_version !== FORMAT_VERSION || architecture.variant !== entry.name) {
      throw new SanError(ErrorCode.MODEL_LOAD, `${file} is not a version ${FORMAT_VERSION} architecture of ` +
        `${entry.name} (re-write it with python3 -m models.export_architecture)`);
    }
    found.set(entry.name, { dir: path.join(root, entry.name), architecture });
  }
  if (found.size === 0) {
    throw new SanError(ErrorCode.MODEL_LOAD, `No architecture (<variant>/${ARCHITECTURE}) found in ${root}`);
  }
  return found;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

/**
 * The variant whose signature shapes `stateDict` has.
 * @throws SanError ERR_SAN_MODEL_LOAD listing the shapes found and those each variant expects.
 */
export function detectVariant(stateDict: ReadonlyMap<string, TensorRef>, architectures: ReadonlyMap<string,
  ArchitectureDir>, source: string): ArchitectureDir {
  for (const candidate of architectures.values()) {
    const { signature } = candidate.architecture;
    if (Object.entries(signature).every(([key, shape]) => {
      const tensor = stateDict.get(key);
      return tensor !== undefined && sameShape(tensor.sizes, shape);
    })) {
      return candidate;
    }
  }
  const [first] = architectures.values();
  const found = Object.keys(first.architecture.signature).map((key) => {
    const tensor = stateDict.get(key);
    return `${key} ${tensor ? shapeText(tensor.sizes) : 'missing'}`;
  }).join(', ');
  const expected = [...architectures.values()].map(({ architecture }) =>
    `${architecture.variant}: ${Object.values(architecture.signature).map(shapeText).join(', ')}`).join('; ');
  throw new SanError(ErrorCode.MODEL_LOAD,
    `${source} matches no SAN variant. It has ${found}. Expected, in that order, ${expected}`);
}

/**
 * Checks that `stateDict` has exactly the architecture's keys, each with its shape (ignored keys aside).
 * @throws SanError ERR_SAN_MODEL_LOAD listing the missing, unexpected and mis-shaped keys.
 */
export function checkStateDict(stateDict: ReadonlyMap<string, TensorRef>, architecture: Architecture,
  source: string): void {
  const expected = new Map<string, readonly number[]>();
  for (const bindings of Object.values(architecture.modules)) {
    for (const { key, shape } of Object.values(bindings)) expected.set(key, shape);
  }
  const ignored = new Set(architecture.ignored_keys);
  const missing = [...expected.keys()].filter((key) => !stateDict.has(key));
  const unexpected = [...stateDict.keys()].filter((key) => !expected.has(key) && !ignored.has(key));
  const misshaped = [...expected].flatMap(([key, shape]) => {
    const tensor = stateDict.get(key);
    return tensor && !sameShape(tensor.sizes, shape)
      ? [`${key} (${shapeText(tensor.sizes)} in the checkpoint, ${shapeText(shape)} in the model)`] : [];
  });
  const problems = ([['missing keys', missing], ['unexpected keys', unexpected], ['mis-shaped keys', misshaped]] as const)
    .filter(([, keys]) => keys.length > 0)
    .map(([kind, keys]) => `${keys.length} ${kind}: ${listing(keys)}`);
  if (problems.length > 0) {
    throw new SanError(ErrorCode.MODEL_LOAD, `${source} does not match the model: ${problems.join('; ')}`);
  }
}
