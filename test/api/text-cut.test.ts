// SPDX-License-Identifier: Apache-2.0
// Text encoding cuts each call at its longest prompt (and groups prompts by length): the class embeddings must equal
// those of prompts padded to the whole context, as the exporter's reference encodes them, to 1e-6.
import * as path from 'node:path';
import { SanModel } from '../../lib/segment/model';
import { ensembleTemplates, promptsFor, VILD_TEMPLATES } from '../../lib/segment/prompts';
import { ClipTokenizer } from '../../lib/segment/tokenizer';
import { tensor, Tensor } from '../../lib/runtime/tensor';
import { TorchModel } from '../../lib/runtime/torch-model';
import { testRuntime } from '../helpers/device';
import { tinyModelDir } from '../native/support';

// Names of very different token lengths, so that the calls are cut at different lengths.
const CLASSES = ['sky', 'a very long and winding mountain road with many hairpin turns', 'tree', 'person, someone',
  'traffic light', 'x'];

test('class embeddings of prompts cut at the longest equal those padded to the context, to 1e-6', async () => {
  const model = await SanModel.load(tinyModelDir, { ...testRuntime('float32'), textCache: false });
  const text = await TorchModel.load({ text: path.join(tinyModelDir, 'text_encoder.pt') }, testRuntime('float32'));
  try {
    const cut = await model.encodeText(CLASSES, { templates: 'vild' });
    const tokenizer = ClipTokenizer.fromFile(path.join(tinyModelDir, 'bpe_vocab.txt.gz'));
    const { ids, dims } = tokenizer.tokenize(CLASSES.flatMap((name) => promptsFor(name, VILD_TEMPLATES)),
      model.manifest.text.context_length);
    expect(dims[1]).toBe(model.manifest.text.context_length);
    const full = (await text.run('text', 'forward', [tensor('int64', dims, ids)])) as Tensor<'float32'>;
    const expected = ensembleTemplates(full.data, VILD_TEMPLATES.length, model.manifest.dims.embed_dim);
    expect(cut.dims).toEqual([CLASSES.length, model.manifest.dims.embed_dim]);
    const worst = cut.data.reduce((most, value, i) => Math.max(most, Math.abs(value - expected[i])), 0);
    expect(worst).toBeLessThanOrEqual(1e-6);
  } finally {
    await Promise.all([model.dispose(), text.dispose()]);
  }
});

test('tokenize pads to the longest row when asked', () => {
  const tokenizer = ClipTokenizer.fromFile(path.join(tinyModelDir, 'bpe_vocab.txt.gz'));
  const full = tokenizer.tokenize(['sky', 'a red car'], 32);
  const cut = tokenizer.tokenize(['sky', 'a red car'], 32, { padToLongest: true });
  const width = cut.dims[1];
  expect(cut.dims[0]).toBe(2);
  expect(width).toBe(2 + tokenizer.encode('a red car').length);
  for (let row = 0; row < 2; row += 1) {
    expect(cut.ids.subarray(row * width, (row + 1) * width)).toEqual(full.ids.subarray(row * 32, row * 32 + width));
  }
});
