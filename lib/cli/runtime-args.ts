// SPDX-License-Identifier: Apache-2.0
/**
 * The flags of every command that loads a model (segment, eval, serve, worker): the device, the dtype and the
 * threads LibTorch runs it with. One table, one help text and one check, so that the four commands agree.
 * @module
 */
import * as os from 'node:os';
import { DEVICE_PATTERN, MODEL_DTYPES, TORCH_MODEL_DEFAULTS, TorchModelOptions } from '../runtime/torch-model';
import * as is from '../is';
import { parsePositiveInteger, UsageError } from './common';

export const RUNTIME_FLAGS = {
  device: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** Help lines are wrapped to this width, as the commands' own. */
const HELP_WIDTH = 100;

/** The flags' help, each description starting at `column`, where the command's other descriptions start. */
export function runtimeUsage(column: number): string {
  return [
    help('--device NAME', 'cpu, cuda, cuda:N, or auto: the first GPU if there is one '
      + `(default: ${TORCH_MODEL_DEFAULTS.device})`, column),
    help('--dtype NAME', 'float32 (default); bfloat16 on CUDA or on a CPU with AVX512-BF16 or AMX: about twice '
      + 'as fast, its scores within about 1e-2 of float32\'s (docs/models.md); float16 on CUDA', column),
    help('--threads N', `LibTorch threads (default: the machine's cores, ${os.availableParallelism()} here)`, column),
  ].join('\n');
}

/** `--device`, `--dtype` and `--threads` as model options; the device's default when not given. */
export function parseRuntimeArgs(values: { device?: string; dtype?: string; threads?: string },
  command: string): TorchModelOptions {
  const load: TorchModelOptions = { device: checkDevice(values.device, command) };
  if (values.dtype !== undefined) {
    if (!is.inArray(values.dtype, MODEL_DTYPES)) {
      throw new UsageError(`--dtype must be one of: ${MODEL_DTYPES.join(', ')} (got '${values.dtype}')`, command);
    }
    load.dtype = values.dtype;
  }
  if (values.threads !== undefined) load.threads = parsePositiveInteger(values.threads, '--threads', command);
  return load;
}

function checkDevice(device: string | undefined, command: string): string {
  if (device === undefined) return TORCH_MODEL_DEFAULTS.device;
  if (!DEVICE_PATTERN.test(device)) {
    throw new UsageError(`--device must be one of: cpu, cuda, cuda:N, auto (got '${device}')`, command);
  }
  return device;
}

/** `  FLAG   description…` with the description wrapped at HELP_WIDTH and its lines starting at `column`. */
function help(flag: string, description: string, column: number): string {
  const lines: string[] = [];
  let line = `  ${flag}`.padEnd(column);
  let empty = true;
  for (const word of description.split(' ')) {
    if (!empty && line.length + word.length > HELP_WIDTH) {
      lines.push(line.trimEnd());
      line = ' '.repeat(column);
    }
    line += `${word} `;
    empty = false;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}
