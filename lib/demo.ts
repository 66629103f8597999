// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run demo`: segments the sample beach scene with the default model, once through the API and once through
 * the `san-seg` CLI, and prints where the overlays went.
 *
 * The model is `--model DIR` or `SAN_MODEL=DIR` when given (an exported official model), else the `tiny` test model,
 * whose weights are random: its labels show that the pipeline runs end to end, not what is in the picture.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { SanModel } from './model';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'out');
const TINY = path.join(ROOT, process.env.SAN_TEST_MODELS ?? path.join('build', 'test-models'), 'tiny');
const SCENE = path.join(ROOT, 'assets', 'sample-scene.svg');
const CLASSES = ['sky', 'sun', 'sea', 'sand, beach', 'boat', 'sail', 'palm tree'];

function modelDir(argv: readonly string[]): string {
  const flag = argv.indexOf('--model');
  if (flag >= 0 && argv[flag + 1]) return path.resolve(argv[flag + 1]);
  return process.env.SAN_MODEL ? path.resolve(process.env.SAN_MODEL) : TINY;
}

async function main(): Promise<void> {
  const dir = modelDir(process.argv.slice(2));
  await fsp.mkdir(OUT, { recursive: true });
  const image = path.join(OUT, 'sample-scene.png');
  await sharp(SCENE).png().toFile(image);

  const model = await SanModel.load(dir);
  if (model.manifest.variant === 'tiny') {
    console.log('Note: the default model is the tiny test model, whose weights are RANDOM: the labels below show the\n' +
      'pipeline running end to end, not what is in the picture. Export official SAN weights with\n' +
      '`npx san-seg export --checkpoint san_vit_b_16.pth --out models/vit_b_16` and run\n' +
      '`SAN_MODEL=models/vit_b_16 npm run demo` for a real segmentation.\n');
  }
  try {
    const result = await model.segment(image, { classes: CLASSES });
    const overlay = path.join(OUT, 'demo-overlay.png');
    await fsp.writeFile(overlay, await result.toPng());
    const shares = result.shares().filter(({ share }) => share > 0).sort((a, b) => b.share - a.share);
    console.log(`API: segmented ${path.relative(ROOT, image)} (${result.width}×${result.height}) with the ` +
      `${model.manifest.variant} model on ${model.device}:`);
    for (const { name, share } of shares) console.log(`  ${name.padEnd(12)} ${(share * 100).toFixed(1)}%`);
    console.log(`Overlay written to ${overlay}\n`);
  } finally {
    await model.dispose();
  }

  const cliOut = path.join(OUT, 'cli');
  console.log(`CLI: san-seg segment ${path.relative(ROOT, image)} --model ${path.relative(ROOT, dir) || '.'} -o ${path.relative(ROOT, cliOut)}`);
  execFileSync(process.execPath, [path.join(__dirname, 'cli.js'), 'segment', image, '--model', dir,
    '--classes', CLASSES.join(';'), '-o', cliOut], { stdio: 'inherit' });
}

main().catch((error: Error) => {
  console.error(`demo: ${error.message}`);
  process.exitCode = 1;
});
