// SPDX-License-Identifier: Apache-2.0
// When the addon does not load, one message says what failed, where, and the commands that fix each likely cause.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, SanError } from '../../lib/errors';
import { explainLoadFailure, loadAddon } from '../../lib/runtime/native';
import { addonPath } from '../helpers/paths';

const platform = `${process.platform}-${process.arch}`;

test('EXPECTED FAILURE - an addon that is not built', () => {
  const missing = path.join(os.tmpdir(), 'san-node-missing', 'san_node.node');
  expect(() => loadAddon(missing)).toThrow(SanError);
  try {
    loadAddon(missing);
  } catch (error) {
    expect(error).toMatchObject({ code: ErrorCode.ADDON_LOAD });
    const lines = (error as Error).message.split('\n');
    expect(lines[0]).toBe(`Could not load the san-node native addon on ${platform} (Node ${process.version}, ` +
      `Node-API ${process.versions.napi}).`);
    expect(lines[1]).toMatch(new RegExp(`^${missing}: Cannot find module`));
    expect(lines[2]).toBe('Possible solutions:');
    expect(lines[3]).toMatch(/^- The addon is not built\. Build it with cmake-js: npm run build:addon .*#building/);
    expect(lines.at(-1)).toBe('See docs/install.md for the prerequisites and each of these errors.');
  }
});

test('EXPECTED FAILURE - a file that is not a shared library', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'san-node-'));
  const broken = path.join(dir, 'san_node.node');
  fs.writeFileSync(broken, 'not an ELF file');
  try {
    const explained = /: .*(invalid ELF header|file too short)\nPossible solutions:\n- Rebuild the addon: npm run/;
    expect(() => loadAddon(broken)).toThrow(explained);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('OPENBLAS_NUM_THREADS is set to 1 before loading unless the user chose it', () => {
  loadAddon(addonPath);
  expect(process.env.OPENBLAS_NUM_THREADS).toBeDefined();
});

describe('each recognised cause gets its own hint', () => {
  // [cause, the dynamic loader's message, the hint line]
  const cases: Array<[string, string, RegExp]> = [
    ['LibTorch not on the library path', 'libtorch_cpu.so.1.13: cannot open shared object file: No such file',
      new RegExp("^- LibTorch's libraries are not on the library path\\. Install Debian's: apt-get install " +
        'libtorch-dev; or, for a LibTorch unpacked elsewhere: export LD_LIBRARY_PATH=\\S+:\\$LD_LIBRARY_PATH\\. ' +
        'docs/install\\.md#libtorch-libraries-not-found$', 'm')],
    ['a CUDA library missing', 'libcudnn.so.8: cannot open shared object file: No such file or directory',
      /^- A CUDA library of the CUDA LibTorch is missing\..* unset LIBTORCH_DIR && npm run build:addon\. .*#cuda-li/m],
    ['an old libstdc++', "libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by san_node.node)",
      /^- This system's libstdc\+\+ lacks GLIBCXX_3\.4\.32, .* npm run build:addon\. .*#glibcxx-or-cxxabi-not-found$/m],
    ['another LibTorch', 'san_node.node: undefined symbol: _ZN5torch3jit4loadERKNSt7__cxx1112basic_string',
      /^- The addon was built against another LibTorch than the one being loaded.* build:addon\. .*#undefined-sym/m],
  ];
  test.each(cases)('%s', (_name, message, hint) => {
    expect(explainLoadFailure(addonPath, new Error(message))).toMatch(hint);
  });
});
