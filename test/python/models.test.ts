// Runs the Python tests of models/ (pytest, Debian's PyTorch) and reports each one as a jest test, so that
// `npm test` has one summary and one exit code for both languages.
//
// pytest runs once, while this file is collected: jest has no way to mark a test skipped after it started, and
// skips must show as skips, not passes.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonBin, repoRoot } from '../helpers/paths';

interface Outcome {
  nodeid: string;
  outcome: 'passed' | 'failed' | 'skipped';
  detail: string;
}

const testsDir = path.join(repoRoot, 'models', 'tests');
const PYTEST_TIMEOUT_MS = 20 * 60 * 1000;

function runPytest(): { outcomes: Outcome[]; problem?: string } {
  const outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'san-pytest-')), 'outcomes.jsonl');
  const run = spawnSync(pythonBin, ['-m', 'pytest', '-q', '-p', 'jest_bridge', '-p', 'no:cacheprovider', testsDir], {
    cwd: repoRoot,
    env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'test', 'python'), JEST_BRIDGE_OUT: outFile },
    encoding: 'utf8',
    timeout: PYTEST_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  const outcomes: Outcome[] = fs.existsSync(outFile)
    ? fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Outcome)
    : [];
  fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
  // Exit codes 0 (all passed) and 1 (some failed) are reported per test; anything else is pytest itself failing.
  const pytestBroke = run.error !== undefined || run.status === null || run.status > 1 || outcomes.length === 0;
  if (!pytestBroke) return { outcomes };
  const why = run.error?.message ?? (run.status === null ? `killed by ${run.signal}` : `exit code ${run.status}`);
  return { outcomes, problem: `pytest did not run the suite (${why}):\n${run.stdout}\n${run.stderr}` };
}

describe('models/ (pytest)', () => {
  if (!fs.existsSync(testsDir)) {
    test.skip('models/tests does not exist', () => undefined);
    return;
  }
  const { outcomes, problem } = runPytest();
  if (problem !== undefined) {
    test('pytest runs', () => {
      throw new Error(problem);
    });
  }
  for (const { nodeid, outcome, detail } of outcomes) {
    const name = nodeid.replace(/^models\/tests\//, '');
    if (outcome === 'skipped') {
      test.skip(`${name} (skipped: ${detail})`, () => undefined);
    } else {
      test(name, () => {
        if (outcome === 'failed') throw new Error(detail);
      });
    }
  }
});
