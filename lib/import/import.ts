// SPDX-License-Identifier: Apache-2.0
/**
 * `importCheckpoint()`: an official SAN checkpoint (`san_vit_b_16.pth`, `san_vit_large_14.pth`) to a model folder,
 * without Python. The weights are bound into the shipped architecture templates (assets/architectures/), so the
 * folder holds what `python3 -m models.export` writes: san.pt, text_encoder.pt, bpe_vocab.txt.gz, manifest.json.
 * @module
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, nativeError, SanError } from '../errors';
import * as is from '../is';
import { PACKAGE_ROOT } from '../package-root';
import { sha256File } from '../segment/model-dir';
import { ClipTokenizer } from '../segment/tokenizer';
import {
  checkStateDict, detectVariant, readArchitectures, SHIPPED_ARCHITECTURES, type ArchitectureDir,
} from './architecture';
import { readStateDict, type TensorRef } from './checkpoint';
import { importBinding, type NativeBindJob, type NativeTensorSpec } from './native';

/** Options of {@link importCheckpoint}. */
export interface ImportOptions {
  /** `'auto'` (recognised from the tensor shapes) or a variant name, e.g. `'vit_b_16'`, `'vit_l_14_336'`. */
  variant?: string;
  /** CLIP's BPE merges (`bpe_simple_vocab_16e6.txt.gz`), copied into the folder. Default: the package's copy. */
  vocab?: string;
  /** Folder of architecture templates, one sub-folder per variant. Default: the package's. */
  architectures?: string;
}

/** What {@link importCheckpoint} wrote. */
export interface ImportResult {
  /** The variant the weights were bound to. */
  readonly variant: string;
  /** The model folder, absolute. */
  readonly dir: string;
  /** manifest.json as written. */
  readonly manifest: Record<string, unknown>;
}

export const IMPORT_DEFAULTS = Object.freeze({
  variant: 'auto',
  vocab: path.join(PACKAGE_ROOT, 'assets', 'clip', 'bpe_simple_vocab_16e6.txt.gz'),
  architectures: SHIPPED_ARCHITECTURES,
});

const OPTION_NAMES = Object.keys(IMPORT_DEFAULTS);
const MANIFEST = 'manifest.json';

function checkOptions(options: unknown): Required<ImportOptions> {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.includes(name)) {
      throw is.invalidParameterError(`options.${name}`, `no such option (known: ${OPTION_NAMES.join(', ')})`,
        options[name], 'range');
    }
  }
  const settings = { ...IMPORT_DEFAULTS, ...options };
  for (const name of OPTION_NAMES) {
    const value = settings[name as keyof typeof settings];
    if (!is.string(value) || value === '') {
      throw is.invalidParameterError(`options.${name}`, 'a non-empty string', value);
    }
  }
  return settings as Required<ImportOptions>;
}

function spec({ record, dtype, offset, sizes, strides }: TensorRef): NativeTensorSpec {
  return { record, dtype, offset, sizes, strides };
}

/** The architectures under `root`, after checking that `variant` is `'auto'` or one of them. */
function readChoices(root: string, variant: string): Map<string, ArchitectureDir> {
  const architectures = readArchitectures(root);
  if (variant !== 'auto' && !architectures.has(variant)) {
    throw is.invalidParameterError('options.variant', `one of: auto, ${[...architectures.keys()].join(', ')}`,
      variant, 'range');
  }
  return architectures;
}

function readVocab(file: string, expectedSize: number, variant: string): ClipTokenizer {
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = ClipTokenizer.fromFile(file);
  } catch (error) {
    throw new SanError(ErrorCode.MODEL_LOAD, `The CLIP vocabulary ${file} cannot be read: ${(error as Error).message}`);
  }
  if (tokenizer.vocabSize !== expectedSize) {
    throw new SanError(ErrorCode.MODEL_LOAD, `${file} gives ${tokenizer.vocabSize} tokens but the ${variant} text ` +
      `encoder has ${expectedSize}; pass the vocabulary the model was trained with (vocab)`);
  }
  return tokenizer;
}

/**
 * Writes the model folder `outDir` (created if missing) from an official SAN checkpoint, without Python: reads the
 * `torch.save` archive, recognises the variant from the tensor shapes, checks every key and shape, binds the
 * weights into the package's architecture templates and writes manifest.json as `python3 -m models.export` does.
 * The folder gives the same outputs as the Python exporter's.
 * @param checkpoint - e.g. `san_vit_b_16.pth`: `{'model': state_dict}`, `{'state_dict': ...}` or a bare state dict.
 * @param outDir - the model folder to write.
 * @throws SanError ERR_SAN_MODEL_LOAD for a file that is not a SAN checkpoint (with what it has and what was
 *   expected), ERR_SAN_SHAPE if a tensor does not fit its template; TypeError/RangeError for bad arguments.
 * @example
 * ```ts
 * const { variant, dir } = await importCheckpoint('san_vit_b_16.pth', 'models/vit_b_16');
 * const model = await SanModel.load(dir);
 * ```
 */
export async function importCheckpoint(checkpoint: string, outDir: string,
  options: ImportOptions = {}): Promise<ImportResult> {
  if (!is.string(checkpoint) || checkpoint === '') {
    throw is.invalidParameterError('checkpoint', 'a file path', checkpoint);
  }
  if (!is.string(outDir) || outDir === '') throw is.invalidParameterError('outDir', 'a folder path', outDir);
  const settings = checkOptions(options);
  const callSite = new Error();
  const choices = readChoices(settings.architectures, settings.variant);
  const stateDict = readStateDict(checkpoint);
  const { dir: templates, architecture } = settings.variant === 'auto'
    ? detectVariant(stateDict, choices, checkpoint) : choices.get(settings.variant) as ArchitectureDir;
  const { variant } = architecture;
  checkStateDict(stateDict, architecture, `${checkpoint} (as ${variant})`);
  const manifest = structuredClone(architecture.manifest) as ManifestDraft;
  const tokenizer = readVocab(settings.vocab, manifest.text.vocab_size, variant);

  const native = importBinding();
  const dir = path.resolve(outDir);
  await fsp.mkdir(dir, { recursive: true });
  // A folder imported before must not look complete while its files are being replaced.
  await fsp.rm(path.join(dir, MANIFEST), { force: true });
  const jobs: NativeBindJob[] = Object.entries(architecture.modules).map(([file, bindings]) => ({
    template: path.join(templates, file),
    output: path.join(dir, file),
    tensors: Object.entries(bindings).map(([name, { key }]) => ({ name, ...spec(stateDict.get(key) as TensorRef) })),
  }));
  let logitScale: number;
  try {
    const logit = native.readCheckpointTensor(checkpoint, spec(stateDict.get(architecture.logit_scale_key) as TensorRef));
    // Python's logit_scale.exp().item(): exp in float32, then widened.
    logitScale = Math.fround(Math.exp((logit.data as Float32Array)[0]));
    await native.bindCheckpoint(checkpoint, jobs);
  } catch (error) {
    throw nativeError(error, callSite);
  }
  await fsp.copyFile(settings.vocab, path.join(dir, manifest.files.bpe_vocab.name));

  manifest.torch_version = native.versions().libtorch;
  for (const entry of Object.values(manifest.files)) entry.sha256 = await sha256File(path.join(dir, entry.name));
  manifest.logit_scale = logitScale;
  Object.assign(manifest.text, { vocab_size: tokenizer.vocabSize, sot_token: tokenizer.startToken,
    eot_token: tokenizer.endToken });
  // Written last: a folder whose import failed half-way has no manifest, so nothing loads it.
  await fsp.writeFile(path.join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return { variant, dir, manifest };
}

/** The manifest fields the importer fills in (the rest comes from architecture.json as it is). */
interface ManifestDraft extends Record<string, unknown> {
  torch_version: string | null;
  logit_scale: number | null;
  files: Record<string, { name: string; sha256: string | null }>;
  text: { vocab_size: number; sot_token: number; eot_token: number };
}
