// SPDX-License-Identifier: Apache-2.0
// When the addon does not load, one message says what failed, where, and the commands that fix each likely cause.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, SanError } from '../../lib/errors';
import { explainLoadFailure, loadAddon } from '../../lib/runtime/native';
import { addonPath, repoRoot } from '../helpers/paths';

const platform = `${process.platform}-${process.arch}`;
/** Hints link to the package's own copy of the page, which the package ships. */
const installDoc = path.join(repoRoot, 'docs', 'install.md');
const rebuild = 'SAN_BUILD_FROM_SOURCE=1 npm rebuild san-node --foreground-scripts';

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
    expect(lines[3]).toMatch(new RegExp("^- The addon is not built, .* Run the package's install script, .*: npm " +
      'rebuild san-node --foreground-scripts \\(in a git checkout of san-node: npm run build:addon\\)\\. ' +
      `${installDoc}#building-from-source$`));
    expect(lines.at(-1)).toBe(`See ${installDoc} for the prerequisites and each of these errors.`);
  }
});

test('EXPECTED FAILURE - a file that is not a shared library', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'san-node-'));
  const broken = path.join(dir, 'san_node.node');
  fs.writeFileSync(broken, 'not an ELF file');
  try {
    const explained = /: .*(invalid ELF header|file too short)\nPossible solutions:\n- Rebuild the addon: SAN_BUILD/;
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
        `${installDoc}#libtorch-libraries-not-found$`, 'm')],
    ['a CUDA library missing', 'libcudnn.so.8: cannot open shared object file: No such file or directory',
      new RegExp('^- A CUDA library of the CUDA LibTorch is missing\\..* unset LIBTORCH_DIR && ' +
        `${rebuild}\\. .*#cuda-li`, 'm')],
    ['an old libstdc++', "libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by san_node.node)",
      new RegExp(`^- This system's libstdc\\+\\+ lacks GLIBCXX_3\\.4\\.32, .*: ${rebuild}\\. ` +
        '.*#glibcxx-or-cxxabi-not-found$', 'm')],
    ['another LibTorch', 'san_node.node: undefined symbol: _ZN5torch3jit4loadERKNSt7__cxx1112basic_string',
      new RegExp(`^- The addon was built against another LibTorch than the one being loaded.*: ${rebuild}\\. ` +
        '.*#undefined-sym', 'm')],
  ];
  test.each(cases)('%s', (_name, message, hint) => {
    expect(explainLoadFailure(addonPath, new Error(message))).toMatch(hint);
  });

  test('every link names a heading of the shipped docs/install.md', () => {
    const messages = [...cases.map(([, message]) => explainLoadFailure(addonPath, new Error(message))),
      explainLoadFailure(path.join(os.tmpdir(), 'san-node-missing.node'), new Error('Cannot find module')),
      explainLoadFailure(addonPath, new Error('something else'))];
    const links = new Set(messages.flatMap((text) => [...text.matchAll(/(\S+\.md)#([\w-]+)/g)]
      .map(([, file, anchor]) => `${file}#${anchor}`)));
    expect(links.size).toBeGreaterThanOrEqual(5);
    for (const link of links) {
      const [file, anchor] = link.split('#');
      expect(file).toBe(installDoc);
      // GitHub's anchors: the heading lower-cased, spaces to hyphens, other punctuation dropped.
      const anchors = fs.readFileSync(file, 'utf8').split('\n').filter((line) => /^#+ /.test(line))
        .map((line) => line.replace(/^#+ /, '').toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s/g, '-'));
      expect(anchors).toContain(anchor);
    }
  });
});
