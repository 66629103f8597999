// SPDX-License-Identifier: Apache-2.0
// san-seg: argument checks through main() in-process, then the compiled CLI (dist/cli/main.js) run as a child process on
// the tiny model: outputs, class lists, bad images, a missing model and the exporter's own failure.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp, { Sharp } from 'sharp';
import { main } from '../../lib/cli/main';
import { parseExportArgs } from '../../lib/cli/export';
import { Progress } from '../../lib/cli/progress';
import { outputStems } from '../../lib/cli/segment';
import { parseClassesFile, splitClassList } from '../../lib/cli/segment-args';
import { binding } from '../../lib/runtime/native';
import { captureIo, lines } from '../helpers/cli-io';
import { testDevice } from '../helpers/device';
import { repoRoot } from '../helpers/paths';
import { useTempDir } from '../helpers/temp-dir';
import { tinyModelDir } from '../native/support';

const CLI = path.join(repoRoot, 'dist', 'cli', 'main.js');
const CLASSES = ['sky', 'sea, ocean', 'sand'];
const { version: PACKAGE_VERSION } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};

interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI in a child process (stderr a pipe, so plain progress lines). */
function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args],
      { cwd, env: { ...process.env, OPENBLAS_NUM_THREADS: '1', ...env } });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk: Buffer) => { out.stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { out.stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, ...out }));
  });
}

/** The newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0);
}

/** Compiles lib/ to dist/ when dist/cli/main.js is missing or older than any source. */
function ensureCompiled(): void {
  if (fs.existsSync(CLI) && fs.statSync(CLI).mtimeMs >= newestMtime(path.join(repoRoot, 'lib'))) return;
  const tsc = require.resolve('typescript/bin/tsc', { paths: [repoRoot] });
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.json')], { cwd: repoRoot, stdio: 'pipe' });
  } catch (error) {
    const { stdout } = error as { stdout?: Buffer };
    throw new Error(`tsc -p . failed, so dist/cli/main.js cannot be tested:\n${stdout?.toString() ?? String(error)}`);
  }
}

/** Three horizontal bands (sky, sea, sand), height × width. */
function bands(height: number, width: number): Sharp {
  const pixels = Buffer.alloc(height * width * 3);
  const colours = [[110, 170, 230], [20, 60, 140], [220, 200, 150]];
  for (let y = 0; y < height; y += 1) {
    const colour = colours[Math.min(2, Math.floor((3 * y) / height))];
    for (let x = 0; x < width; x += 1) pixels.set(colour, (y * width + x) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

/** The label PNG's pixels, checked to be 16-bit greyscale. */
async function readLabels(file: string): Promise<{ width: number; height: number; values: Uint16Array }> {
  const png = fs.readFileSync(file);
  const metadata = await sharp(png).metadata();
  expect(metadata).toMatchObject({ format: 'png', depth: 'ushort', channels: 1 });
  const { data, info } = await sharp(png).toColourspace('grey16').raw({ depth: 'ushort' })
    .toBuffer({ resolveWithObject: true });
  const values = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return { width: info.width, height: info.height, values };
}

interface Summary {
  image: string;
  model: string;
  classes: string[];
  size: number[];
  shares: Record<string, number>;
}

function readSummary(file: string): Summary {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Summary;
}

const tmp = useTempDir('san-cli-');

describe('main() in-process: help, version and bad usage', () => {
  test('--help, help <command> and <command> --help print usage to stdout and exit 0', async () => {
    for (const [argv, heading] of [
      [['--help'], /^Usage: san-seg <command> \[options\]\n/],
      [['-h'], /^Usage: san-seg <command> \[options\]\n/],
      [['segment', '--help'], /^Usage: san-seg segment <image>\.\.\. --model DIR /],
      [['help', 'segment'], /^Usage: san-seg segment <image>\.\.\. --model DIR /],
      [['export', '-h'], /^Usage: san-seg export --checkpoint FILE\.pth --out DIR /],
    ] as const) {
      const io = captureIo();
      await expect(main([...argv], io)).resolves.toBe(0);
      expect(io.out()).toMatch(heading);
      expect(io.err()).toBe('');
    }
  });

  test('--version prints the version in package.json', async () => {
    const io = captureIo();
    await expect(main(['--version'], io)).resolves.toBe(0);
    expect(io.out()).toBe(`${PACKAGE_VERSION}\n`);
  });

  test.each([
    [[], /^san-seg: no command given \(see 'san-seg --help'\)$/],
    [['frobnicate'], /^san-seg: unknown command 'frobnicate' \(see 'san-seg --help'\)$/],
    [['--frobnicate'], /^san-seg: unknown option '--frobnicate' \(see 'san-seg --help'\)$/],
  ])('BAD CALL - san-seg %j exits 2 with one line', async (argv, message) => {
    const io = captureIo();
    await expect(main(argv, io)).resolves.toBe(2);
    expect(lines(io.err())).toHaveLength(1);
    expect(io.err().trimEnd()).toMatch(message);
    expect(io.out()).toBe('');
  });

  const base = ['a.png', '--model', 'm', '-o', 'out'];
  test.each([
    ['--model missing', ['a.png', '--classes', 'sky', '-o', 'out'], /--model is required/],
    ['--out missing', ['a.png', '--classes', 'sky', '--model', 'm'], /-o\/--out is required/],
    ['no images', ['--model', 'm', '--classes', 'sky', '-o', 'out'], /no images given/],
    ['an unknown flag', [...base, '--classes', 'sky', '--colour'], /unknown option '--colour'/],
    ['a flag without its value', [...base, '--classes'], /option '--classes <value>' argument missing/],
    ['no classes', base, /--classes or --classes-file is required/],
    ['both class flags', [...base, '--classes', 'sky', '--classes-file', 'c.txt'],
      /either --classes or --classes-file, not both/],
    ['only separators', [...base, '--classes', ' ; ;'], /--classes names no classes/],
    ['a repeated class', [...base, '--classes', 'sky,sea,sky'], /--classes names the class 'sky' twice/],
    ['a missing classes file', [...base, '--classes-file', 'no-such-classes.txt'],
      /cannot read --classes-file no-such-classes\.txt: ENOENT/],
    ['bad --templates', [...base, '--classes', 'sky', '--templates', 'many'],
      /--templates must be one of: vild, single \(got 'many'\)/],
    ['bad --device', [...base, '--classes', 'sky', '--device', 'gpu'],
      /--device must be one of: cpu, cuda, cuda:N, auto \(got 'gpu'\)/],
    ['bad --dtype', [...base, '--classes', 'sky', '--dtype', 'int8'],
      /--dtype must be one of: float32, float16, bfloat16 \(got 'int8'\)/],
    ['bad --threads', [...base, '--classes', 'sky', '--threads', '0'],
      /--threads must be a positive integer \(got '0'\)/],
    ['bad --output-size', [...base, '--classes', 'sky', '--output-size', '480'],
      /--output-size must be HEIGHTxWIDTH in pixels, e.g. 480x640 \(got '480'\)/],
    ['--no-resize with a value', [...base, '--classes', 'sky', '--no-resize=yes'],
      /option '--no-resize' does not take an argument/],
  ])('BAD CALL - segment with %s exits 2 with one line and a hint', async (_, args, message) => {
    const io = captureIo();
    await expect(main(['segment', ...args], io)).resolves.toBe(2);
    expect(lines(io.err())).toHaveLength(1);
    expect(io.err()).toMatch(/^san-seg: /);
    expect(io.err()).toMatch(message);
    expect(io.err().trimEnd()).toMatch(/\(see 'san-seg segment --help'\)$/);
  });

  test.each([
    ['--checkpoint missing', ['--out', 'm'], /--checkpoint is required/],
    ['--out missing', ['--checkpoint', 'c.pth'], /-o\/--out is required/],
    ['a bad --variant', ['--checkpoint', 'c.pth', '--out', 'm', '--variant', 'vit_h'],
      /--variant must be one of: auto, vit_b_16, vit_l_14_336 \(got 'vit_h'\)/],
    ['a positional argument', ['c.pth', '--out', 'm'], /unexpected argument 'c\.pth'/],
  ])('BAD CALL - export with %s exits 2 with one line and a hint', async (_, args, message) => {
    const io = captureIo();
    await expect(main(['export', ...args], io)).resolves.toBe(2);
    expect(lines(io.err())).toHaveLength(1);
    expect(io.err()).toMatch(message);
    expect(io.err().trimEnd()).toMatch(/\(see 'san-seg export --help'\)$/);
  });
});

describe('argument helpers', () => {
  test("--classes splits by ';' when there is one, else by ','", () => {
    expect(splitClassList('sky,sea, sand')).toEqual(['sky', 'sea', 'sand']);
    expect(splitClassList('sky; person, someone ;car;')).toEqual(['sky', 'person, someone', 'car']);
  });

  test('--classes-file: one class a line, blank lines and # comments skipped, CRLF accepted', () => {
    expect(parseClassesFile('# outdoor\nsky\r\n\n  person, someone  \n#car\nroad\n'))
      .toEqual(['sky', 'person, someone', 'road']);
  });

  test('stems shared by two inputs get -2, -3, compared without case', () => {
    expect(outputStems(['a/street.jpg', 'b/street.png', 'Street.webp', 'street-2.png', 'beach.png']))
      .toEqual(['street', 'street-2', 'Street-3', 'street-2-2', 'beach']);
  });

  test("export runs SAN_PYTHON with absolute paths, since it runs in the package root", () => {
    const job = parseExportArgs(['--checkpoint', 'w.pth', '-o', 'out', '--vocab', 'v.txt.gz'],
      { SAN_PYTHON: '/opt/py' });
    expect(job).toEqual({
      python: '/opt/py',
      args: ['-m', 'models.export', '--checkpoint', path.resolve('w.pth'), '--out', path.resolve('out'),
        '--variant', 'auto', '--vocab', path.resolve('v.txt.gz')],
    });
    expect(parseExportArgs(['--checkpoint', 'w.pth', '--out', 'o'], {})).toMatchObject({ python: '/usr/bin/python3' });
  });

  test('progress: a bar redrawn in place on a terminal, plain lines otherwise; failures on their own line', () => {
    const tty = captureIo(true);
    const bar = new Progress(tty, 4, Progress.wantsBar(tty, 4));
    bar.succeeded('a.jpg');
    bar.print(['out/a.json']);
    bar.failed('b.jpg', 'san-seg: b.jpg: bad');
    bar.finish();
    expect(tty.err()).toContain('\r\x1b[K[=====               ] 1/4 a.jpg');
    expect(tty.err()).toContain('\r\x1b[Ksan-seg: b.jpg: bad\n\r\x1b[K[==========          ] 2/4 b.jpg');
    expect(tty.err().endsWith('\r\x1b[K')).toBe(true);
    expect(tty.out()).toBe('out/a.json\n');

    const pipe = captureIo(false);
    expect(Progress.wantsBar(pipe, 4)).toBe(false);
    expect(Progress.wantsBar(captureIo(true), 1)).toBe(false);
    const plain = new Progress(pipe, 2, false);
    plain.succeeded('a.jpg');
    plain.failed('b.jpg', 'san-seg: b.jpg: bad');
    plain.finish();
    expect(pipe.err()).toBe('[1/2] a.jpg\nsan-seg: b.jpg: bad\n');
  });
});

describe('the compiled CLI on the tiny model', () => {
  const common = ['--model', tinyModelDir, '--device', testDevice, '--threads', '1'];
  let images: string;
  beforeAll(async () => {
    ensureCompiled();
    images = path.join(tmp(), 'images');
    fs.mkdirSync(path.join(images, 'other'), { recursive: true });
    await bands(90, 120).png().toFile(path.join(images, 'beach.png'));
    await bands(60, 45).jpeg().toFile(path.join(images, 'street.jpg'));
    await bands(30, 40).png().toFile(path.join(images, 'other', 'beach.png'));
    fs.writeFileSync(path.join(images, 'corrupt.png'), 'not an image at all');
  });

  test('two images: an overlay, a 16-bit label map and a JSON summary each, their paths on stdout', async () => {
    const out = path.join(tmp(), 'happy', 'nested');
    const run = await runCli(
      ['segment', 'beach.png', 'street.jpg', ...common, '--classes', CLASSES.join(';'), '-o', out], images);
    expect(run).toMatchObject({ status: 0 });
    expect(run.stderr).not.toMatch(/\n\s+at /);
    const written = lines(run.stdout);
    expect(written.sort()).toEqual(['beach', 'street'].flatMap((stem) =>
      [`${stem}.json`, `${stem}.labels.png`, `${stem}.overlay.png`].map((name) => path.join(out, name))).sort());
    for (const [stem, height, width] of [['beach', 90, 120], ['street', 60, 45]] as const) {
      const labels = await readLabels(path.join(out, `${stem}.labels.png`));
      expect([labels.height, labels.width]).toEqual([height, width]);
      expect(Math.max(...labels.values)).toBeLessThan(CLASSES.length);
      const overlay = await sharp(path.join(out, `${stem}.overlay.png`)).metadata();
      expect(overlay.format).toBe('png');
      const summary = readSummary(path.join(out, `${stem}.json`));
      expect(summary).toMatchObject({ model: tinyModelDir, classes: CLASSES, size: [height, width] });
      expect(summary.image).toBe(path.join(images, stem === 'beach' ? 'beach.png' : 'street.jpg'));
      expect(Object.keys(summary.shares)).toEqual(CLASSES);
      expect(Object.values(summary.shares).reduce((sum, share) => sum + share, 0)).toBeCloseTo(1, 9);
      // The shares are the label map's own counts.
      CLASSES.forEach((name, i) => {
        const count = labels.values.filter((label) => label === i).length;
        expect(summary.shares[name]).toBeCloseTo(count / labels.values.length, 12);
      });
    }
    // stderr is a pipe here: one plain progress line per image, in the order they finish.
    const progress = lines(run.stderr).filter((line) => line.startsWith('['));
    expect(progress.map((line) => line.replace(/^\[[12]\/2\] /, '')).sort()).toEqual(['beach.png', 'street.jpg']);
  });

  test('--classes-file, --output-size, --no-resize and --templates; a shared stem gets -2', async () => {
    const classesFile = path.join(tmp(), 'classes.txt');
    fs.writeFileSync(classesFile, '# beach scene\nsky\n\nsea, ocean\n# sand next\nsand\n');
    const out = path.join(tmp(), 'options');
    const run = await runCli(['segment', 'beach.png', path.join('other', 'beach.png'), ...common,
      '--classes-file', classesFile, '--output-size', '24x32', '--no-resize', '--templates', 'single', '-o', out],
    images);
    expect(run).toMatchObject({ status: 0 });
    for (const [stem, image] of [['beach', 'beach.png'], ['beach-2', path.join('other', 'beach.png')]]) {
      const summary = readSummary(path.join(out, `${stem}.json`));
      expect(summary).toMatchObject({ image: path.join(images, image), classes: CLASSES, size: [24, 32] });
      const labels = await readLabels(path.join(out, `${stem}.labels.png`));
      expect([labels.height, labels.width]).toEqual([24, 32]);
    }
  });

  test('EXPECTED FAILURE - a corrupt image among good ones: one line for it, the others written, exit 1', async () => {
    const out = path.join(tmp(), 'corrupt');
    const run = await runCli(['segment', 'beach.png', 'corrupt.png', 'street.jpg', ...common,
      '--classes', 'sky,sea,sand', '-o', out], images);
    expect(run.status).toBe(1);
    expect(fs.readdirSync(out).sort()).toEqual(['beach.json', 'beach.labels.png', 'beach.overlay.png',
      'street.json', 'street.labels.png', 'street.overlay.png']);
    const about = lines(run.stderr).filter((line) => line.includes('corrupt.png'));
    expect(about).toEqual([expect.stringMatching(/^san-seg: corrupt\.png: Could not read input as an image: .+/)]);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(lines(run.stderr)).toContain(`san-seg: segmented 2 of 3 images into ${out} (1 failed)`);
  });

  test.each([
    ['--model missing', ['segment', 'beach.png', '--classes', 'sky', '-o', 'out'], /^san-seg: --model is required/],
    ['an unknown flag', ['segment', 'beach.png', ...common, '--classes', 'sky', '-o', 'out', '--fast'],
      /^san-seg: unknown option '--fast'/],
  ])('BAD CALL - %s: exit 2 with one line', async (_, args, message) => {
    const run = await runCli(args, images);
    expect(run.status).toBe(2);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(message)]);
    expect(run.stdout).toBe('');
  });

  test('EXPECTED FAILURE - a missing model folder: exit 1 with one san-seg line naming it', async () => {
    const missing = path.join(tmp(), 'no-such-model');
    const run = await runCli(
      ['segment', 'beach.png', '--model', missing, '--classes', 'sky', '-o', path.join(tmp(), 'x')], images);
    expect(run.status).toBe(1);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(/^san-seg: The model folder .* has no manifest\.json/);
    expect(run.stderr).toContain(missing);
  });

  test('--dtype bfloat16 on the CPU: segments where the CPU has AVX512-BF16 or AMX; elsewhere exit 1 naming what it lacks',
    async () => {
      const args = (out: string) => ['segment', 'beach.png', '--model', tinyModelDir, '--device', 'cpu', '--threads', '1',
        '--dtype', 'bfloat16', '--classes', CLASSES.join(';'), '-o', path.join(tmp(), out)];
      if (binding().cpuBfloat16() === null) {
        const run = await runCli(args('bf16'), images);
        expect(run).toMatchObject({ status: 0 });
        expect(lines(run.stdout)).toContain(path.join(tmp(), 'bf16', 'beach.labels.png'));
      }
      // The refusal, forced where the CPU has them: the addon reads SAN_TEST_HIDE_CPU_BF16 from the environment.
      const refused = await runCli(args('refused'), images, { SAN_TEST_HIDE_CPU_BF16: '1' });
      expect(refused.status).toBe(1);
      expect(lines(refused.stderr)).toEqual([expect.stringMatching(
        /^san-seg: .*dtype bfloat16 on the CPU needs the AVX512-BF16 or AMX-BF16 instruction set/)]);
    });

  test('EXPECTED FAILURE - export of a missing checkpoint: the exporter says so and its status is kept', async () => {
    const checkpoint = path.join(tmp(), 'no-such.pth');
    const run = await runCli(['export', '--checkpoint', checkpoint, '--out', path.join(tmp(), 'exported'),
      '--vocab', path.join(tinyModelDir, 'bpe_vocab.txt.gz')], images);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`Checkpoint ${checkpoint} does not exist`);
    expect(fs.existsSync(path.join(tmp(), 'exported', 'manifest.json'))).toBe(false);
  });

  test('EXPECTED FAILURE - export with a SAN_PYTHON that does not exist: exit 1 with one line', async () => {
    const run = await runCli(['export', '--checkpoint', 'c.pth', '--out', 'o'], tmp(),
      { SAN_PYTHON: path.join(tmp(), 'no-python') });
    expect(run.status).toBe(1);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(/^san-seg: cannot run .*no-python \(set SAN_PYTHON to a Python with PyTorch\): .*ENOENT/),
    ]);
  });
});

