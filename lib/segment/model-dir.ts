// SPDX-License-Identifier: Apache-2.0
/**
 * A model folder as `python3 -m models.export` writes it: `manifest.json`, the two TorchScript files and the BPE
 * vocabulary. docs/models.md documents every manifest field; this module reads the ones the runtime needs and
 * checks the folder before anything is loaded, so that a wrong folder fails with a message naming the file.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, SanError } from '../errors';

/** The manifest version this runtime reads. */
export const MANIFEST_FORMAT_VERSION = 1;
const MANIFEST = 'manifest.json';
const ROLES = ['san', 'text_encoder', 'bpe_vocab'] as const;
type FileRole = (typeof ROLES)[number];

/** The fields of `manifest.json` the runtime uses. */
export interface Manifest {
  format_version: number;
  variant: string;
  torch_version: string;
  files: Record<FileRole, { name: string; sha256: string }>;
  dims: { embed_dim: number; num_queries: number; mask_stride: number };
  image: { size_divisibility: number };
  resize: { short_edge: number; max_size: number; size_divisibility: number };
  logit_scale: number;
  text: { context_length: number; vocab_size: number; template_set: string; templates: string[] };
  /** What the export's methods can do beyond format_version 1's (absent in older exports); see docs/models.md. */
  capabilities?: string[];
}

/** A checked model folder. */
export interface ModelDir {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Absolute path of each file, by its manifest role. */
  readonly files: Record<FileRole, string>;
}

function loadError(dir: string, problem: string): SanError {
  return new SanError(ErrorCode.MODEL_LOAD, `The model folder ${dir} ${problem}`);
}

/** sha256 of a file, streamed (an L/14 export is over a gigabyte). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Reads `dir/manifest.json`, checks its version and fields, that every file it lists exists and, when `verify`,
 * that each file's sha256 matches.
 * @throws SanError ERR_SAN_MODEL_LOAD naming the folder and what is wrong with it.
 */
export async function readModelDir(dir: string, verify: boolean): Promise<ModelDir> {
  const absolute = path.resolve(dir);
  let text: string;
  try {
    text = await fsp.readFile(path.join(absolute, MANIFEST), 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `has no ${MANIFEST}` : `has an unreadable ${MANIFEST}`;
    throw loadError(absolute, `${reason} (write one with python3 -m models.export): ${(error as Error).message}`);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (error) {
    throw loadError(absolute, `has a ${MANIFEST} that is not JSON: ${(error as Error).message}`);
  }
  if (manifest.format_version !== MANIFEST_FORMAT_VERSION) {
    throw loadError(absolute, `has manifest format_version ${String(manifest.format_version)}; this san-node reads ` +
      `version ${MANIFEST_FORMAT_VERSION} (re-export it with this version's models.export)`);
  }
  checkFields(absolute, manifest);
  const files = {} as Record<FileRole, string>;
  for (const role of ROLES) {
    const entry = manifest.files[role];
    files[role] = path.join(absolute, entry.name);
    const stat = await fsp.stat(files[role]).catch(() => null);
    if (!stat?.isFile()) throw loadError(absolute, `lacks ${entry.name}, which its manifest lists as files.${role}`);
    if (verify) {
      const actual = await sha256File(files[role]);
      if (actual !== entry.sha256) {
        throw loadError(absolute, `holds a ${entry.name} whose sha256 ${actual} differs from the manifest's ` +
          `${entry.sha256}: the file was changed or belongs to another export`);
      }
    }
  }
  return { dir: absolute, manifest, files };
}

const NUMBER_FIELDS = ['dims.embed_dim', 'dims.num_queries', 'dims.mask_stride', 'image.size_divisibility',
  'resize.short_edge', 'resize.max_size', 'logit_scale', 'text.context_length', 'text.vocab_size'];

function checkFields(dir: string, manifest: Manifest): void {
  const field = (dotted: string): unknown =>
    dotted.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], manifest);
  for (const dotted of NUMBER_FIELDS) {
    const value = field(dotted);
    const integral = dotted !== 'logit_scale';
    if (typeof value !== 'number' || !(value > 0) || (integral && !Number.isSafeInteger(value))) {
      throw loadError(dir, `has a manifest whose ${dotted} is ${JSON.stringify(value)}, not a positive ` +
        `${integral ? 'integer' : 'number'}`);
    }
  }
  for (const role of ROLES) {
    const entry = field(`files.${role}`) as { name?: unknown; sha256?: unknown } | undefined;
    if (typeof entry?.name !== 'string' || typeof entry.sha256 !== 'string' || path.basename(entry.name) !== entry.name) {
      throw loadError(dir, `has a manifest without a valid files.${role} { name, sha256 } entry`);
    }
  }
  const templates = field('text.templates');
  if (!Array.isArray(templates) || templates.length === 0 || !templates.every((t) => typeof t === 'string' && t.includes('{}'))) {
    throw loadError(dir, 'has a manifest whose text.templates is not a list of templates with {}');
  }
}
