#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// san-node's install script (package.json "install"; also `npm rebuild san-node`, and `npm run build:addon` in a
// checkout). In this order:
//   1. the prebuilt addon shipped in prebuilds/linux-x64/ (node-gyp-build's layout, built by scripts/prebuild.js
//      against Debian 12's LibTorch), when the LibTorch found here is the one it was built against and it loads;
//   2. otherwise a build from source with node-gyp (npm ships it), into build/Release, where the loader looks first;
//   3. otherwise it says what is missing and the exact command that fixes it, and fails.
//
//   node scripts/install.js [--build-from-source]
//   SAN_BUILD_FROM_SOURCE=1 npm rebuild san-node      the same from an app (npm's --build-from-source, as sharp
//                                                    takes it, works too)
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { locate } = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
const PREBUILD_DIR = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
/** node-gyp-build's name for a Node-API binary for glibc, which it loads when build/Release has none. */
const PREBUILD = path.join(PREBUILD_DIR, 'san-node.napi.glibc.node');
/** The LibTorch the prebuilt binary was linked against (scripts/libtorch.js's fields). */
const PREBUILD_LIBTORCH = path.join(PREBUILD_DIR, 'libtorch.json');
const BUILD_DIR = path.join(ROOT, 'build');
const BUILT = path.join(BUILD_DIR, 'Release', 'san_node.node');
/** The LibTorch and sources node-gyp was configured for; a change means configuring again. */
const CONFIGURED = path.join(BUILD_DIR, 'configured.json');
const DOCS = path.join(ROOT, 'docs', 'install.md');
/** What fixes things in an app; in a checkout, `npm run build:addon` does the same. */
const REBUILD = 'npm rebuild san-node';

/** The fields that decide whether a binary fits a LibTorch: a different one in any of them does not load. */
const ABI_FIELDS = ['version', 'cxx11Abi', 'cuda', 'libDir'];

function say(line) {
  process.stdout.write(`san-node: ${line}\n`);
}

/** Whether the prebuilt binary was built against `libtorch`; the reason when not. */
function prebuildFits(libtorch) {
  if (!fs.existsSync(PREBUILD) || !fs.existsSync(PREBUILD_LIBTORCH)) return 'no prebuilt binary for this platform';
  const builtFor = JSON.parse(fs.readFileSync(PREBUILD_LIBTORCH, 'utf8'));
  if (libtorch.error) {
    // Debian's runtime package alone (libtorch1.13, no libtorch-dev): enough for the prebuilt binary, which needs
    // only the libraries, by their versioned names.
    if (!(libtorch.source === builtFor.source && runtimeLibraries(builtFor))) return libtorch.error;
  } else {
    const differs = ABI_FIELDS.filter((field) => builtFor[field] !== libtorch[field]);
    if (differs.length > 0) {
      return `the prebuilt binary is for LibTorch ${builtFor.version} (${builtFor.source}), not ` +
        `${libtorch.version} from ${libtorch.libDir} (${differs.join(', ')} differ)`;
    }
  }
  // A git checkout builds its own sources, which may be newer than the binary.
  if (fs.existsSync(path.join(ROOT, '.git'))) return 'a git checkout builds from source';
  const failure = loadFailure(PREBUILD);
  return failure ? `the prebuilt binary does not load: ${failure}` : undefined;
}

/** Whether the libraries the prebuilt binary links (e.g. libtorch_cpu.so.1.13) are where it was built against. */
function runtimeLibraries(builtFor) {
  const soVersion = builtFor.version.split('.').slice(0, 2).join('.');
  return ['torch', 'torch_cpu', 'c10'].every((name) => fs.existsSync(path.join(builtFor.libDir,
    `lib${name}.so.${soVersion}`)));
}

/** Why `file` does not load in a fresh Node, or undefined when it does. */
function loadFailure(file) {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).versions()`], {
    encoding: 'utf8',
  });
  if (probe.status === 0) return undefined;
  return (probe.stderr.split('\n').find((line) => /Error/.test(line)) ?? probe.stderr).trim();
}

/** Whether `command` is an executable on PATH (or a path to one). */
function onPath(command) {
  const dirs = command.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter);
  return dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What a source build needs and lacks: [what, Debian package]. */
function missingForBuild(libtorch) {
  const compiler = (process.env.CXX ?? 'g++').split(' ')[0];
  return [
    [!onPath(compiler), `a C++17 compiler (${compiler})`, 'g++'],
    [!onPath('make'), 'make', 'make'],
    // node-gyp runs gyp, which is Python.
    [!onPath(process.env.PYTHON ?? 'python3'), 'Python 3, which node-gyp runs', 'python3'],
    [Boolean(libtorch.error) && libtorch.source === 'Debian libtorch-dev', 'LibTorch', 'libtorch-dev'],
  ].filter(([missing]) => missing).map(([, what, pkg]) => [what, pkg]);
}

/** node-gyp's CLI: npm's own (npm tells its lifecycle scripts where), a local install, or the one npm bundles. */
function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    (() => {
      try {
        return require.resolve('node-gyp/bin/node-gyp.js', { paths: [ROOT] });
      } catch {
        return undefined;
      }
    })(),
    path.resolve(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin',
      'node-gyp.js'),
  ];
  return candidates.find((file) => file && fs.existsSync(file));
}

/** Node's own headers beside this node binary (official tarballs, NodeSource's packages): node-gyp then needs no
 * download, so the build works offline. */
function localNodeDir() {
  const prefix = path.resolve(process.execPath, '..', '..');
  const versionHeader = path.join(prefix, 'include', 'node', 'node_version.h');
  if (!fs.existsSync(versionHeader) || !fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) {
    return undefined;
  }
  const header = fs.readFileSync(versionHeader, 'utf8');
  const part = (name) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(header)?.[1];
  return `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.version ? prefix : undefined;
}

function runNodeGyp(script, args) {
  const nodedir = process.env.npm_config_nodedir ? [] : [localNodeDir()].filter(Boolean).map((d) => `--nodedir=${d}`);
  const run = spawnSync(process.execPath, [script, ...args, ...nodedir], { cwd: ROOT, stdio: 'inherit' });
  return run.status === 0;
}

/** Configures node-gyp when build/ is not configured for this LibTorch, binding.gyp and set of sources (binding.gyp
 * lists cpp/*.cc when configured), then builds. */
function buildFromSource(libtorch, script) {
  const sources = fs.readdirSync(path.join(ROOT, 'cpp')).filter((file) => file.endsWith('.cc')).sort();
  const wanted = JSON.stringify({ libtorch, sources });
  const makefile = path.join(BUILD_DIR, 'Makefile');
  const configured = fs.existsSync(makefile) && fs.existsSync(CONFIGURED) &&
    fs.readFileSync(CONFIGURED, 'utf8') === wanted &&
    fs.statSync(makefile).mtimeMs >= fs.statSync(path.join(ROOT, 'binding.gyp')).mtimeMs;
  if (!configured) {
    if (!runNodeGyp(script, ['configure'])) return false;
    fs.writeFileSync(CONFIGURED, wanted);
  }
  return runNodeGyp(script, ['build', '--jobs', 'max']);
}

function fail(lines) {
  process.stderr.write(`${['san-node: the native addon could not be installed.', ...lines,
    `See ${DOCS} (#building-from-source).`].join('\n')}\n`);
  process.exit(1);
}

/** Builds build/Release/san_node.node from source, or says what is missing and exits. */
function installFromSource(libtorch) {
  const missing = missingForBuild(libtorch);
  if (missing.length > 0) {
    const packages = missing.map(([, pkg]) => pkg);
    fail([
      `Building it from source needs ${missing.map(([what]) => what).join(', ')}. On Debian 12 or Ubuntu, as root:`,
      `  apt-get install --no-install-recommends ${packages.join(' ')}`,
      `then, in your app: ${REBUILD}`,
    ]);
  }
  if (libtorch.error) {
    fail([
      `${libtorch.error}.`,
      'Point LIBTORCH_DIR at an unpacked LibTorch or a pip torch folder, or unset it to use Debian\'s libtorch-dev:',
      `  LIBTORCH_DIR=/path/to/libtorch ${REBUILD}`,
    ]);
  }
  const script = nodeGypScript();
  if (!script) {
    fail(['node-gyp was not found (npm ships it). Install it:', '  npm install --global node-gyp', `then: ${REBUILD}`]);
  }
  say(`building the addon with node-gyp against LibTorch ${libtorch.version} (${libtorch.source}, ` +
    `${libtorch.cuda ? 'CUDA' : 'CPU'})`);
  if (!buildFromSource(libtorch, script)) {
    fail(['The node-gyp build failed (its output is above). Once fixed, rebuild with the output shown:',
      `  ${REBUILD} --foreground-scripts`]);
  }
  // Only a warning: a CUDA build may need a GPU driver that a build machine lacks.
  const failure = loadFailure(BUILT);
  say(failure ? `warning: ${path.relative(ROOT, BUILT)} was built but does not load here: ${failure}`
    : `built ${path.relative(ROOT, BUILT)}`);
}

function main() {
  const fromSource = process.argv.includes('--build-from-source') || Boolean(process.env.SAN_BUILD_FROM_SOURCE) ||
    process.env.npm_config_build_from_source === 'true';
  const libtorch = locate();
  if (!fromSource) {
    const unfit = prebuildFits(libtorch);
    if (!unfit) {
      // A binary built here earlier would be loaded first (node-gyp-build looks in build/Release before prebuilds/).
      fs.rmSync(BUILT, { force: true });
      const builtFor = JSON.parse(fs.readFileSync(PREBUILD_LIBTORCH, 'utf8'));
      say(`using the prebuilt addon (LibTorch ${builtFor.version}, ${builtFor.source}` +
        `${libtorch.error ? ': its runtime libraries' : ''})`);
      return;
    }
    say(`building from source: ${unfit}`);
  }
  installFromSource(libtorch);
}

module.exports = { PREBUILD, PREBUILD_LIBTORCH, BUILT, installFromSource, fail };

if (require.main === module) main();
