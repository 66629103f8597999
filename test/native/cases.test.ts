// SPDX-License-Identifier: Apache-2.0
// Every case written by Python beside the modules it calls: the native results must equal the scripted modules'.
// native/: round trips of every tensor type and small numeric modules, in float32 on the test device. tiny/: the SAN
// model's own exported methods, in the test dtype (SAN_TEST_DTYPE) with its tolerance.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelDtype, TorchModel } from '../../lib/runtime/torch-model';
import { fixtureTolerance, labelTolerance, testDevice, testDtype } from '../helpers/device';
import {
  expectLabelsNearArgmax, expectTensorClose, flattenTensors, moduleFiles, nativeModelsDir, readCases, tinyModelDir,
} from './support';

const SUITES: Array<{ title: string; dir: string; casesFile: string; dtype: ModelDtype }> = [
  {
    title: `native test modules (${testDevice}, float32)`,
    dir: nativeModelsDir,
    casesFile: path.join(nativeModelsDir, 'cases.json'),
    dtype: 'float32',
  },
  {
    title: `tiny SAN export (parity with Python; ${testDevice}, ${testDtype})`,
    dir: tinyModelDir,
    casesFile: path.join(tinyModelDir, 'reference', 'cases.json'),
    dtype: testDtype,
  },
];

for (const { title, dir, casesFile, dtype } of SUITES) {
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
      model = await TorchModel.load(moduleFiles(dir, modules), { device: testDevice, dtype });
    });
    afterAll(() => model?.dispose());

    test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, { module, method, inputs, outputs }) => {
      // A float16 model answers in float16; the fixtures are float32.
      const result = await model.run(module, method, inputs, { float32Outputs: dtype !== 'float32' });
      const tensors = flattenTensors(result);
      expect(tensors).toHaveLength(outputs.length);
      tensors.forEach((tensor, i) => {
        // postprocess's labels are the argmax of its scores (the output before them): a near tie may go either way.
        if (method === 'postprocess' && i === 1) {
          expect({ type: tensor.type, dims: tensor.dims }).toEqual({ type: outputs[i].type, dims: outputs[i].dims });
          expectLabelsNearArgmax(tensor.data as BigInt64Array, outputs[i].data as BigInt64Array, outputs[0],
            labelTolerance(dtype));
        } else {
          expectTensorClose(tensor, outputs[i], fixtureTolerance(dtype));
        }
      });
    });
  });
}
