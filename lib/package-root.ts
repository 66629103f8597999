// SPDX-License-Identifier: Apache-2.0
/**
 * The package's folder (the parent of lib/ and dist/), for the files that ship beside the code: scripts/, docs/,
 * assets/, models/. One definition, so that no module counts `..` from its own depth.
 * @module
 */
import * as path from 'node:path';

export const PACKAGE_ROOT = path.resolve(__dirname, '..');
