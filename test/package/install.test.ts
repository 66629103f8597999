// SPDX-License-Identifier: Apache-2.0
// The package as an app gets it: `npm pack` (prepack builds dist/ and the prebuilt addon), `npm install` of the
// tarball into a new app (offline where npm's cache has the dependencies), then what the README promises from there:
// require and import, a strict TypeScript file against the shipped .d.ts, `san-seg --help`, the sample scene
// segmented, and the install script's own advice when it cannot build.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../helpers/paths';
import { useTempDir } from '../helpers/temp-dir';

const { locate } = require(path.join(repoRoot, 'scripts', 'libtorch.js')) as {
  locate(): { source: string; cuda?: boolean; error?: string };
};
const libtorch = locate();
/** The prebuilt addon is made against Debian's CPU LibTorch only; with another (a GPU machine's), the package is
 * packed without it, and the install builds from source. */
const prebuilt = libtorch.source === 'Debian libtorch-dev' && !libtorch.cuda && !libtorch.error;
/** GPU machines run the suite without npm (scripts/device/run-cuda-suite.sh): nothing to install with there. */
const npmHere = spawnSync('npm', ['--version']).status === 0;
const maybe = npmHere ? test : test.skip;

const tempDir = useTempDir('san-node-app-');
const app = (): string => path.join(tempDir(), 'app');
const installed = (): string => path.join(app(), 'node_modules', 'san-node');
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/** The environment of a user's shell: none of npm's settings from an enclosing `npm test`, no test overrides. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([name]) => !/^npm_|^SAN_ADDON$|^SAN_TEST_|^INIT_CWD$/i.test(name)));
  return { ...env, ...extra };
}

function run(command: string, args: string[], cwd: string, env = userEnv()): string {
  return execFileSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function write(file: string, text: string): void {
  fs.writeFileSync(path.join(app(), file), text);
}

let installLog: string;

beforeAll(() => {
  if (!npmHere) return;
  const packed = run('npm', ['pack', '--silent', '--pack-destination', tempDir()], repoRoot,
    userEnv(prebuilt ? {} : { SAN_SKIP_PREBUILD: '1' }));
  const tarball = packed.trim().split('\n').at(-1)!;
  fs.mkdirSync(app());
  write('package.json', JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  installLog = run('npm', ['install', path.join(tempDir(), tarball), '--prefer-offline', '--no-audit', '--no-fund',
    '--foreground-scripts'], app());
}, 600_000);

maybe('the tarball holds what the package needs, and no sources or test data', () => {
  const has = (file: string): boolean => fs.existsSync(path.join(installed(), file));
  for (const file of ['LICENSE', 'README.md', 'index.mjs', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js',
    'binding.gyp', 'scripts/install.js', 'scripts/libtorch.js', 'assets/clip/bpe_simple_vocab_16e6.txt.gz',
    'assets/clip/README.md', 'assets/classes/ade150.txt',
    'assets/procedural-scene.png', 'models/default/manifest.json', 'models/export.py', 'docs/install.md']) {
    expect([file, has(file)]).toEqual([file, true]);
  }
  for (const file of ['test', 'test-models', 'models/tests', 'dist/.built', 'lib', 'node_modules']) {
    expect([file, has(file)]).toEqual([file, false]);
  }
  // The prebuilt binary or, without one, the build the install made.
  expect(has('prebuilds/linux-x64/san-node.napi.glibc.node')).toBe(prebuilt);
  expect(has('build/Release/san_node.node')).toBe(!prebuilt);
  // CLIP's vocabulary as OpenAI released it, which `san-seg export` uses when given no --vocab.
  const vocab = fs.readFileSync(path.join(installed(), 'assets', 'clip', 'bpe_simple_vocab_16e6.txt.gz'));
  expect(createHash('sha256').update(vocab).digest('hex'))
    .toBe('924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a');
  const manifest = JSON.parse(fs.readFileSync(path.join(installed(), 'package.json'), 'utf8'));
  expect(manifest).toMatchObject({ license: 'Apache-2.0', os: ['linux'], cpu: ['x64'] });
  expect(fs.readFileSync(path.join(installed(), 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
});

// With no build/ in the package, the loader loads prebuilds/ (as after `npm install --ignore-scripts`).
maybe('the install script used the prebuilt addon where the LibTorch here is the one it was built against', () => {
  expect(installLog).toMatch(prebuilt
    ? /san-node: using the prebuilt addon \(LibTorch 1\.13\.\d+, Debian libtorch-dev\)/
    : /san-node: building the addon with node-gyp against LibTorch/);
  const loads = run('node', ['-p', "require('san-node/package.json') && require.resolve('san-node')"], app());
  expect(loads.trim()).toBe(path.join(installed(), 'dist', 'index.js'));
});

maybe('require() and import give the same module, every export included', () => {
  write('both.mjs', [
    "import * as esm from 'san-node';",
    "import { createRequire } from 'node:module';",
    "const cjs = createRequire(import.meta.url)('san-node');",
    "const names = Object.keys(esm).filter((name) => !['default', '__esModule'].includes(name)).sort();",
    'console.log(JSON.stringify({ names, cjs: Object.keys(cjs).sort(), same: esm.SanModel === cjs.SanModel }));',
  ].join('\n'));
  const { names, cjs, same } = JSON.parse(run('node', ['both.mjs'], app()));
  expect(names).toEqual(cjs);
  expect(names).toContain('SanModel');
  expect(same).toBe(true);
});

maybe('a strict TypeScript file, CommonJS and ESM, type-checks against the shipped .d.ts', () => {
  const body = [
    "async function main(dir: string, image: string): Promise<number> {",
    "  const model = await SanModel.load(dir, { device: 'cpu' });",
    "  const options: SegmentOptions = { classes: ['sky', 'person, pedestrian'], timeoutMs: 60_000 };",
    '  const result = await model.segment(image, options);',
    '  const shares: Array<{ name: string; share: number }> = result.shares();',
    '  await model.dispose();',
    '  return shares.length + result.labels.dims[0];',
    '}',
    "main('m', 'i.png').catch((error: unknown) => {",
    '  if (error instanceof SanError && error.code === ErrorCode.MODEL_LOAD) return;',
    '  throw error;',
    '});',
  ].join('\n');
  write('app.ts', `import { ErrorCode, SanError, SanModel, type SegmentOptions } from 'san-node';\n${body}\n`);
  write('app.mts', `import { ErrorCode, SanError, SanModel, type SegmentOptions } from 'san-node';\n${body}\n`);
  write('tsconfig.json', JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16',
      skipLibCheck: false, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
    },
    files: ['app.ts', 'app.mts'],
  }));
  const check = spawnSync('node', [tsc, '-p', 'tsconfig.json'], { cwd: app(), encoding: 'utf8' });
  expect(check.stdout + check.stderr).toBe('');
  expect(check.status).toBe(0);
});

maybe('san-seg --help runs from the app', () => {
  const bin = path.join(app(), 'node_modules', '.bin', 'san-seg');
  expect(run(bin, ['--help'], app())).toMatch(/^Usage: san-seg <command>/);
  expect(run(bin, ['export', '--help'], app())).toMatch(/default: the package's copy of CLIP's\s+bpe_simple_vocab/);
});

maybe('npx san-seg serve stops on SIGTERM, though npm passes it only to the sh -c it runs the command in', async () => {
  // Its own process group, so that a server left behind can be found and killed.
  const npx = spawn('npx', ['san-seg', 'serve', '--model', path.join(installed(), 'models', 'default'), '--port', '0'],
    { cwd: app(), env: userEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  npx.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    npx.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    npx.once('exit', () => reject(new Error(`npx exited before serving: ${stderr}`)));
  });
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  // The server holds the pipe's write end: the pipe closes when the server itself has exited.
  const serverGone = new Promise<void>((resolve) => npx.stdout.once('close', () => resolve()));
  npx.kill('SIGTERM');
  const stopped = await Promise.race([serverGone.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000))]);
  if (!stopped) process.kill(-npx.pid!, 'SIGKILL');
  expect(stopped).toBe(true);
  expect(stderr).toMatch(/the parent process \(\d+\) exited: stopped accepting/);
});

maybe('the shipped default model segments the sample scene as in the repository', () => {
  write('segment.mjs', [
    "import * as fs from 'node:fs';",
    "import * as path from 'node:path';",
    "import sharp from 'sharp';",
    "import { ConfusionMatrix, SanModel } from 'san-node';",
    "const root = path.join('node_modules', 'san-node');",
    "const classes = fs.readFileSync(path.join(root, 'assets', 'procedural-scene-classes.txt'), 'utf8')",
    "  .split('\\n').filter(Boolean);",
    "const model = await SanModel.load(path.join(root, 'models', 'default'), { device: 'cpu', threads: 1 });",
    "const result = await model.segment(path.join(root, 'assets', 'procedural-scene.png'), { classes });",
    "const truth = await sharp(path.join(root, 'assets', 'procedural-scene-labels.png')).extractChannel(0).raw()",
    '  .toBuffer();',
    'const matrix = new ConfusionMatrix(classes.length);',
    'matrix.add(result.labels.data, new Uint8Array(truth));',
    'await model.dispose();',
    'console.log(JSON.stringify({ dims: result.labels.dims, mIoU: matrix.metrics().mIoU }));',
  ].join('\n'));
  const { dims, mIoU } = JSON.parse(run('node', ['segment.mjs'], app()));
  expect(dims).toHaveLength(2);
  // models/tests/test_procedural_default.py holds the same model to 84 on this scene.
  expect(mIoU).toBeGreaterThanOrEqual(84);
});

maybe('EXPECTED FAILURE - without LibTorch the install script names the fix; the load error links resolve', () => {
  const script = path.join(installed(), 'scripts', 'install.js');
  const failed = spawnSync('node', [script], { cwd: app(), encoding: 'utf8',
    env: userEnv({ LIBTORCH_DIR: path.join(tempDir(), 'no-libtorch') }) });
  expect(failed.status).toBe(1);
  expect(failed.stderr).toMatch(/LibTorch not found \(LIBTORCH_DIR\)/);
  expect(failed.stderr).toContain('LIBTORCH_DIR=/path/to/libtorch npm rebuild san-node');

  // An addon that cannot be found: the load error's every link points into this installed package.
  const load = spawnSync('node', ['-e', "const san = require('san-node'); const dir = " +
    "require('node:path').join(require.resolve('san-node'), '..', '..', 'models', 'default'); " +
    'san.SanModel.load(dir).catch((e) => ' +
    'console.log(e.code + "\\n" + e.message))'], { cwd: app(), encoding: 'utf8',
    env: userEnv({ SAN_ADDON: path.join(tempDir(), 'missing.node') }) });
  expect(load.stdout).toMatch(/^ERR_SAN_ADDON_LOAD\n/);
  expect(load.stdout).toContain('npm rebuild san-node');
  const links = [...load.stdout.matchAll(/(\/\S+\.md)(#[\w-]+)?/g)].map(([, file]) => file);
  expect(links.length).toBeGreaterThan(0);
  for (const file of links) expect(file).toBe(path.join(installed(), 'docs', 'install.md'));
});
