// SPDX-License-Identifier: Apache-2.0
// `NativeModel`, the JS class over one model: its TorchScript modules (ModuleSet) and its executor thread.
//
//   new NativeModel({ device, dtype, float32Modules, threads, queueLimit })
//                                      options complete and checked by lib/runtime/torch-model.ts
//   load({ name: path, ... })          -> Promise<{ device, dtype, methods: { name: string[] } }>
//   run(module, method, args, { float32Outputs, copyOutputs, castInputs }) -> Promise<result>
//   dispose()                          -> Promise<void>
//   device, dtype, queueDepth, disposed (read-only)
//
// Methods only parse their arguments and queue a job; every failure settles the returned Promise (rejected with
// an Error carrying `code`), none throws. After dispose() every call rejects with ERR_SAN_DISPOSED, while the jobs
// queued before it still run.
#ifndef SAN_MODEL_WRAP_H_
#define SAN_MODEL_WRAP_H_

#include <napi.h>

#include <memory>
#include <set>
#include <string>

#include "executor.h"
#include "module_set.h"
#include "stager.h"

namespace san {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetQueueDepth(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);

  // Queues a job that pins this object, or rejects with ERR_SAN_OVERLOADED when the queue is full.
  Napi::Value Queue(Napi::Env env, Job::Work work, Job::Finish finish, bool final = false);

  std::string device_;  // as requested until load() settles, then as resolved ("auto" -> "cpu")
  std::string dtype_;
  std::set<std::string> float32Modules_;  // left in float32 whatever dtype_, their inputs too
  std::size_t queueLimit_;
  bool loadCalled_ = false;
  bool disposed_ = false;
  // Declared before the executor, so destroyed after its thread is joined: only that thread touches it.
  std::unique_ptr<ModuleSet> modules_;
  // Also before the executor: the jobs it drops at shutdown release their staged inputs into a live stager.
  std::unique_ptr<Stager> stager_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace san

#endif  // SAN_MODEL_WRAP_H_
