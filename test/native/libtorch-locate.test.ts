// SPDX-License-Identifier: Apache-2.0
// scripts/libtorch.js, which both builds and the loader ask where LibTorch is, on fake LibTorch folders.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../helpers/paths';

interface Layout {
  source: string;
  cmakeDir: string;
  includeDirs: string[];
  libDir: string;
  version?: string;
  cuda?: boolean;
  cudaIncludeDirs?: string[];
  cxx11Abi?: number;
  libraries?: string[];
  error?: string;
}
const { locate } = require(path.join(repoRoot, 'scripts', 'libtorch.js')) as { locate(env: object): Layout };

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'libtorch-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** An unpacked libtorch zip: include/, lib/, share/cmake/Torch/. */
function fakeZip({ cuda, abi }: { cuda: boolean; abi: 0 | 1 }, dir = root): void {
  const write = (file: string, text = ''): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  write('include/torch/script.h');
  write('lib/libtorch.so');
  if (cuda) write('lib/libtorch_cuda.so');
  write('share/cmake/Torch/TorchConfigVersion.cmake', 'set(PACKAGE_VERSION "2.1.2")\n');
  write('share/cmake/Torch/TorchConfig.cmake', `  set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=${abi}")\n`);
}

test('LIBTORCH_DIR with a CUDA, pre-cxx11 ABI zip: links torch_cuda and c10_cuda, compiles with ABI 0', () => {
  fakeZip({ cuda: true, abi: 0 });
  expect(locate({ LIBTORCH_DIR: root })).toEqual({
    source: 'LIBTORCH_DIR',
    cmakeDir: path.join(root, 'share', 'cmake', 'Torch'),
    includeDirs: [path.join(root, 'include'), path.join(root, 'include', 'torch', 'csrc', 'api', 'include')],
    libDir: path.join(root, 'lib'),
    version: '2.1.2',
    cuda: true,
    // Whatever CUDA headers this machine has (/usr/local/cuda); the next test pins where they are looked for.
    cudaIncludeDirs: expect.any(Array),
    cxx11Abi: 0,
    libraries: ['-ltorch', '-ltorch_cpu', '-lc10', '-ltorch_cuda', '-lc10_cuda'],
  });
});

test("a CUDA LibTorch's runtime headers: the nvidia wheel beside a pip torch folder, or CUDA_HOME first", () => {
  const torch = path.join(root, 'site-packages', 'torch');
  fakeZip({ cuda: true, abi: 1 }, torch);
  const wheel = path.join(root, 'site-packages', 'nvidia', 'cuda_runtime', 'include');
  const home = path.join(root, 'cuda-home');
  for (const dir of [wheel, path.join(home, 'include')]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cuda_runtime_api.h'), '');
  }
  expect(locate({ LIBTORCH_DIR: torch }).cudaIncludeDirs).toEqual([wheel]);
  expect(locate({ LIBTORCH_DIR: torch, CUDA_HOME: home }).cudaIncludeDirs).toEqual([path.join(home, 'include')]);
  fakeZip({ cuda: false, abi: 1 }, path.join(root, 'cpu'));
  expect(locate({ LIBTORCH_DIR: path.join(root, 'cpu'), CUDA_HOME: home }).cudaIncludeDirs).toEqual([]);
});

test('Torch_DIR pointing into a CPU zip finds the same folders', () => {
  fakeZip({ cuda: false, abi: 1 });
  const found = locate({ Torch_DIR: path.join(root, 'share', 'cmake', 'Torch') });
  expect(found).toMatchObject({ source: 'Torch_DIR', libDir: path.join(root, 'lib'), cuda: false, cxx11Abi: 1 });
  expect(found.libraries).toEqual(['-ltorch', '-ltorch_cpu', '-lc10']);
});

test('a folder without LibTorch says what is missing', () => {
  expect(locate({ LIBTORCH_DIR: root }).error).toBe(
    `LibTorch not found (LIBTORCH_DIR): no TorchConfig.cmake (${root}/share/cmake/Torch/TorchConfig.cmake), ` +
      `the headers (${root}/include/torch/script.h), the libraries (${root}/lib/libtorch.so)`,
  );
});

test("without either variable, Debian's libtorch-dev", () => {
  expect(locate({})).toMatchObject({
    source: 'Debian libtorch-dev',
    includeDirs: ['/usr/include/torch/csrc/api/include'],
  });
});
