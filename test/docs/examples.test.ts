// SPDX-License-Identifier: Apache-2.0
// The TypeScript examples of README.md and docs/*.md, so that they cannot rot: every ```ts block is a complete ES
// module, type-checked strictly against the package as an app imports it ('san-node', through its exports map);
// a block fenced ```ts run needs nothing from outside the package and is also run. And one model-folder naming.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot, testModelsDir } from '../helpers/paths';

interface Example {
  /** `README.md:57`: the file and line of the opening fence. */
  where: string;
  code: string;
  run: boolean;
}

const DOCUMENTS = ['README.md', ...fs.readdirSync(path.join(repoRoot, 'docs')).filter((file) => file.endsWith('.md'))
  .map((file) => `docs/${file}`)];

function examples(): Example[] {
  const found: Example[] = [];
  for (const document of DOCUMENTS) {
    const lines = fs.readFileSync(path.join(repoRoot, document), 'utf8').split('\n');
    for (let start = 0; start < lines.length; start++) {
      const fence = /^```ts( run)?\s*$/.exec(lines[start]);
      if (!fence) continue;
      const end = lines.indexOf('```', start + 1);
      found.push({ where: `${document}:${start + 1}`, code: lines.slice(start + 1, end).join('\n'), run: !!fence[1] });
      start = end;
    }
  }
  return found;
}

/** A file name for an example: `README.md:57` → `README-57.mts`. */
const fileName = (example: Example): string => `${example.where.replace(/\.md:/, '-').replace(/\//g, '_')}.mts`;

let dir: string;
beforeAll(() => {
  // Inside the repository, so that 'san-node' resolves to this package by its own name, as from an app.
  fs.mkdirSync(testModelsDir, { recursive: true });
  dir = fs.mkdtempSync(path.join(testModelsDir, 'doc-examples-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const all = examples();

test('the docs have TypeScript examples, and at least one runs as written', () => {
  expect(all.length).toBeGreaterThanOrEqual(4);
  expect(all.some((example) => example.where.startsWith('README.md') && example.run)).toBe(true);
});

test('every example type-checks strictly against the package, then the runnable ones run', () => {
  for (const example of all) fs.writeFileSync(path.join(dir, fileName(example)), `${example.code}\n`);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', rootDir: '.', outDir: 'out',
      types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')], skipLibCheck: true,
    },
    include: ['*.mts'],
  }));
  const tsc = spawnSync('node', [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
    encoding: 'utf8',
  });
  // Errors name the example's file; say which document and line that is.
  const report = (tsc.stdout + tsc.stderr).replace(/^(\S+)\.mts\((\d+),\d+\)/gm, (_all, name: string, line: string) => {
    const example = all.find((candidate) => fileName(candidate) === `${path.basename(name)}.mts`);
    return example ? `${example.where} + ${line} lines` : `${name}.mts(${line})`;
  });
  expect(report).toBe('');

  for (const example of all.filter((candidate) => candidate.run)) {
    const compiled = path.join(dir, 'out', fileName(example).replace(/\.mts$/, '.mjs'));
    const run = spawnSync('node', [compiled], { cwd: dir, encoding: 'utf8', timeout: 240_000 });
    expect({ where: example.where, status: run.status, stderr: run.stderr })
      .toEqual({ where: example.where, status: 0, stderr: '' });
  }
});

test('one naming of model folders: models/vit_b_16 and models/vit_l_14_336 for the official weights', () => {
  const files = [...DOCUMENTS, ...['lib/index.ts', 'lib/cli/main.ts', 'lib/cli/demo.ts', 'lib/cli/export.ts']
    .filter((file) => fs.existsSync(path.join(repoRoot, file)))];
  const names = new Set<string>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    // A folder given to --model, --out or SanModel.load() whose name says it holds an official SAN variant.
    for (const [, name] of text.matchAll(/(?:--model |--out |-o |load\(')(\S*(?:vit|san)[\w.-]*)/gi)) {
      if (!name.endsWith('.pth')) names.add(`${file}: ${name.replace(/'$/, '')}`);
    }
  }
  const odd = [...names].filter((entry) => !/: (models\/(vit_b_16|vit_l_14_336)|DIR)$/.test(entry));
  expect(odd).toEqual([]);
});
