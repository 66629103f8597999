// SPDX-License-Identifier: Apache-2.0
// san-seg eval through main() in-process on the tiny model and a generated benchmark folder: the table and --json
// against the library's evaluate(), progress, resuming from --results, 16-bit TIFF labels, bad folders, bad usage.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../lib/cli/main';
import { EvalSummary } from '../../lib/cli/eval';
import { evaluate, EvaluationResult } from '../../lib/eval/evaluate';
import { SanModel } from '../../lib/segment/model';
import { captureIo, lines } from '../helpers/cli-io';
import { bandLabels, bandsImage, writeLabels } from '../helpers/label-maps';
import { tinyModelDir } from '../native/support';

const CLASSES = ['sky', 'sea, ocean', 'sand'];
/** [stem, height, width, ignored pixels] */
const DATASET = [['beach', 48, 64, 0], ['cove', 40, 30, 7], ['dune', 33, 50, 50]] as const;

let tmp: string;
let images: string;
let labels: string;
let classesFile: string;
/** What evaluate() gives on the whole folder: the figures the CLI must print. */
let expected: EvaluationResult;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'san-cli-eval-'));
  images = path.join(tmp, 'images');
  labels = path.join(tmp, 'labels');
  fs.mkdirSync(images);
  fs.mkdirSync(labels);
  for (const [stem, height, width, ignored] of DATASET) {
    await bandsImage(height, width).jpeg().toFile(path.join(images, `${stem}.jpg`));
    await writeLabels(path.join(labels, `${stem}.png`), bandLabels(height, width, ignored), width);
  }
  classesFile = path.join(tmp, 'classes.txt');
  fs.writeFileSync(classesFile, `${CLASSES.join('\n')}\n`);
  const model = await SanModel.load(tinyModelDir, { device: 'cpu', threads: 1 });
  try {
    expected = await evaluate(model, { images, labels }, { classes: CLASSES });
  } finally {
    await model.dispose();
  }
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The arguments of an eval of the tiny model on the CPU; `rest` adds or overrides. */
function evalArgs(labelDir: string, ...rest: string[]): string[] {
  return ['eval', '--model', tinyModelDir, '--images', images, '--labels', labelDir, '--classes-file', classesFile,
    '--device', 'cpu', '--threads', '1', ...rest];
}

async function run(argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const io = captureIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

/** Runs eval with --json and parses what it printed. */
async function runJson(argv: string[]): Promise<{ summary: EvalSummary; err: string }> {
  const { status, out, err } = await run([...argv, '--json']);
  expect({ status, err: status === 0 ? '' : err }).toEqual({ status: 0, err: '' });
  return { summary: JSON.parse(out) as EvalSummary, err };
}

describe('san-seg eval on a generated benchmark folder', () => {
  test('prints the figures of evaluate() as a table, with one progress line per image', async () => {
    const { status, out, err } = await run(evalArgs(labels));
    expect(status).toBe(0);
    const pixels = DATASET.reduce((sum, [, h, w, ignored]) => sum + h * w - ignored, 0);
    expect(out).toContain(`images  3 (${pixels} labelled pixels)\n`);
    for (const [name, value] of [['mIoU', expected.mIoU], ['fwIoU', expected.fwIoU], ['mACC', expected.mACC],
      ['pACC', expected.pACC]] as const) {
      expect(out).toMatch(new RegExp(`^${name} +${value.toFixed(2)}$`, 'm'));
    }
    CLASSES.forEach((name, c) => {
      const figure = (value: number | null): string => (value === null ? '-' : value.toFixed(2));
      expect(out).toMatch(new RegExp(`^${name} +${figure(expected.iou[c])} +${figure(expected.acc[c])}$`, 'm'));
    });
    expect(lines(err)).toEqual(['[1/3] beach.jpg', '[2/3] cove.jpg', '[3/3] dune.jpg']);
  });

  test('--json prints the same figures as JSON, and --limit scores the first images only', async () => {
    const { summary } = await runJson(evalArgs(labels));
    expect(summary).toMatchObject({
      model: tinyModelDir, images, labels,
      count: { images: 3, pixels: expected.pixels },
      mIoU: expected.mIoU, fwIoU: expected.fwIoU, mACC: expected.mACC, pACC: expected.pACC,
      mIoULabelled: expected.mIoULabelled,
    });
    expect(summary.perClass).toEqual(CLASSES.map((name, c) => ({ name, iou: expected.iou[c], acc: expected.acc[c] })));
    const { summary: two } = await runJson(evalArgs(labels, '--limit', '2'));
    expect(two.count.images).toBe(2);
  });

  test('--results: an interrupted run resumes where it stopped and gives the figures of one whole run', async () => {
    const results = path.join(tmp, 'resume.jsonl');
    const first = await runJson(evalArgs(labels, '--results', results, '--limit', '2'));
    expect(first.summary.count.images).toBe(2);
    const written = lines(fs.readFileSync(results, 'utf8'));
    expect(written).toHaveLength(3); // the header, then beach and cove
    expect(JSON.parse(written[0])).toMatchObject({ format: 'san-seg eval results', classes: CLASSES });
    expect(written.slice(1).map((line) => (JSON.parse(line) as { image: string }).image)).toEqual(['beach', 'cove']);
    // A run killed while writing leaves half a line: it is dropped, and that image is scored again.
    fs.appendFileSync(results, '{"image":"dune","coun');

    const io = captureIo();
    await expect(main([...evalArgs(labels, '--results', results), '--json'], io)).resolves.toBe(0);
    expect(lines(io.err())).toEqual([
      `san-seg: 2 of 3 images already scored in ${results}; scoring the other 1`,
      '[1/1] dune.jpg',
    ]);
    const resumed = JSON.parse(io.out()) as EvalSummary;
    expect(resumed).toMatchObject({
      count: { images: 3, pixels: expected.pixels },
      mIoU: expected.mIoU, fwIoU: expected.fwIoU, mACC: expected.mACC, pACC: expected.pACC,
    });
    expect(lines(fs.readFileSync(results, 'utf8'))).toHaveLength(4);
    // Everything is in the file now: a third run segments nothing.
    const again = await run([...evalArgs(labels, '--results', results), '--json']);
    expect(lines(again.err)).toEqual([`san-seg: 3 of 3 images already scored in ${results}; scoring the other 0`]);
    expect((JSON.parse(again.out) as EvalSummary).mIoU).toBe(expected.mIoU);
  });

  test('EXPECTED FAILURE - a results file made with other classes, or not a results file, is refused', async () => {
    const results = path.join(tmp, 'other.jsonl');
    await runJson(evalArgs(labels, '--results', results, '--limit', '1'));
    const other = await run(['eval', '--model', tinyModelDir, '--images', images, '--labels', labels,
      '--classes', 'sky;sea;sand', '--device', 'cpu', '--results', results]);
    expect(other.status).toBe(1);
    expect(lines(other.err)).toEqual([`san-seg: --results ${results} holds counts made with another classes; ` +
      'name another file, or remove it to start over']);
    const notResults = path.join(tmp, 'notes.txt');
    fs.writeFileSync(notResults, '{"hello":1}\n');
    const refused = await run(evalArgs(labels, '--results', notResults));
    expect(refused.status).toBe(1);
    expect(refused.err).toMatch(/^san-seg: --results .*notes\.txt is not a san-seg eval results file/);
  });

  test('16-bit TIFF label maps ignore 65535, as ADE-847 and PC-459 are prepared', async () => {
    const tiffs = path.join(tmp, 'labels-tiff');
    fs.mkdirSync(tiffs);
    for (const [stem, height, width, ignored] of DATASET) {
      const values = bandLabels(height, width, ignored + 3).map((v) => (v === 255 ? 65535 : v));
      await writeLabels(path.join(tiffs, `${stem}.tif`), values, width, 'tiff16');
    }
    const { summary } = await runJson(evalArgs(tiffs));
    expect(summary.count).toEqual({ images: 3, pixels: expected.pixels - 3 * 3 });
  });

  test("--pair-by labels scores only the images that have a label map, as VOC's JPEGImages needs", async () => {
    const some = path.join(tmp, 'labels-some');
    fs.mkdirSync(some);
    fs.copyFileSync(path.join(labels, 'cove.png'), path.join(some, 'cove.png'));
    const { summary } = await runJson(evalArgs(some, '--pair-by', 'labels'));
    expect(summary.count.images).toBe(1);
  });
});

describe('san-seg eval: bad folders fail with one line naming the file', () => {
  /** A copy of the label folder with `stem`'s label map replaced by `values` (width `width`), or removed. */
  async function brokenLabels(name: string, stem: string, values?: number[], width?: number): Promise<string> {
    const dir = path.join(tmp, name);
    fs.cpSync(labels, dir, { recursive: true });
    fs.rmSync(path.join(dir, `${stem}.png`));
    if (values !== undefined && width !== undefined) await writeLabels(path.join(dir, `${stem}.png`), values, width);
    return dir;
  }

  test('EXPECTED FAILURE - an image without its label map', async () => {
    const dir = await brokenLabels('labels-missing', 'cove');
    const { status, out, err } = await run(evalArgs(dir));
    expect(status).toBe(1);
    expect(out).toBe('');
    expect(lines(err)).toEqual([`san-seg: No label map for the image ${path.join(images, 'cove.jpg')}: expected ` +
      `${path.join(dir, 'cove')}.png, .tif or .tiff`]);
  });

  test('EXPECTED FAILURE - a label map of another size than its image', async () => {
    const dir = await brokenLabels('labels-size', 'dune', bandLabels(32, 50), 50);
    const { status, err } = await run(evalArgs(dir));
    expect(status).toBe(1);
    expect(lines(err).at(-1)).toBe(`san-seg: The image ${path.join(images, 'dune.jpg')} is 50×33 pixels but its ` +
      `label map ${path.join(dir, 'dune.png')} is 50×32: a label map must have its image's size`);
  });

  test('EXPECTED FAILURE - a label value out of range; the images before it stay in --results', async () => {
    const values = bandLabels(40, 30);
    values[2 * 30 + 4] = 3;
    const dir = await brokenLabels('labels-range', 'cove', values, 30);
    const results = path.join(tmp, 'range.jsonl');
    const { status, out, err } = await run(evalArgs(dir, '--results', results));
    expect(status).toBe(1);
    expect(out).toBe('');
    expect(lines(err)).toEqual(['[1/3] beach.jpg', `san-seg: The label map ${path.join(dir, 'cove.png')} has the ` +
      'value 3 at x 4, y 2, neither a class index in [0, 2] nor the ignore value 255 (is the class list complete, ' +
      'and is the ignore value right?)']);
    expect(lines(fs.readFileSync(results, 'utf8'))).toHaveLength(2); // the header and beach
    // With 3 as the ignore value, that pixel is left out (beach and cove hold no 255, which would then be refused).
    const ignored = await runJson(evalArgs(dir, '--ignore', '3', '--limit', '2'));
    expect(ignored.summary.count.pixels).toBe(48 * 64 + 40 * 30 - 1);
  });

  test('EXPECTED FAILURE - a folder that does not exist fails before the model loads', async () => {
    const missing = path.join(tmp, 'no-such-folder');
    const { status, err } = await run(evalArgs(missing));
    expect(status).toBe(1);
    expect(err).toMatch(new RegExp(`^san-seg: Could not list the label maps in ${missing}: ENOENT`));
  });
});

describe('san-seg eval: help and bad usage', () => {
  test('eval --help and help eval print the usage', async () => {
    for (const argv of [['eval', '--help'], ['help', 'eval']]) {
      const { status, out, err } = await run(argv);
      expect(status).toBe(0);
      expect(out).toMatch(/^Usage: san-seg eval --model DIR --images DIR --labels DIR --classes LIST\|--classes-file /);
      expect(err).toBe('');
    }
    expect((await run(['--help'])).out).toMatch(/^ {2}eval {7}score a model on a benchmark/m);
  });

  const base = ['--model', 'm', '--images', 'i', '--labels', 'l'];
  test.each([
    ['--images missing', ['--model', 'm', '--labels', 'l', '--classes', 'a'], /--images is required/],
    ['--labels missing', ['--model', 'm', '--images', 'i', '--classes', 'a'], /--labels is required/],
    ['--model missing', ['--images', 'i', '--labels', 'l', '--classes', 'a'], /--model is required/],
    ['no classes', base, /--classes or --classes-file is required/],
    ['a repeated class', [...base, '--classes', 'a;b;a'], /--classes names the class 'a' twice/],
    ['an ignore value above 16 bits', [...base, '--classes', 'a', '--ignore', '65536'],
      /--ignore must be an integer from 0 to 65535 \(got '65536'\)/],
    ['a negative ignore value', [...base, '--classes', 'a', '--ignore=-1'],
      /--ignore must be an integer from 0 to 65535 \(got '-1'\)/],
    ['--limit 0', [...base, '--classes', 'a', '--limit', '0'], /--limit must be a positive integer \(got '0'\)/],
    ['a bad --pair-by', [...base, '--classes', 'a', '--pair-by', 'both'],
      /--pair-by must be one of: images, labels \(got 'both'\)/],
    ['--json with a value', [...base, '--classes', 'a', '--json=out.json'], /option '--json' does not take an argument/],
    ['a bad --device', [...base, '--classes', 'a', '--device', 'gpu'], /--device must be one of/],
    ['a positional argument', [...base, '--classes', 'a', 'extra'], /unexpected argument 'extra'/],
  ])('BAD CALL - eval with %s exits 2 with one line and a hint', async (_, args, message) => {
    const { status, out, err } = await run(['eval', ...args]);
    expect(status).toBe(2);
    expect(out).toBe('');
    expect(lines(err)).toHaveLength(1);
    expect(err).toMatch(message);
    expect(err.trimEnd()).toMatch(/\(see 'san-seg eval --help'\)$/);
  });
});
