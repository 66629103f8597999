// SPDX-License-Identifier: Apache-2.0
/**
 * Reads the state dict of a `torch.save` checkpoint without Python: the archive's `data.pkl` comes from LibTorch's
 * own zip reader (cpp/module_import.cc) and is unpickled by `pickleparser`, which runs no code: the only callables
 * are the few torch.save needs, registered below; any other global becomes an inert placeholder object. A tensor
 * becomes a {@link TensorRef}: where its data lies in the archive, read later by the addon.
 * @module
 */
import * as fs from 'node:fs';
import { NameRegistry, Parser } from 'pickleparser';
import { ErrorCode, SanError } from '../errors';
import { importBinding } from './native';

/** A tensor of the archive: a view (offset, sizes, strides, in elements) of storage `data/<record>`. */
export interface TensorRef {
  readonly record: string;
  readonly dtype: string;
  readonly offset: number;
  readonly sizes: readonly number[];
  readonly strides: readonly number[];
}

/** The storage classes torch.save names (`torch.FloatStorage`, ...) and the element types they hold. */
const STORAGE_DTYPES: Readonly<Record<string, string>> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
/** Entries of a container that hold the state dict, in the order models/san/checkpoint.py tries them. */
const CONTAINERS = ['model', 'state_dict'];
/** How many names an error lists before "and N more", as models/san/checkpoint.py. */
const LISTED_KEYS = 12;

class Storage {
  constructor(readonly record: string, readonly dtype: string) {}
}

class StorageType {
  constructor(readonly dtype: string) {}
}

function isIntList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => Number.isSafeInteger(item));
}

/** torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, ...). */
function rebuildTensor(storage: unknown, offset: unknown, sizes: unknown, strides: unknown): TensorRef {
  if (!(storage instanceof Storage) || !Number.isSafeInteger(offset) || !isIntList(sizes) || !isIntList(strides) ||
      sizes.length !== strides.length) {
    throw new Error('a tensor with an unreadable storage, offset, size or stride');
  }
  return { record: storage.record, dtype: storage.dtype, offset: offset as number, sizes, strides };
}

function unpickler(): Parser {
  const names = new NameRegistry()
    .register('torch._utils', '_rebuild_tensor_v2', rebuildTensor)
    // nn.Parameter(data, requires_grad, backward_hooks): the data is all a state dict needs.
    .register('torch._utils', '_rebuild_parameter', (data: unknown) => data)
    .register('torch._utils', '_rebuild_parameter_with_state', (data: unknown) => data)
    // A tensor subclass: func(*args) rebuilds the plain tensor.
    .register('torch._tensor', '_rebuild_from_type_v2', (func: (...args: unknown[]) => unknown, _type: unknown,
      args: unknown[]) => func(...args))
    // State dicts are OrderedDicts; their `_metadata` (set by a BUILD) is not needed.
    .register('collections', 'OrderedDict', () => new Map());
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    names.register('torch', name, function storageType() { return new StorageType(dtype); });
  }
  const storageTypes = new Map<unknown, string>(Object.entries(STORAGE_DTYPES).map(
    ([name, dtype]) => [names.resolve('torch', name), dtype]));
  return new Parser({
    nameResolver: names,
    // torch.save's persistent id: ('storage', storage_type, key, location, numel).
    persistentResolver: {
      resolve(pid: unknown): Storage {
        const [kind, type, key] = Array.isArray(pid) ? pid as unknown[] : [];
        const dtype = storageTypes.get(type);
        if (kind !== 'storage' || dtype === undefined || typeof key !== 'string') {
          throw new Error(`an unknown persistent object ${JSON.stringify(String(pid))}`);
        }
        return new Storage(key, dtype);
      },
    },
    unpicklingTypeOfDictionary: 'Map',
  });
}

function checkpointError(file: string, problem: string): SanError {
  return new SanError(ErrorCode.MODEL_LOAD, `Checkpoint ${file} ${problem}`);
}

/** `keys` joined, the first {@link LISTED_KEYS} of them, then "and N more". */
export function listing(keys: readonly string[]): string {
  const shown = keys.slice(0, LISTED_KEYS).join(', ');
  return keys.length <= LISTED_KEYS ? shown : `${shown} and ${keys.length - LISTED_KEYS} more`;
}

/** Why a file that LibTorch cannot open as an archive is not one, in words a user can act on. */
function describeUnreadable(file: string, nativeMessage: string): string {
  const head = Buffer.alloc(2);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 2, 0);
  } finally {
    fs.closeSync(fd);
  }
  // 0x80 0x02: a bare pickle, which is how torch.save wrote files before PyTorch 1.6 (the legacy format).
  const legacy = head[0] === 0x80 && head[1] === 0x02;
  return legacy
    ? 'is in the legacy torch.save format (PyTorch < 1.6), which san-seg import does not read: re-save it with ' +
      'a newer PyTorch, or use `san-seg export` (Python)'
    : `cannot be read as a PyTorch checkpoint (a torch.save zip archive): ${
      nativeMessage.replace(/^\[enforce fail at [^\]]*\][\s.]*/, '')}`;
}

/**
 * The tensors of the state dict in `file`: detectron2's `{'model': state_dict, ...}`, a `{'state_dict': ...}`
 * container or a bare state dict, as models/san/checkpoint.py accepts.
 * @throws SanError ERR_SAN_MODEL_LOAD when the file is missing, not a torch.save archive, or holds no state dict.
 */
export function readStateDict(file: string): Map<string, TensorRef> {
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw checkpointError(file, 'does not exist');
  let pickle: Buffer;
  try {
    pickle = importBinding().readCheckpointPickle(file);
  } catch (error) {
    throw checkpointError(file, describeUnreadable(file, (error as Error).message));
  }
  let root: unknown;
  try {
    root = unpickler().parse(pickle);
  } catch (error) {
    throw checkpointError(file, `has a data.pkl that is not a checkpoint's pickle: ${(error as Error).message}`);
  }
  return unwrapStateDict(root, file);
}

function unwrapStateDict(root: unknown, file: string): Map<string, TensorRef> {
  let dict = root;
  if (dict instanceof Map) {
    const container = CONTAINERS.find((name) => (dict as Map<unknown, unknown>).get(name) instanceof Map);
    if (container !== undefined) dict = dict.get(container);
  }
  if (!(dict instanceof Map) || dict.size === 0) {
    throw checkpointError(file, "holds no state dict (expected {'model': ...}, {'state_dict': ...} or a mapping of " +
      'parameter names to tensors)');
  }
  const notTensors = [...dict].filter(([key, value]) => typeof key !== 'string' || !isTensorRef(value))
    .map(([key]) => String(key));
  if (notTensors.length > 0) throw checkpointError(file, `is not a state dict: ${listing(notTensors)} are not tensors`);
  return dict as Map<string, TensorRef>;
}

function isTensorRef(value: unknown): value is TensorRef {
  return typeof value === 'object' && value !== null && typeof (value as TensorRef).record === 'string' &&
    isIntList((value as TensorRef).sizes);
}

/** "768x3x16x16", or "scalar" for a 0-dim tensor, as the Python messages write shapes. */
export function shapeText(shape: readonly number[]): string {
  return shape.length === 0 ? 'scalar' : shape.join('x');
}
