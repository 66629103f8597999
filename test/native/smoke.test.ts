// SPDX-License-Identifier: Apache-2.0
// The binary the tests load is the one the package's install path builds: node-gyp through scripts/install.js
// (scripts/setup.sh runs it), found by node-gyp-build the way an installed package finds it.
import * as path from 'node:path';
import { addonPath, loadAddon } from '../../lib/runtime/native';
import { addonPath as testedAddon, repoRoot } from '../helpers/paths';
import { expectTensorClose, nativeModelsDir, readCases } from './support';

test('the loader picks the node-gyp build in build/Release, which the tests load too', () => {
  const saved = process.env.SAN_ADDON;
  delete process.env.SAN_ADDON;
  try {
    expect(addonPath()).toBe(path.join(repoRoot, 'build', 'Release', 'san_node.node'));
  } finally {
    if (saved !== undefined) process.env.SAN_ADDON = saved;
  }
  if (saved === undefined) expect(testedAddon).toBe(addonPath());
});

test('it was built by node-gyp, loads, reports its LibTorch, and runs a float32 case like Python', async () => {
  const binding = loadAddon(testedAddon);
  expect(binding.versions()).toMatchObject({
    builder: 'node-gyp', libtorch: expect.stringMatching(/^\d+\.\d+\.\d+/), napi: 8,
  });
  const [linear] = readCases(path.join(nativeModelsDir, 'cases.json')).filter((c) => c.module === 'affine.pt');
  const model = new binding.NativeModel({ device: 'auto', dtype: 'float32', threads: 1, queueLimit: 4 });
  await model.load({ 'affine.pt': path.join(nativeModelsDir, 'affine.pt') });
  const options = { float32Outputs: false, copyOutputs: false };
  const result = await model.run('affine.pt', 'forward', linear.inputs, options);
  expectTensorClose(result, linear.outputs[0]);
  await model.dispose();
  await expect(model.run('affine.pt', 'forward', linear.inputs, options)).rejects.toMatchObject({
    code: 'ERR_SAN_DISPOSED',
  });
});
