// SPDX-License-Identifier: Apache-2.0
// `san-seg import` on the tiny config (fast): a random official-format checkpoint imported with no Python on PATH
// gives the Python exporter's folder (same manifest, same outputs on the reference cases); files that are not SAN
// checkpoints are refused with a clear SanError; the API checks its arguments.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, importCheckpoint, readModelDir, SanError } from '../../lib';
import { importBinding } from '../../lib/import/native';
import { testModelsDir } from '../helpers/paths';
import { useTempDir } from '../helpers/temp-dir';
import {
  expectNoPython, expectSameManifest, expectSameOutputs, makeFixtures, pathWithoutPython, runImport, tinyVocab,
} from './support';

const tempDir = useTempDir('san-import-tiny-');
let PATH: string;
let architectures: string;

beforeAll(() => {
  makeFixtures('tiny', tempDir(), tinyVocab, true);
  PATH = pathWithoutPython(tempDir());
  architectures = path.join(tempDir(), 'architectures');
});

const importArgs = (checkpoint: string, out: string): string[] =>
  ['--checkpoint', checkpoint, '--out', out, '--architectures', architectures, '--vocab', tinyVocab];

describe('san-seg import (tiny, no Python on PATH)', () => {
  let out: string;

  beforeAll(() => {
    out = path.join(tempDir(), 'imported');
    expectNoPython(PATH);
    const run = runImport(importArgs(path.join(tempDir(), 'checkpoint.pth'), out), PATH);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toBe(`Imported tiny to ${out}: san.pt, text_encoder.pt, bpe_vocab.txt.gz, manifest.json\n`);
  });

  test('writes the manifest the Python exporter writes, with sha256s the runtime verifies', async () => {
    expectSameManifest(out, path.join(tempDir(), 'python'));
    const dir = await readModelDir(out, true);
    expect(dir.manifest.variant).toBe('tiny');
    expect(fs.readFileSync(dir.files.bpe_vocab)).toEqual(fs.readFileSync(tinyVocab));
  });

  test('gives the Python export\'s outputs on every reference case (<= 1e-6 relative)', async () => {
    expect(await expectSameOutputs(out, path.join(tempDir(), 'python'))).toBeGreaterThanOrEqual(10);
  });
});

describe('other containers and types, read as the exporter reads them', () => {
  test.each([['bare.pth'], ['state_dict_params.pth']])('%s gives the same modules, byte for byte', async (name) => {
    const out = path.join(tempDir(), `format-${name}`);
    const { variant } = await importCheckpoint(path.join(tempDir(), 'formats', name), out,
      { architectures, vocab: tinyVocab });
    expect(variant).toBe('tiny');
    for (const file of ['san.pt', 'text_encoder.pt']) {
      expect(fs.readFileSync(path.join(out, file)).equals(fs.readFileSync(path.join(tempDir(), 'imported', file))))
        .toBe(true);
    }
  });

  test('float16 weights: the Python export\'s outputs on every reference case', async () => {
    const out = path.join(tempDir(), 'format-half');
    await importCheckpoint(path.join(tempDir(), 'formats', 'half.pth'), out, { architectures, vocab: tinyVocab });
    expectSameManifest(out, path.join(tempDir(), 'python-half'));
    expect(await expectSameOutputs(out, path.join(tempDir(), 'python-half'))).toBeGreaterThanOrEqual(10);
  });
});

describe('files that are not SAN checkpoints', () => {
  const cases: Array<[string, RegExp]> = [
    ['random.zip', /cannot be read as a PyTorch checkpoint \(a torch\.save zip archive\): file in archive is not in a subdirectory/],
    ['text.pth', /cannot be read as a PyTorch checkpoint .*not a ZIP archive/],
    ['truncated.pth', /cannot be read as a PyTorch checkpoint .*central directory/],
    ['legacy.pth', /is in the legacy torch\.save format \(PyTorch < 1\.6\)/],
    ['not_weights.pth', /is not a state dict: losses, note are not tensors/],
    ['other_model.pth', /matches no SAN variant\. It has clip_visual_extractor\.conv1\.weight missing, .* Expected, in that order, tiny: 64x3x16x16, 17x64, 1x16x48, 768x32/],
    ['missing_key.pth', /\(as tiny\) does not match the model: 1 missing keys: side_adapter_network\.query_embed; 1 unexpected keys: extra\.weight$/],
  ];

  test.each(cases)('%s: a SanError ERR_SAN_MODEL_LOAD that says why', async (name, message) => {
    const file = path.join(tempDir(), 'bad', name);
    const out = path.join(tempDir(), `refused-${name}`);
    const error = await importCheckpoint(file, out, { architectures, vocab: tinyVocab }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SanError);
    expect((error as SanError).code).toBe(ErrorCode.MODEL_LOAD);
    expect((error as SanError).message).toMatch(message);
    expect((error as SanError).message).toContain(file);
    expect(fs.existsSync(path.join(out, 'manifest.json'))).toBe(false);
  });

  test('the CLI reports one line and exits 1', () => {
    const run = runImport(importArgs(path.join(tempDir(), 'bad', 'other_model.pth'), path.join(tempDir(), 'x')), PATH);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^san-seg: .*other_model\.pth matches no SAN variant\. [^\n]*\n$/);
  });

  test('a tensor view whose extent overflows int64 is refused with ERR_SAN_SHAPE, not a process abort', () => {
    // Any torch.save-style archive will do: a TorchScript file holds its weights as data/<n> records too.
    const archive = path.join(testModelsDir, 'tiny', 'san.pt');
    const view = { record: '0', dtype: 'float32', offset: 0, sizes: [512], strides: [2 ** 53 - 1] };
    expect(() => importBinding().readCheckpointTensor(archive, view)).toThrow(expect.objectContaining({
      code: ErrorCode.SHAPE, message: 'record 0: the view reaches past the end of its storage data/0',
    }));
    // Within the record, the same entry reads.
    expect(importBinding().readCheckpointTensor(archive, { ...view, sizes: [2], strides: [1] }).dims).toEqual([2]);
  });

  test('a missing file', async () => {
    await expect(importCheckpoint(path.join(tempDir(), 'nope.pth'), tempDir()))
      .rejects.toMatchObject({ code: ErrorCode.MODEL_LOAD, message: expect.stringMatching(/nope\.pth does not exist$/) });
  });
});

describe('arguments', () => {
  const checkpoint = (): string => path.join(tempDir(), 'checkpoint.pth');

  test('unknown, mistyped and out-of-range options are refused before any work', async () => {
    await expect(importCheckpoint(checkpoint(), tempDir(), { vocabulary: 'x' } as never))
      .rejects.toMatchObject({ name: 'RangeError', code: ErrorCode.INVALID_ARG, message: expect.stringMatching(/options\.vocabulary/) });
    await expect(importCheckpoint(checkpoint(), tempDir(), { vocab: 3 } as never))
      .rejects.toMatchObject({ name: 'TypeError', code: ErrorCode.INVALID_ARG });
    await expect(importCheckpoint(checkpoint(), '')).rejects.toMatchObject({ name: 'TypeError' });
    await expect(importCheckpoint(checkpoint(), tempDir(), { architectures, variant: 'vit_h_14' }))
      .rejects.toMatchObject({ name: 'RangeError', message: expect.stringMatching(/one of: auto, tiny for options\.variant but received 'vit_h_14'/) });
  });

  test('a vocabulary of another size than the text tower is refused', async () => {
    const error = await importCheckpoint(checkpoint(), path.join(tempDir(), 'v'), { architectures })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.MODEL_LOAD,
      message: expect.stringMatching(/gives 49408 tokens but the tiny text encoder has 768/) });
  });

  test('CLI: --help, and a missing --out is a usage error (exit 2)', () => {
    expect(runImport(['--help'], PATH).stdout).toMatch(/^Usage: san-seg import --checkpoint FILE\.pth --out DIR/);
    const run = runImport(['--checkpoint', checkpoint()], PATH);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('-o/--out is required');
  });
});
