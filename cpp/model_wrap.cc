// SPDX-License-Identifier: Apache-2.0
#include "model_wrap.h"

#include <utility>

#include "common.h"
#include "value_convert.h"

namespace san {

namespace {

Napi::Value Rejected(Napi::Env env, const NativeError& error) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(MakeJsError(env, error).Value());
  return deferred.Promise();
}

Napi::Value DisposedError(Napi::Env env) {
  return Rejected(env, {ErrorCode::kDisposed, ErrorKind::kError, "The model was disposed"});
}

Napi::Object LoadResultToJs(Napi::Env env, const LoadResult& result) {
  Napi::Object methods = Napi::Object::New(env);
  for (const auto& [module, names] : result.methods) {
    Napi::Array list = Napi::Array::New(env, names.size());
    for (std::size_t i = 0; i < names.size(); ++i) list.Set(static_cast<uint32_t>(i), names[i]);
    methods.Set(module, list);
  }
  Napi::Object js = Napi::Object::New(env);
  js.Set("device", result.device);
  js.Set("dtype", result.dtype);
  js.Set("methods", methods);
  return js;
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {
                         InstanceMethod<&ModelWrap::Load>("load"),
                         InstanceMethod<&ModelWrap::Run>("run"),
                         InstanceMethod<&ModelWrap::Dispose>("dispose"),
                         InstanceAccessor<&ModelWrap::GetDevice>("device"),
                         InstanceAccessor<&ModelWrap::GetDtype>("dtype"),
                         InstanceAccessor<&ModelWrap::GetQueueDepth>("queueDepth"),
                         InstanceAccessor<&ModelWrap::GetDisposed>("disposed"),
                     });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  Napi::Object options = info[0].As<Napi::Object>();
  device_ = options.Get("device").As<Napi::String>().Utf8Value();
  dtype_ = options.Get("dtype").As<Napi::String>().Utf8Value();
  // Optional here (TorchModel always passes it), as castInputs below, for the tests that drive NativeModel directly.
  if (options.Get("float32Modules").IsArray()) {
    const Napi::Array float32Modules = options.Get("float32Modules").As<Napi::Array>();
    for (uint32_t i = 0; i < float32Modules.Length(); ++i) {
      float32Modules_.insert(float32Modules.Get(i).As<Napi::String>().Utf8Value());
    }
  }
  queueLimit_ = options.Get("queueLimit").As<Napi::Number>().Uint32Value();
  const int threads = options.Get("threads").As<Napi::Number>().Int32Value();
  modules_ = std::make_unique<ModuleSet>();
  stager_ = std::make_unique<Stager>(threads);
  executor_ = std::make_unique<Executor>(info.Env(), threads, queueLimit_);
}

Napi::Value ModelWrap::Queue(Napi::Env env, Job::Work work, Job::Finish finish, bool final) {
  Pins pins;
  pins.push_back(Napi::Persistent<Napi::Value>(Value()));  // this object, with its modules, outlives the job
  auto job = std::make_unique<Job>(env, std::move(work), std::move(finish), std::move(pins), final);
  Napi::Promise promise = job->Promise();
  if (!executor_->Submit(std::move(job))) {
    return Rejected(env, {ErrorCode::kOverloaded, ErrorKind::kError,
                          "The model's queue is full (" + std::to_string(queueLimit_) +
                              " calls pending, the queueLimit option); wait for some to settle"});
  }
  return promise;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) return DisposedError(env);
  if (loadCalled_) {
    return Rejected(env, {ErrorCode::kInvalidArg, ErrorKind::kError, "load() was already called on this model"});
  }
  auto request = std::make_shared<LoadRequest>(LoadRequest{{}, device_, dtype_, float32Modules_});
  try {
    Napi::Object files = info[0].As<Napi::Object>();
    Napi::Array names = files.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      request->files.emplace_back(name, files.Get(name).As<Napi::String>().Utf8Value());
    }
  } catch (...) {
    return Rejected(env, CaptureCurrentException());
  }
  loadCalled_ = true;
  auto result = std::make_shared<LoadResult>();
  ModuleSet* modules = modules_.get();
  return Queue(
      env, [modules, request, result] { *result = modules->Load(*request); },
      [this, modules, result](Napi::Env env) {
        device_ = result->device;
        dtype_ = result->dtype;
        stager_->SetPlacement(modules->GetPlacement());  // the load job has run: the executor no longer writes it
        return LoadResultToJs(env, *result);
      });
}

Napi::Value ModelWrap::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) return DisposedError(env);
  auto request = std::make_shared<RunRequest>();
  try {
    request->module = info[0].As<Napi::String>().Utf8Value();
    request->method = info[1].As<Napi::String>().Utf8Value();
    Napi::Array args = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < args.Length(); ++i) {
      request->args.push_back(ValueFromJs(args.Get(i), "args[" + std::to_string(i) + "]"));
    }
    Napi::Object options = info[3].As<Napi::Object>();
    request->options.float32Outputs = options.Get("float32Outputs").ToBoolean().Value();
    request->options.copyOutputs = options.Get("copyOutputs").ToBoolean().Value();
    const Napi::Value castInputs = options.Get("castInputs");
    request->castInputs =
        (castInputs.IsUndefined() || castInputs.ToBoolean().Value()) && float32Modules_.count(request->module) == 0;
  } catch (...) {
    return Rejected(env, CaptureCurrentException());
  }
  auto result = std::make_shared<san::Value>();
  ModuleSet* modules = modules_.get();
  // Placed on the stager's thread while earlier calls run; the job takes them back when its turn comes.
  std::shared_ptr<StagedArgs> staged = stager_->Stage(std::move(request->args), request->castInputs);
  return Queue(
      env,
      [modules, request, result, staged] {
        request->args = staged->Take();
        *result = modules->Run(*request);
      },
      [request, result](Napi::Env env) { return ValueToJs(env, *result, request->options); });
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  disposed_ = true;
  ModuleSet* modules = modules_.get();
  return Queue(
      env, [modules] { modules->Clear(); },
      [this](Napi::Env env) {
        stager_.reset();  // every call queued before dispose() has run
        return env.Undefined();
      },
      /*final=*/true);
}

Napi::Value ModelWrap::GetDevice(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }

Napi::Value ModelWrap::GetDtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_); }

Napi::Value ModelWrap::GetQueueDepth(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(executor_->Pending()));
}

Napi::Value ModelWrap::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

}  // namespace san
