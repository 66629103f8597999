// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run demo`: segments a sample scene with the default model, once through the API and once through the
 * `san-seg` CLI, and prints where the overlays went.
 *
 * The default model is `models/default`, a small SAN trained from a seed on the procedural world of
 * models/procedural (docs/procedural-world.md). Its sample scene shows only colour–shape pairs that were held out
 * of SAN's training, and the demo prompts exactly those names, then scores the result against the scene's ground
 * truth. `--model DIR` or `SAN_MODEL=DIR` picks another model folder (an exported official model, or the tiny test
 * model with random weights); a model of any other variant segments the beach scene with everyday class names.
 * @module
 */
// First: sizes libuv's pool before anything can start it.
import './host-threads';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { ConfusionMatrix } from '../eval/metrics';
import { PACKAGE_ROOT } from '../package-root';
import { SanModel } from '../segment/model';

const ROOT = PACKAGE_ROOT;
const OUT = path.join(ROOT, 'out');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'default');
const PROCEDURAL_SCENE = path.join(ROOT, 'assets', 'procedural-scene.png');
const BEACH_SCENE = path.join(ROOT, 'assets', 'sample-scene.svg');
const BEACH_CLASSES = ['sky', 'sun', 'sea', 'sand, beach', 'boat', 'sail', 'palm tree'];

/** What the demo segments: a scene, the prompts, and the scene's ground truth when it has one. */
interface Sample {
  image: string;
  classes: string[];
  labels?: string;
}

function modelDir(argv: readonly string[]): string {
  const flag = argv.indexOf('--model');
  if (flag >= 0 && argv[flag + 1]) return path.resolve(argv[flag + 1]);
  return process.env.SAN_MODEL ? path.resolve(process.env.SAN_MODEL) : DEFAULT_MODEL;
}

/** The procedural scene for a model of that world; the beach, rasterised to out/, for any other. */
async function sampleFor(variant: string): Promise<Sample> {
  if (variant === 'procedural') {
    const stem = PROCEDURAL_SCENE.slice(0, -'.png'.length);
    const classes = (await fsp.readFile(`${stem}-classes.txt`, 'utf8')).split('\n').filter(Boolean);
    return { image: PROCEDURAL_SCENE, classes, labels: `${stem}-labels.png` };
  }
  const image = path.join(OUT, 'sample-scene.png');
  await sharp(BEACH_SCENE).png().toFile(image);
  return { image, classes: BEACH_CLASSES };
}

/** Per-class IoU and pixel accuracy of `predicted` against the grey label PNG at `truthPath`. */
async function score(predicted: Uint16Array, truthPath: string, classes: readonly string[]): Promise<string[]> {
  const { data } = await sharp(truthPath).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  const matrix = new ConfusionMatrix(classes.length);
  matrix.add(predicted, new Uint8Array(data.buffer, data.byteOffset, data.length));
  const { mIoU, pACC, iou } = matrix.metrics();
  return [
    ...classes.map((name, i) => `  ${name.padEnd(16)} IoU ${iou[i] === null ? '-' : iou[i]!.toFixed(1)}%`),
    `  mIoU ${mIoU.toFixed(1)}%, pixel accuracy ${pACC.toFixed(1)}% against the scene's ground truth`,
  ];
}

async function main(): Promise<void> {
  const dir = modelDir(process.argv.slice(2));
  await fsp.mkdir(OUT, { recursive: true });

  const model = await SanModel.load(dir);
  const variant = model.manifest.variant;
  if (variant === 'tiny') {
    console.log('Note: this is the tiny test model, whose weights are RANDOM: the labels below show the pipeline\n' +
      'running end to end, not what is in the picture. Run `npm run demo` without --model for the trained\n' +
      'default model, or export official SAN weights with\n' +
      '`npx san-seg export --checkpoint san_vit_b_16.pth --out models/vit_b_16` and run\n' +
      '`SAN_MODEL=models/vit_b_16 npm run demo`.\n');
  }
  const sample = await sampleFor(variant);
  if (variant === 'procedural') {
    console.log('The default model is a small SAN trained on a procedural world of coloured shapes. The pairs\n' +
      `prompted here (${sample.classes.slice(1).join(', ')}) were held out of SAN's training: its side\n` +
      'network never saw them drawn or named, and only its CLIP, pre-trained on the whole world as CLIP is on\n' +
      'the web, knows the words.\n');
  }
  try {
    const result = await model.segment(sample.image, { classes: sample.classes });
    const overlay = path.join(OUT, 'demo-overlay.png');
    await fsp.writeFile(overlay, await result.toPng());
    const shares = result.shares().filter(({ share }) => share > 0).sort((a, b) => b.share - a.share);
    console.log(`API: segmented ${path.relative(ROOT, sample.image)} (${result.width}×${result.height}) with the ` +
      `${variant} model on ${model.device}:`);
    for (const { name, share } of shares) console.log(`  ${name.padEnd(16)} ${(share * 100).toFixed(1)}%`);
    if (sample.labels) console.log((await score(result.labels.data, sample.labels, sample.classes)).join('\n'));
    console.log(`Overlay written to ${overlay}\n`);
  } finally {
    await model.dispose();
  }

  const cliOut = path.join(OUT, 'cli');
  console.log(`CLI: san-seg segment ${path.relative(ROOT, sample.image)} --model ${path.relative(ROOT, dir) || '.'} ` +
    `-o ${path.relative(ROOT, cliOut)}`);
  execFileSync(process.execPath, [path.join(__dirname, 'main.js'), 'segment', sample.image, '--model', dir,
    '--classes', sample.classes.join(';'), '-o', cliOut], { stdio: 'inherit' });
}

main().catch((error: Error) => {
  console.error(`demo: ${error.message}`);
  process.exitCode = 1;
});
