#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The one place that finds LibTorch: binding.gyp, scripts/install.js (the package's install script) and
// lib/runtime/native.ts (for its load-failure hints) all ask this file, so the build and the loader never disagree.
//
//   node scripts/libtorch.js              # everything, as JSON
//   node scripts/libtorch.js <field>      # one field; arrays are printed space-separated (for gyp's <!@(...))
//
// Where LibTorch is looked for, first match wins:
//   1. LIBTORCH_DIR: an unpacked libtorch zip, or a pip `torch` package folder (both hold include/, lib/ and
//      share/cmake/Torch/).
//   2. Torch_DIR: the folder holding TorchConfig.cmake, as CMake's find_package(Torch) takes it.
//   3. Debian's libtorch-dev: /usr/lib/<multiarch>/cmake/Torch, headers in /usr/include.
// For a CUDA LibTorch it also looks for the CUDA runtime's headers (cuda_runtime_api.h), which reading LibTorch's
// CUDA caching allocator needs: CUDA_HOME or CUDA_PATH, the nvidia-cuda-runtime wheel that a pip torch package sits
// beside, or /usr/local/cuda.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const DEBIAN_MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** The LibTorch layout found from the environment, or an `error` string saying what was missing. */
function locate(env = process.env) {
  if (env.LIBTORCH_DIR) {
    const root = path.resolve(env.LIBTORCH_DIR);
    return layout(env, 'LIBTORCH_DIR', path.join(root, 'share', 'cmake', 'Torch'), path.join(root, 'include'),
      path.join(root, 'lib'));
  }
  if (env.Torch_DIR) {
    const cmakeDir = path.resolve(env.Torch_DIR);
    // <prefix>/share/cmake/Torch in a libtorch zip, <prefix>/lib/<multiarch>/cmake/Torch on Debian.
    const prefix = path.resolve(cmakeDir, '..', '..', '..');
    const zipLayout = fs.existsSync(path.join(prefix, 'include', 'torch'));
    return layout(env, 'Torch_DIR', cmakeDir, zipLayout ? path.join(prefix, 'include') : '/usr/include',
      zipLayout ? path.join(prefix, 'lib') : path.resolve(cmakeDir, '..', '..'));
  }
  const libDir = path.join('/usr/lib', DEBIAN_MULTIARCH[process.arch] || `${process.arch}-linux-gnu`);
  return layout(env, 'Debian libtorch-dev', path.join(libDir, 'cmake', 'Torch'), '/usr/include', libDir);
}

function layout(env, source, cmakeDir, includeDir, libDir) {
  const found = {
    source,
    cmakeDir,
    // /usr/include is left out: the compiler searches it anyway, and naming it with -I reorders system headers.
    includeDirs: [includeDir, path.join(includeDir, 'torch', 'csrc', 'api', 'include')]
      .filter((dir) => dir !== '/usr/include'),
    libDir,
  };
  const missing = [
    [path.join(cmakeDir, 'TorchConfig.cmake'), 'TorchConfig.cmake'],
    [path.join(includeDir, 'torch', 'script.h'), 'the headers'],
    [path.join(libDir, libFile('torch')), 'the libraries'],
  ].filter(([file]) => !fs.existsSync(file));
  if (missing.length > 0) {
    const what = missing.map(([file, name]) => `${name} (${file})`).join(', ');
    return { ...found, error: `LibTorch not found (${source}): no ${what}` };
  }
  const cuda = fs.existsSync(path.join(libDir, libFile('torch_cuda')));
  return {
    ...found,
    version: readVersion(cmakeDir),
    cuda,
    cudaIncludeDirs: cuda ? cudaIncludeDirs(env, libDir) : [],
    cxx11Abi: readCxx11Abi(cmakeDir),
    // Linker flags. torch_cuda and c10_cuda must be linked with --no-as-needed: nothing in the addon calls them, yet
    // loading them is what registers LibTorch's CUDA kernels and hooks.
    libraries: ['torch', 'torch_cpu', 'c10', ...(cuda ? ['torch_cuda', 'c10_cuda'] : [])].map((name) => `-l${name}`),
  };
}

// The first folder holding cuda_runtime_api.h; none is not an error (the addon then reports no allocator figures).
function cudaIncludeDirs(env, libDir) {
  const candidates = [
    env.CUDA_HOME && path.join(env.CUDA_HOME, 'include'),
    env.CUDA_PATH && path.join(env.CUDA_PATH, 'include'),
    // A pip torch package: <site-packages>/torch/lib, the runtime's headers in <site-packages>/nvidia/cuda_runtime.
    path.resolve(libDir, '..', '..', 'nvidia', 'cuda_runtime', 'include'),
    '/usr/local/cuda/include',
  ].filter(Boolean);
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'cuda_runtime_api.h')));
  return found ? [found] : [];
}

function libFile(name) {
  return process.platform === 'darwin' ? `lib${name}.dylib` : `lib${name}.so`;
}

function readVersion(cmakeDir) {
  const text = fs.readFileSync(path.join(cmakeDir, 'TorchConfigVersion.cmake'), 'utf8');
  const match = /set\(PACKAGE_VERSION "([^"]+)"\)/.exec(text);
  return match ? match[1] : 'unknown';
}

// Debian and the "cxx11 ABI" zips use the new libstdc++ ABI; pip wheels and the "pre-cxx11" zips the old one. The
// addon must be compiled with the same _GLIBCXX_USE_CXX11_ABI, or std::string arguments break at link or load time.
function readCxx11Abi(cmakeDir) {
  const text = fs.readFileSync(path.join(cmakeDir, 'TorchConfig.cmake'), 'utf8');
  const match = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(text);
  return match ? Number(match[1]) : 1;
}

module.exports = { locate };

if (require.main === module) {
  const found = locate();
  const field = process.argv[2];
  if (found.error) {
    process.stderr.write(`${found.error}\nSet LIBTORCH_DIR or Torch_DIR, or install libtorch-dev; ` +
      'see docs/install.md#libtorch\n');
    process.exit(1);
  }
  if (!field) {
    process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
  } else if (!(field in found)) {
    process.stderr.write(`unknown field '${field}'; known: ${Object.keys(found).join(', ')}\n`);
    process.exit(2);
  } else {
    const value = found[field];
    process.stdout.write(`${Array.isArray(value) ? value.join(' ') : String(value)}\n`);
  }
}
