// SPDX-License-Identifier: Apache-2.0
// `san-seg import` on full-size random checkpoints of both shipped variants, ViT-B/16 and ViT-L/14@336, into the
// package's own architecture templates, with no Python on PATH: the folder gives the Python exporter's outputs on
// the reference cases (72 x 100 images) within 1e-6. The checkpoints are large (0.6 and 1.7 GB) and are deleted
// with the temporary folder after each variant.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  clipVocab, expectNoPython, expectSameManifest, expectSameOutputs, makeFixtures, pathWithoutPython, runImport,
} from './support';

// Python builds, saves and exports the model, then node imports it: minutes for ViT-L on a 2-core CPU.
const SETUP_TIMEOUT_MS = 30 * 60 * 1000;

describe.each([
  ['vit_b_16'],
  ['vit_l_14_336'],
])('san-seg import %s (full size, no Python on PATH)', (variant) => {
  let dir: string;
  let out: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `san-import-${variant}-`));
    makeFixtures(variant, dir, clipVocab);
    const PATH = pathWithoutPython(dir);
    expectNoPython(PATH);
    out = path.join(dir, 'imported');
    // No --architectures, no --vocab: the package's own.
    const run = runImport(['--checkpoint', path.join(dir, 'checkpoint.pth'), '--out', out], PATH);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toContain(`Imported ${variant} to ${out}`);
    fs.rmSync(path.join(dir, 'checkpoint.pth'));
  }, SETUP_TIMEOUT_MS);

  afterAll(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('writes the manifest the Python exporter writes', () => {
    expectSameManifest(out, path.join(dir, 'python'));
  });

  test('gives the Python export\'s outputs on every reference case (<= 1e-6 relative)', async () => {
    expect(await expectSameOutputs(out, path.join(dir, 'python'))).toBeGreaterThanOrEqual(10);
  });
});
