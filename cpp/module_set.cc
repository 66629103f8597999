// SPDX-License-Identifier: Apache-2.0
#include "module_set.h"

#include <c10/core/InferenceMode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/version.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common.h"
#include "device.h"

namespace san {

namespace {

// Adds what a LibTorch load error means for the user to its first line.
std::string ExplainLoadError(const std::string& message) {
  if (message.find("PytorchStreamReader") != std::string::npos) {
    return "not a TorchScript archive, as written by torch.jit.save (" + message + ")";
  }
  if (message.find("version") != std::string::npos || message.find("Unknown builtin op") != std::string::npos ||
      message.find("Unknown type name") != std::string::npos) {
    return message + " (this addon runs LibTorch " TORCH_VERSION "; export with that PyTorch version or older)";
  }
  return message;
}

torch::jit::Module LoadFile(const std::string& name, const std::string& path, const c10::Device& device) {
  // torch::jit::load's own message for a missing file is a long errno dump; name the file and the reason.
  if (!std::ifstream(path, std::ios::binary).is_open()) {
    throw SanException(ErrorCode::kModelLoad,
                       "Cannot open module '" + name + "' at " + path + ": " + std::strerror(errno));
  }
  try {
    return torch::jit::load(path, device);
  } catch (const std::exception& e) {
    const auto* c10Error = dynamic_cast<const c10::Error*>(&e);
    const std::string message = ShortenMessage(c10Error ? c10Error->what_without_backtrace() : e.what());
    throw SanException(ErrorCode::kModelLoad,
                       "Cannot load module '" + name + "' from " + path + ": " + ExplainLoadError(message));
  }
}

}  // namespace

LoadResult ModuleSet::Load(const LoadRequest& request) {
  // Not InferenceMode: parameters loaded under it would become inference tensors, which refuse requires_grad.
  at::NoGradGuard noGrad;
  const c10::Device device = ResolveDevice(request.device);
  const c10::ScalarType dtype = ResolveDtype(request.dtype, request.device, device);

  std::map<std::string, torch::jit::Module> modules;
  LoadResult result{device.str(), DtypeName(dtype), {}};
  for (const auto& [name, path] : request.files) {
    torch::jit::Module module = LoadFile(name, path, device);
    module.eval();
    if (dtype != c10::ScalarType::Float && request.float32Modules.count(name) == 0) module.to(dtype);
    for (const auto& method : module.get_methods()) result.methods[name].push_back(method.name());
    modules.emplace(name, std::move(module));
  }
  modules_ = std::move(modules);
  placement_.device = device;
  if (dtype != c10::ScalarType::Float) placement_.castFloating = dtype;
  return result;
}

torch::jit::Module& ModuleSet::Find(const std::string& module) {
  auto found = modules_.find(module);
  if (found != modules_.end()) return found->second;
  std::string loaded;
  for (const auto& entry : modules_) loaded += (loaded.empty() ? "'" : ", '") + entry.first + "'";
  throw SanException(ErrorCode::kInvalidArg, "No module '" + module + "' is loaded (loaded: " +
                                                 (loaded.empty() ? "none" : loaded) + ")");
}

Value ModuleSet::Run(const RunRequest& request) {
  const auto& [module, method, args, options, castInputs] = request;
  c10::InferenceMode inference;
  const ThreadLease threads(placement_.device.is_cpu());
  torch::jit::Module& target = Find(module);
  auto found = target.find_method(method);
  if (!found) {
    std::string names;
    for (const auto& each : target.get_methods()) names += (names.empty() ? "" : ", ") + each.name();
    throw SanException(ErrorCode::kInvalidArg,
                       "Module '" + module + "' has no method '" + method + "' (methods: " + names + ")");
  }
  // The schema's first argument is the module itself.
  const auto& schema = found->function().getSchema();
  const std::size_t declared = schema.arguments().size() - 1;
  if (args.size() > declared) {
    throw SanException(ErrorCode::kInvalidArg, module + " " + schema.name() + "() takes " + std::to_string(declared) +
                                                   " argument(s) but received " + std::to_string(args.size()) +
                                                   ": " + c10::toString(schema));
  }
  Placement placement = placement_;
  if (!castInputs) placement.castFloating.reset();
  std::vector<c10::IValue> stack;
  for (std::size_t i = 0; i < args.size(); ++i) {
    stack.push_back(ValueToIValue(args[i], schema.arguments()[i + 1].type(), placement));
  }
  const c10::IValue output = (*found)(std::move(stack));

  std::vector<at::Tensor> inputs;
  for (const auto& arg : args) CollectTensors(arg, &inputs);
  return IValueToValue(output, options, inputs);
}

void ModuleSet::Clear() { modules_.clear(); }

}  // namespace san
