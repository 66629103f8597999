// SPDX-License-Identifier: Apache-2.0
// The TorchScript modules of one model, on one device and dtype. Used only on the model's executor thread.
#ifndef SAN_MODULE_SET_H_
#define SAN_MODULE_SET_H_

#include <torch/csrc/jit/api/module.h>

#include <map>
#include <string>

#include "batons.h"
#include "value_convert.h"

namespace san {

class ModuleSet {
 public:
  // Loads every file or none (ERR_SAN_MODEL_LOAD names the file), in eval mode, moved to the device and dtype.
  LoadResult Load(const LoadRequest& request);

  // Runs module.method(args...) under inference mode and returns the result on the CPU.
  Value Run(const RunRequest& request);

  // Frees the modules (and their device memory).
  void Clear();

  // Where Run places input tensors; set by Load.
  const Placement& GetPlacement() const { return placement_; }

 private:
  torch::jit::Module& Find(const std::string& module);

  std::map<std::string, torch::jit::Module> modules_;
  Placement placement_;
};

}  // namespace san

#endif  // SAN_MODULE_SET_H_
