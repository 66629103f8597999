// SPDX-License-Identifier: Apache-2.0
// Reading torch.save checkpoints (zip archives) and binding their tensors into TorchScript templates, for
// `san-seg import` (lib/import/). The pickle inside the archive is parsed in JS; this file reads the archive with
// LibTorch's own reader (caffe2::serialize::PyTorchStreamReader, what torch.load uses) and knows nothing about SAN.
#ifndef SAN_MODULE_IMPORT_H_
#define SAN_MODULE_IMPORT_H_

#include <napi.h>

namespace san {

// readCheckpointPickle(file) -> Buffer: the archive's data.pkl. Synchronous.
// Throws ERR_SAN_MODEL_LOAD when the file is not a readable PyTorch zip archive.
Napi::Value ReadCheckpointPickle(const Napi::CallbackInfo& info);

// readCheckpointTensor(file, spec) -> a float32 JS tensor: one tensor of the archive, cast to float32 (for the
// few scalars an importer needs, such as a logit scale). spec: { record, dtype, offset, sizes, strides }.
Napi::Value ReadCheckpointTensor(const Napi::CallbackInfo& info);

// bindCheckpoint(file, jobs) -> Promise<void>, on a worker thread. Each job { template, output, tensors: [spec
// with `name`] } loads the TorchScript file `template`, replaces every parameter and buffer by the named tensor
// of the archive (cast to the template's dtype, the same shape required), and saves the module to `output`.
// Every parameter and buffer must be named exactly once. Rejects with ERR_SAN_MODEL_LOAD or ERR_SAN_SHAPE.
Napi::Value BindCheckpoint(const Napi::CallbackInfo& info);

}  // namespace san

#endif  // SAN_MODULE_IMPORT_H_
