// SPDX-License-Identifier: Apache-2.0
// A CUDA device this build or machine cannot give is refused at load with SanError ERR_SAN_DEVICE, by SanModel.load
// and by the low-level TorchModel.load alike, naming the device asked for. Without CUDA the plain 'cuda' and an
// index ('cuda:1') are both asked; with it, the index one past the last visible GPU (which no machine has).
// test/native/errors.test.ts checks TorchModel's reasons word for word; test/api/model.test.ts loads on a GPU.
import { ErrorCode, SanError } from '../../lib/errors';
import { binding } from '../../lib/runtime/native';
import { TorchModel } from '../../lib/runtime/torch-model';
import { SanModel } from '../../lib/segment/model';
import { moduleFiles, nativeModelsDir, tinyModelDir } from '../native/support';

const count = binding().cudaDeviceCount();
const devices = count === 0 ? ['cuda', 'cuda:1'] : [`cuda:${count}`];

describe.each(devices)("device '%s'", (device) => {
  const refused = (failure: Promise<unknown>): Promise<void> =>
    expect(failure).rejects.toThrow(expect.objectContaining({ name: 'SanError', code: ErrorCode.DEVICE,
      message: expect.stringMatching(new RegExp(`^Device '${device}' was requested, but `)) }));

  test('SanModel.load refuses it with ERR_SAN_DEVICE', async () => {
    const failure = SanModel.load(tinyModelDir, { device });
    await expect(failure).rejects.toBeInstanceOf(SanError);
    await refused(failure);
  });

  test('TorchModel.load refuses it with ERR_SAN_DEVICE', async () => {
    const failure = TorchModel.load(moduleFiles(nativeModelsDir, ['identity.pt']), { device });
    await expect(failure).rejects.toBeInstanceOf(SanError);
    await refused(failure);
  });
});
