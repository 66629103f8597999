// SPDX-License-Identifier: Apache-2.0
// Module registration only. Context-aware (Node-API), so it loads in worker_threads; all per-model state lives in
// NativeModel objects, whose threads are joined by environment clean-up hooks (see executor.h).
#include <napi.h>
#include <torch/version.h>

#include <string>

#include "allocator.h"
#include "common.h"
#include "device.h"
#include "model_wrap.h"
#include "module_import.h"

namespace san {

namespace {

// versions() -> { libtorch, build: 'cpu' | 'cuda', cuda: runtime version or null, cxx11Abi, napi, builder }
Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object versions = Napi::Object::New(env);
  versions.Set("libtorch", TORCH_VERSION);
  versions.Set("build", CudaBuilt() ? "cuda" : "cpu");
  const std::string cuda = CudaRuntimeVersion();
  versions.Set("cuda", cuda.empty() ? env.Null() : Napi::String::New(env, cuda));
#ifdef _GLIBCXX_USE_CXX11_ABI
  versions.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI));
#else
  versions.Set("cxx11Abi", Napi::Boolean::New(env, false));  // not libstdc++
#endif
  versions.Set("napi", NAPI_VERSION);
  versions.Set("builder", SAN_BUILDER);  // defined by binding.gyp
  return versions;
}

// cudaAvailable() -> boolean. Synchronous; the first CUDA query initialises the driver.
Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), CudaDeviceCount() > 0);
}

// cudaDeviceCount() -> number.
Napi::Value CudaDeviceCountJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CudaDeviceCount());
}

// cudaMemory(index) -> { allocatedBytes, reservedBytes, peakAllocatedBytes } from LibTorch's caching allocator, or
// { unavailable: reason }. Synchronous and cheap: the allocator keeps these counters.
Napi::Value CudaMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DeviceMemory memory = CudaMemory(info[0].As<Napi::Number>().Int32Value());
  Napi::Object js = Napi::Object::New(env);
  if (!memory.available) {
    js.Set("unavailable", memory.reason);
    return js;
  }
  js.Set("allocatedBytes", static_cast<double>(memory.allocatedBytes));
  js.Set("reservedBytes", static_cast<double>(memory.reservedBytes));
  js.Set("peakAllocatedBytes", static_cast<double>(memory.peakAllocatedBytes));
  return js;
}

// cpuAllocator() -> { cachedBytes, limitBytes, inUseBytes, hits, misses, coreBudget }: the caching CPU allocator's
// counters and the process's intra-op thread budget. Synchronous and cheap.
Napi::Value CpuAllocatorJs(const Napi::CallbackInfo& info) {
  const CpuCacheStats stats = GetCpuCacheStats();
  Napi::Object js = Napi::Object::New(info.Env());
  js.Set("cachedBytes", static_cast<double>(stats.cachedBytes));
  js.Set("limitBytes", static_cast<double>(stats.limitBytes));
  js.Set("inUseBytes", static_cast<double>(stats.inUseBytes));
  js.Set("hits", static_cast<double>(stats.hits));
  js.Set("misses", static_cast<double>(stats.misses));
  js.Set("coreBudget", CoreBudget());
  return js;
}

// cpuBfloat16() -> null when dtype bfloat16 runs on this CPU, else what it lacks (the message ERR_SAN_DTYPE gives).
Napi::Value CpuBfloat16(const Napi::CallbackInfo& info) {
  const std::string missing = CpuBf16Missing();
  return missing.empty() ? info.Env().Null() : Napi::String::New(info.Env(), missing);
}

// setCpuCacheLimit(bytes): checked by lib/runtime/cpu-allocator.ts.
Napi::Value SetCpuCacheLimitJs(const Napi::CallbackInfo& info) {
  SetCpuCacheLimit(info[0].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

// _describeError(message) -> { code, message }: how a raw LibTorch message reaches JS. For tests only.
Napi::Value DescribeError(const Napi::CallbackInfo& info) {
  const std::string message = ShortenMessage(info[0].As<Napi::String>().Utf8Value());
  Napi::Object described = Napi::Object::New(info.Env());
  described.Set("code", ErrorCodeName(ClassifyMessage(message)));
  described.Set("message", message);
  return described;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Before any model's thread starts: SetAllocator is not thread-safe.
  InstallCpuAllocator();
  exports.Set("NativeModel", ModelWrap::Define(env));
  exports.Set("versions", Napi::Function::New<Versions>(env, "versions"));
  exports.Set("cudaAvailable", Napi::Function::New<CudaAvailable>(env, "cudaAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New<CudaDeviceCountJs>(env, "cudaDeviceCount"));
  exports.Set("cudaMemory", Napi::Function::New<CudaMemoryJs>(env, "cudaMemory"));
  exports.Set("cpuAllocator", Napi::Function::New<CpuAllocatorJs>(env, "cpuAllocator"));
  exports.Set("cpuBfloat16", Napi::Function::New<CpuBfloat16>(env, "cpuBfloat16"));
  exports.Set("setCpuCacheLimit", Napi::Function::New<SetCpuCacheLimitJs>(env, "setCpuCacheLimit"));
  exports.Set("readCheckpointPickle", Napi::Function::New<ReadCheckpointPickle>(env, "readCheckpointPickle"));
  exports.Set("readCheckpointTensor", Napi::Function::New<ReadCheckpointTensor>(env, "readCheckpointTensor"));
  exports.Set("bindCheckpoint", Napi::Function::New<BindCheckpoint>(env, "bindCheckpoint"));
  exports.Set("_describeError", Napi::Function::New<DescribeError>(env, "_describeError"));
  return exports;
}

}  // namespace san

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return san::Init(env, exports); }
NODE_API_MODULE(san_node, InitAddon)
