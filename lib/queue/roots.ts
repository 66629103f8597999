// SPDX-License-Identifier: Apache-2.0
/**
 * The only files a worker touches for a job: images read from under its input root and label maps written under its
 * output root. Both are off unless the worker is given the folder; a job names a path relative to it, never an
 * absolute path or a URL, and symbolic links cannot lead out of it.
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';

/**
 * The real path of `relative` under `root`.
 * @param root - the allow-listed folder, or undefined when the worker reads no files.
 * @throws RangeError (ERR_SAN_INVALID_ARG) when reading files is off, or the path is absolute or leads out of the
 *   root; SanError ERR_SAN_IMAGE when there is no such file.
 */
export async function resolveUnderRoot(root: string | undefined, relative: string, name: string): Promise<string> {
  if (root === undefined) {
    throw is.invalidParameterError(name, 'image bytes: this worker reads no files (it has no --input-root)', relative,
      'range');
  }
  if (relative.length === 0 || path.isAbsolute(relative) || relative.includes('\0') || /^[a-z][a-z0-9+.-]*:/i.test(relative)) {
    throw is.invalidParameterError(name, 'a path relative to the input root', relative, 'range');
  }
  let real: string;
  try {
    real = await fsp.realpath(path.resolve(root, relative));
  } catch (error) {
    throw new SanError(ErrorCode.IMAGE, `Could not read ${name} '${relative}' under the input root: ` +
      `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const realRoot = await fsp.realpath(root);
  if (!real.startsWith(realRoot + path.sep)) {
    throw is.invalidParameterError(name, 'a path inside the input root', relative, 'range');
  }
  return real;
}

/**
 * Writes `bytes` to `root/fileName` atomically (a temporary file, then a rename): a job run twice leaves one whole
 * file, never a torn one.
 * @returns the path relative to the root.
 */
export async function writeUnderRoot(root: string, fileName: string, bytes: Buffer | string): Promise<string> {
  const target = path.join(root, fileName);
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(temporary, bytes);
    await fsp.rename(temporary, target);
  } catch (error) {
    await fsp.rm(temporary, { force: true });
    throw error;
  }
  return fileName;
}
