// SPDX-License-Identifier: Apache-2.0
// The plain data a model's jobs carry from the JS thread to the executor thread and back. No N-API handles: input
// tensors are copies made at submit time, and the model object is pinned by the job (Job::pins).
#ifndef SAN_BATONS_H_
#define SAN_BATONS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "value_convert.h"

namespace san {

// load(): module name -> file, and the device and dtype names as the user gave them.
struct LoadRequest {
  std::vector<std::pair<std::string, std::string>> files;
  std::string device;
  std::string dtype;
};

// What load() resolves with: the device actually used ("cuda:0"), the dtype, and every module's methods.
struct LoadResult {
  std::string device;
  std::string dtype;
  std::map<std::string, std::vector<std::string>> methods;
};

// run(): module.method(args...).
struct RunRequest {
  std::string module;
  std::string method;
  std::vector<Value> args;
  ResultOptions options;
};

}  // namespace san

#endif  // SAN_BATONS_H_
