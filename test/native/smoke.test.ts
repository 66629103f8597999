// SPDX-License-Identifier: Apache-2.0
// The same short check on each build of the addon: cmake-js's (what lib/ loads) and node-gyp's (staged in build-gyp/
// by scripts/setup.sh), so that both build files stay in step with the sources.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAddon } from '../../lib/runtime/native';
import { addonPath } from '../helpers/paths';
import { expectTensorClose, gypAddonPath, nativeModelsDir, readCases } from './support';

const BUILDS = [
  ['cmake-js', addonPath],
  ['node-gyp', gypAddonPath],
] as const;

for (const [builder, file] of BUILDS) {
  describe(`${builder} build`, () => {
    if (!fs.existsSync(file)) {
      test.skip(`${path.relative(process.cwd(), file)} is not built (scripts/setup.sh builds it)`, () => undefined);
      return;
    }

    test('loads, reports its LibTorch, and runs a float32 case like Python', async () => {
      const binding = loadAddon(file);
      expect(binding.versions()).toMatchObject({ libtorch: expect.stringMatching(/^\d+\.\d+\.\d+/), napi: 8 });
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
  });
}
