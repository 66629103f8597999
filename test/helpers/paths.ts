// Where scripts/setup.sh puts what the tests load; the same variables and defaults as scripts/env.sh.
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');

function fromEnv(name: string, fallback: string): string {
  return path.resolve(repoRoot, process.env[name] ?? fallback);
}

/** Debian's Python with python3-torch (not whatever `python3` is first on PATH). */
export const pythonBin = process.env.SAN_PYTHON ?? '/usr/bin/python3';
/** The addon the tests load: node-gyp's build (scripts/install.js). */
export const addonPath = fromEnv('SAN_ADDON', 'build/Release/san_node.node');
/** Seeded random exports: `tiny/` (a whole SAN model folder) and `native/` (small per-dtype modules), outside
 * build/, which node-gyp wipes. */
export const testModelsDir = fromEnv('SAN_TEST_MODELS', 'test-models');
/** The reference material shared beside the repository, absent on some machines. */
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
