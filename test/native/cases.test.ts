// SPDX-License-Identifier: Apache-2.0
// Every case written by Python beside the modules it calls: the native results must equal the scripted modules'.
// native/: round trips of every tensor type and small numeric modules. tiny/: the SAN model's own exported methods.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TorchModel } from '../../lib/torch-model';
import { expectTensorClose, flattenTensors, moduleFiles, nativeModelsDir, readCases, tinyModelDir } from './support';

const SUITES = [
  { title: 'native test modules', dir: nativeModelsDir, casesFile: path.join(nativeModelsDir, 'cases.json') },
  {
    title: 'tiny SAN export (parity with Python)',
    dir: tinyModelDir,
    casesFile: path.join(tinyModelDir, 'reference', 'cases.json'),
  },
];

for (const { title, dir, casesFile } of SUITES) {
  describe(title, () => {
    if (!fs.existsSync(casesFile)) {
      const reason = `${path.relative(process.cwd(), casesFile)} does not exist yet (bash scripts/setup.sh writes it)`;
      test.skip(reason, () => undefined);
      return;
    }
    const cases = readCases(casesFile);
    let model: TorchModel;

    beforeAll(async () => {
      const modules = [...new Set(cases.map((c) => c.module))];
      model = await TorchModel.load(moduleFiles(dir, modules), { device: 'cpu' });
    });
    afterAll(() => model?.dispose());

    test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, { module, method, inputs, outputs }) => {
      const result = await model.run(module, method, inputs);
      const tensors = flattenTensors(result);
      expect(tensors).toHaveLength(outputs.length);
      tensors.forEach((tensor, i) => expectTensorClose(tensor, outputs[i]));
    });
  });
}
