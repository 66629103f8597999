// SPDX-License-Identifier: Apache-2.0
// The plain data a model's jobs carry from the JS thread to the executor thread and back. No N-API handles: input
// tensors are copies made at submit time, and the model object is pinned by the job (Job::pins).
#ifndef SAN_BATONS_H_
#define SAN_BATONS_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "value_convert.h"

namespace san {

// load(): module name -> file, the device and dtype names as the user gave them, and the modules kept in float32
// whatever the dtype.
struct LoadRequest {
  std::vector<std::pair<std::string, std::string>> files;
  std::string device;
  std::string dtype;
  std::set<std::string> float32Modules;
};

// What load() resolves with: the device actually used ("cuda:0"), the dtype, and every module's methods.
struct LoadResult {
  std::string device;
  std::string dtype;
  std::map<std::string, std::vector<std::string>> methods;
};

// run(): module.method(args...). castInputs: floating inputs are cast to the model's dtype (false for a float32
// module, or when the call asks for its inputs as given).
struct RunRequest {
  std::string module;
  std::string method;
  std::vector<Value> args;
  ResultOptions options;
  bool castInputs = true;
};

}  // namespace san

#endif  // SAN_BATONS_H_
