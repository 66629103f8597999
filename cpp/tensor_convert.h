// SPDX-License-Identifier: Apache-2.0
// JS tensors `{ type, dims, data }` to and from at::Tensor.
//
// When data is shared and when it is copied:
// * In: the TypedArray's elements are copied into a new CPU tensor when the call is submitted, on the JS thread. A
//   tensor over the JS memory itself would be read later, on the executor thread, after JS may have transferred or
//   detached its buffer; one memcpy of the inputs (an image canvas is a few MB) is the price of that safety.
// * Out: the ArrayBuffer is an external one over the tensor's storage, which it keeps alive; its finaliser frees
//   the tensor and the size is reported to V8 as external memory. Where external buffers are refused (some
//   embedders) or `copy` is asked for, the data is copied into a V8-owned ArrayBuffer instead.
#ifndef SAN_TENSOR_CONVERT_H_
#define SAN_TENSOR_CONVERT_H_

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <string>
#include <vector>

namespace san {

// JS values that must outlive a call: the model object itself.
using Pins = std::vector<Napi::Reference<Napi::Value>>;

// Whether `value` has the shape of a JS tensor (an object with `type`, `dims` and `data`).
bool IsJsTensor(Napi::Value value);

// Checks a JS tensor field by field and returns a CPU tensor holding a copy of its data; `where` names it in
// messages ("args[0]"). Throws SanException (TypeError/RangeError with ERR_SAN_DTYPE or ERR_SAN_SHAPE).
at::Tensor TensorFromJs(Napi::Object tensor, const std::string& where);

// Whether a tensor of this dtype can be returned to JS.
bool HasJsType(c10::ScalarType dtype);

// A contiguous CPU tensor as a JS tensor; shares the tensor's storage unless `copy`.
Napi::Object TensorToJs(Napi::Env env, const at::Tensor& tensor, bool copy);

}  // namespace san

#endif  // SAN_TENSOR_CONVERT_H_
