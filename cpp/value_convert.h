// SPDX-License-Identifier: Apache-2.0
// Method arguments and results on their way between JS and TorchScript.
//
//   JS thread         executor thread                                        JS thread
//   ValueFromJs  ->   ValueToIValue (typed by the method's schema) -> run ->  IValueToValue  ->  ValueToJs
//
// `Value` is the plain C++ form in between: it holds no N-API handle, so it can cross threads.
#ifndef SAN_VALUE_CONVERT_H_
#define SAN_VALUE_CONVERT_H_

#include <ATen/core/ivalue.h>
#include <ATen/core/jit_type.h>
#include <napi.h>

#include <string>
#include <vector>

#include "tensor_convert.h"

namespace san {

struct Value {
  enum class Kind { kNone, kBool, kInt, kDouble, kString, kTensor, kList, kTuple, kDict };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string string;
  at::Tensor tensor;
  std::vector<Value> items;       // kList and kTuple elements, kDict values
  std::vector<std::string> keys;  // kDict keys, in the dict's order
};

// How input tensors are placed before a call: on the model's device, and, for a float16 or bfloat16 model, with
// floating inputs cast to that dtype there (none for a call with RunRequest::castInputs false).
struct Placement {
  c10::Device device = c10::kCPU;
  c10::optional<c10::ScalarType> castFloating;
};

// Executor or stager thread. `tensor` on the placement's device and dtype; itself when it is there already.
at::Tensor PlaceTensor(const at::Tensor& tensor, const Placement& placement);

// How results are returned.
struct ResultOptions {
  bool float32Outputs = false;  // cast every floating result tensor to float32
  bool copyOutputs = false;     // copy tensor data into V8 memory instead of sharing LibTorch's
};

// JS thread. null/undefined -> None, boolean, number (integral -> int, else double), bigint -> int, string, Array
// -> list, JS tensor (its data copied). Throws SanException naming `where` ("args[1][0]").
Value ValueFromJs(Napi::Value value, const std::string& where);

// Executor thread. Converts to the type the method declares (int -> float, list -> tuple, ...) and places tensors.
c10::IValue ValueToIValue(const Value& value, const c10::TypePtr& expected, const Placement& placement);

// Executor thread. Tensors become contiguous CPU tensors; one whose storage is an input's is cloned.
Value IValueToValue(const c10::IValue& value, const ResultOptions& options, const std::vector<at::Tensor>& inputs);

// Every tensor of a JS argument tree, to check results against.
void CollectTensors(const Value& value, std::vector<at::Tensor>* tensors);

// JS thread.
Napi::Value ValueToJs(Napi::Env env, const Value& value, const ResultOptions& options);

}  // namespace san

#endif  // SAN_VALUE_CONVERT_H_
