// SPDX-License-Identifier: Apache-2.0
/**
 * The addon's checkpoint entries (cpp/module_import.h), typed. They live beside the runtime's in the same addon;
 * only lib/import/ calls them.
 * @module
 */
import { binding, type Binding } from '../runtime/native';
import type { Tensor } from '../runtime/tensor';

/** Where a tensor lies in a torch.save archive (see checkpoint.ts `TensorRef`). */
export interface NativeTensorSpec {
  record: string;
  dtype: string;
  offset: number;
  sizes: readonly number[];
  strides: readonly number[];
}

/** One TorchScript template to fill: every parameter and buffer `name` gets the archive tensor `spec`. */
export interface NativeBindJob {
  template: string;
  output: string;
  tensors: Array<NativeTensorSpec & { name: string }>;
}

/** @ignore */
export interface ImportBinding {
  /** The archive's data.pkl. Throws ERR_SAN_MODEL_LOAD when `file` is not a torch.save zip archive. */
  readCheckpointPickle(file: string): Buffer;
  /** One tensor of the archive as float32 (for scalars such as the logit scale). */
  readCheckpointTensor(file: string, spec: NativeTensorSpec): Tensor;
  /** Fills and saves each template, on a worker thread. Rejects with ERR_SAN_MODEL_LOAD or ERR_SAN_SHAPE. */
  bindCheckpoint(file: string, jobs: NativeBindJob[]): Promise<void>;
}

/** The addon, with its checkpoint entries. @throws SanError ERR_SAN_ADDON_LOAD */
export function importBinding(): Binding & ImportBinding {
  return binding() as Binding & ImportBinding;
}
