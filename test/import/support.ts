// SPDX-License-Identifier: Apache-2.0
// Shared by the import tests: the Python fixtures (a random official-format checkpoint and the Python exporter's
// folder), `san-seg import` run with no Python on PATH, and the parity check of the two folders.
import { execFileSync, spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TorchModel } from '../../lib/runtime/torch-model';
import { repoRoot, pythonBin, testModelsDir } from '../helpers/paths';
import type { Tensor } from '../../lib/runtime/tensor';
import {
  Case, expectTensorClose, flattenTensors, FLOAT32_TOLERANCE, moduleFiles, readCases,
} from '../native/support';

export const cliPath = path.join(repoRoot, 'dist', 'cli', 'main.js');
/** The tiny model's own vocabulary (its text tower has 768 tokens), written by scripts/setup.sh. */
export const tinyVocab = path.join(testModelsDir, 'tiny', 'bpe_vocab.txt.gz');
/** The package's CLIP vocabulary, the import default. */
export const clipVocab = path.join(repoRoot, 'assets', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
/** The bound: the imported folder's outputs within 1e-6 of the Python export's, relatively. */
export const RELATIVE_TOLERANCE = 1e-6;

/**
 * Runs test/import/make_checkpoint.py: `dir`/checkpoint.pth, `dir`/python/ (the Python exporter's folder with its
 * reference cases) and, for tiny, `dir`/architectures/; with `extra`, `dir`/bad/ (files that are not SAN
 * checkpoints), `dir`/formats/ (other containers and float16) and `dir`/python-half/ (the float16 file's export).
 */
export function makeFixtures(variant: string, dir: string, vocab: string, extra = false): void {
  execFileSync(pythonBin, [path.join(__dirname, 'make_checkpoint.py'), '--variant', variant, '--out', dir,
    '--vocab', vocab, ...(extra ? ['--extra'] : [])], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A PATH with only `node` on it (a link in `dir`/bin): no python, python3 or any other program. */
export function pathWithoutPython(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

/** `node dist/cli/main.js import ...args`, found and run through `PATH` alone, with SAN_PYTHON unset. */
export function runImport(args: string[], PATH: string): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH };
  delete env.SAN_PYTHON;
  return spawnSync('node', [cliPath, 'import', ...args], { env, encoding: 'utf8' });
}

/** Python is not reachable with this PATH. */
export function expectNoPython(PATH: string): void {
  for (const python of ['python', 'python3']) {
    const run = spawnSync(python, ['--version'], { env: { PATH } });
    expect((run.error as NodeJS.ErrnoException | undefined)?.code).toBe('ENOENT');
  }
}

type Json = Record<string, unknown>;

function readManifest(dir: string): Json {
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Json;
}

/**
 * The imported manifest is the Python exporter's, but for what differs by construction: the torch version string
 * (LibTorch's, not Python torch's), the two TorchScript files' sha256 (another writer), and logit_scale's last bit.
 */
export function expectSameManifest(importedDir: string, pythonDir: string): void {
  const imported = readManifest(importedDir);
  const python = readManifest(pythonDir);
  const strip = (manifest: Json): Json => {
    const files = manifest.files as Record<string, { name: string; sha256: string }>;
    return {
      ...manifest,
      torch_version: typeof manifest.torch_version,
      logit_scale: typeof manifest.logit_scale,
      files: { ...files, san: { name: files.san.name }, text_encoder: { name: files.text_encoder.name } },
    };
  };
  expect(strip(imported)).toEqual(strip(python));
  expect(Math.abs((imported.logit_scale as number) - (python.logit_scale as number)))
    .toBeLessThanOrEqual(RELATIVE_TOLERANCE * (python.logit_scale as number));
}

/** Every case's result on the modules of `dir` (float32, CPU), as flat tensor lists; the model is disposed after. */
async function runCases(dir: string, cases: readonly Case[]): Promise<Tensor[][]> {
  const modules = [...new Set(cases.map((c) => c.module))];
  const model = await TorchModel.load(moduleFiles(dir, modules), { device: 'cpu', dtype: 'float32' });
  try {
    const results: Tensor[][] = [];
    for (const { module, method, inputs } of cases) results.push(flattenTensors(await model.run(module, method, inputs)));
    return results;
  } finally {
    await model.dispose();
  }
}

/**
 * Runs every reference case of the Python export (`pythonDir`/reference/cases.json) on the imported folder and on
 * the Python export's folder, both in this runtime (float32, CPU, one after the other), and compares them: within
 * 1e-6 relative to the largest magnitude of each tensor (integer outputs, the labels, exactly). The imported results
 * are also checked against the outputs Python computed, within the native tests' float32 tolerance (the two
 * processes may use BLAS threads differently, so sums may round differently).
 * @returns how many tensors were compared.
 */
export async function expectSameOutputs(importedDir: string, pythonDir: string): Promise<number> {
  const cases = readCases(path.join(pythonDir, 'reference', 'cases.json'));
  const exported = await runCases(pythonDir, cases);
  const imported = await runCases(importedDir, cases);
  let compared = 0;
  cases.forEach(({ name, outputs }, c) => {
    expect([name, imported[c].length, exported[c].length]).toEqual([name, outputs.length, outputs.length]);
    imported[c].forEach((tensor, i) => {
      const expected = exported[c][i];
      const scale = expected.type === 'float32'
        ? (expected.data as Float32Array).reduce((max, value) => Math.max(max, Math.abs(value)), 0) : 0;
      expectTensorClose(tensor, expected, { atol: RELATIVE_TOLERANCE * scale, rtol: RELATIVE_TOLERANCE });
      if (outputs[i].type === 'float32') expectTensorClose(tensor, outputs[i], FLOAT32_TOLERANCE);
      compared += 1;
    });
  });
  return compared;
}
