// SPDX-License-Identifier: Apache-2.0
// A temporary folder for one test file: made before its tests, removed after them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Registers beforeAll/afterAll hooks; the returned function gives the folder's path once the hooks have run. */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error(`the temporary folder ${prefix}… is made in beforeAll; ask for it in a test`);
    return dir;
  };
}
