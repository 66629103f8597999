// SPDX-License-Identifier: Apache-2.0
#include "module_import.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.h"
#include "tensor_convert.h"

namespace san {

namespace {

// Where one tensor lies in a torch.save archive: as _rebuild_tensor_v2 describes it, over storage `record`
// (the archive's data/<record>), whose elements are `dtype`.
struct TensorSpec {
  std::string name;  // the module attribute to bind (bindCheckpoint only)
  std::string record;
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct BindJob {
  std::string templateFile;
  std::string output;
  std::vector<TensorSpec> tensors;
};

// The storage types torch.save writes (torch.FloatStorage, ...), by the dtype names lib/ uses.
c10::ScalarType ParseDtype(const std::string& name) {
  static const std::map<std::string, c10::ScalarType> kDtypes = {
      {"float32", c10::ScalarType::Float}, {"float16", c10::ScalarType::Half},
      {"bfloat16", c10::ScalarType::BFloat16}, {"float64", c10::ScalarType::Double},
      {"int64", c10::ScalarType::Long}, {"int32", c10::ScalarType::Int},
      {"int16", c10::ScalarType::Short}, {"int8", c10::ScalarType::Char},
      {"uint8", c10::ScalarType::Byte}, {"bool", c10::ScalarType::Bool},
  };
  const auto found = kDtypes.find(name);
  if (found == kDtypes.end()) {
    throw SanException(ErrorCode::kDtype, "The checkpoint holds a tensor of unsupported type " + name);
  }
  return found->second;
}

std::vector<int64_t> IntList(Napi::Value value, const std::string& where) {
  if (!value.IsArray()) throw SanException(ErrorCode::kInvalidArg, where + " must be an array", ErrorKind::kTypeError);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> list;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    if (!item.IsNumber()) {
      throw SanException(ErrorCode::kInvalidArg, where + " must hold numbers", ErrorKind::kTypeError);
    }
    list.push_back(item.As<Napi::Number>().Int64Value());
  }
  return list;
}

std::string StringField(Napi::Object object, const char* key, const std::string& where) {
  Napi::Value value = object.Get(key);
  if (!value.IsString()) {
    throw SanException(ErrorCode::kInvalidArg, where + "." + key + " must be a string", ErrorKind::kTypeError);
  }
  return value.As<Napi::String>().Utf8Value();
}

TensorSpec SpecFromJs(Napi::Value value, const std::string& where, bool named) {
  if (!value.IsObject()) throw SanException(ErrorCode::kInvalidArg, where + " must be an object", ErrorKind::kTypeError);
  Napi::Object object = value.As<Napi::Object>();
  TensorSpec spec;
  if (named) spec.name = StringField(object, "name", where);
  spec.record = StringField(object, "record", where);
  spec.dtype = ParseDtype(StringField(object, "dtype", where));
  Napi::Value offset = object.Get("offset");
  if (!offset.IsNumber()) {
    throw SanException(ErrorCode::kInvalidArg, where + ".offset must be a number", ErrorKind::kTypeError);
  }
  spec.offset = offset.As<Napi::Number>().Int64Value();
  spec.sizes = IntList(object.Get("sizes"), where + ".sizes");
  spec.strides = IntList(object.Get("strides"), where + ".strides");
  return spec;
}

[[noreturn]] void ShapeError(const std::string& message) { throw SanException(ErrorCode::kShape, message); }

std::string ShapeText(c10::IntArrayRef sizes) {
  std::string text;
  for (const int64_t size : sizes) text += (text.empty() ? "" : "x") + std::to_string(size);
  return text.empty() ? "scalar" : text;
}

// The tensor `spec` describes, as a contiguous copy of its own (the archive's record is released on return).
at::Tensor ReadTensor(caffe2::serialize::PyTorchStreamReader& reader, const TensorSpec& spec) {
  const std::string where = spec.name.empty() ? "record " + spec.record : spec.name;
  if (spec.record.empty() || spec.record.find('/') != std::string::npos) {
    throw SanException(ErrorCode::kModelLoad, "The checkpoint names an invalid storage '" + spec.record + "'");
  }
  if (spec.sizes.size() != spec.strides.size() || spec.offset < 0) ShapeError(where + ": invalid sizes or offset");
  const std::string record = "data/" + spec.record;
  if (!reader.hasRecord(record)) {
    throw SanException(ErrorCode::kModelLoad, "The checkpoint lacks the storage " + record + " of " + where);
  }
  at::DataPtr data;
  std::size_t bytes = 0;
  std::tie(data, bytes) = reader.getRecord(record);
  const auto element = static_cast<int64_t>(c10::elementSize(spec.dtype));
  const int64_t elements = static_cast<int64_t>(bytes) / element;
  // The last element the view reaches must lie inside the record. Summed with overflow checks: a view whose extent
  // overflows int64 would otherwise pass, and from_blob's own overflow check aborts the process (it throws inside
  // a noexcept function of LibTorch's).
  int64_t last = spec.offset;
  bool empty = false;
  bool inside = spec.offset < elements;
  for (std::size_t i = 0; i < spec.sizes.size(); ++i) {
    if (spec.sizes[i] < 0 || spec.strides[i] < 0) ShapeError(where + ": negative size or stride");
    if (spec.sizes[i] == 0) {
      empty = true;
      continue;
    }
    int64_t reach = 0;
    if (__builtin_mul_overflow(spec.sizes[i] - 1, spec.strides[i], &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      inside = false;
    }
  }
  const auto options = at::TensorOptions().dtype(spec.dtype);
  if (empty) return at::empty(spec.sizes, options);
  if (!inside || last >= elements) ShapeError(where + ": the view reaches past the end of its storage " + record);
  at::Tensor view = at::from_blob(static_cast<char*>(data.get()) + spec.offset * element, spec.sizes, spec.strides,
                                  options);
  return view.clone(at::MemoryFormat::Contiguous);
}

std::unique_ptr<caffe2::serialize::PyTorchStreamReader> OpenArchive(const std::string& file) {
  try {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(file);
  } catch (const c10::Error& e) {
    throw SanException(ErrorCode::kModelLoad, ShortenMessage(e.what_without_backtrace()));
  }
}

// The module that holds attribute `path` ("a.b.weight" → module a.b, "weight").
std::pair<torch::jit::Module, std::string> Owner(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module owner = root;
  std::size_t start = 0;
  for (std::size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    owner = owner.attr(path.substr(start, dot - start)).toModule();
    start = dot + 1;
  }
  return {owner, path.substr(start)};
}

void Bind(caffe2::serialize::PyTorchStreamReader& reader, const BindJob& job) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(job.templateFile, torch::kCPU);
  } catch (const c10::Error& e) {
    throw SanException(ErrorCode::kModelLoad, "Cannot load the architecture " + job.templateFile + ": " +
                                                  ShortenMessage(e.what_without_backtrace()));
  }
  std::map<std::string, at::Tensor> slots;
  for (const auto& item : module.named_parameters(true)) slots.emplace(item.name, item.value);
  for (const auto& item : module.named_buffers(true)) slots.emplace(item.name, item.value);
  std::map<std::string, bool> bound;
  for (const TensorSpec& spec : job.tensors) {
    const auto slot = slots.find(spec.name);
    if (slot == slots.end() || bound[spec.name]) {
      throw SanException(ErrorCode::kModelLoad, job.templateFile + " has no unbound parameter or buffer " + spec.name);
    }
    bound[spec.name] = true;
    const at::Tensor& placeholder = slot->second;
    at::Tensor value = ReadTensor(reader, spec).to(placeholder.scalar_type());
    if (value.sizes() != placeholder.sizes()) {
      ShapeError(spec.name + " is " + ShapeText(value.sizes()) + " in the checkpoint but " +
                 ShapeText(placeholder.sizes()) + " in " + job.templateFile);
    }
    value.set_requires_grad(placeholder.requires_grad());
    auto [owner, leaf] = Owner(module, spec.name);
    owner.setattr(leaf, value);
  }
  for (const auto& [name, tensor] : slots) {
    if (!bound[name]) throw SanException(ErrorCode::kModelLoad, "No checkpoint tensor was given for " + name);
  }
  module.save(job.output);
}

class BindWorker : public Napi::AsyncWorker {
 public:
  BindWorker(Napi::Env env, std::string checkpoint, std::vector<BindJob> jobs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), checkpoint_(std::move(checkpoint)),
        jobs_(std::move(jobs)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      auto reader = OpenArchive(checkpoint_);
      for (const BindJob& job : jobs_) Bind(*reader, job);
    } catch (...) {
      error_ = CaptureCurrentException();
      failed_ = true;
    }
  }

  void OnOK() override {
    if (failed_) {
      deferred_.Reject(MakeJsError(Env(), error_).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string checkpoint_;
  std::vector<BindJob> jobs_;
  NativeError error_;
  bool failed_ = false;
};

std::string FileArgument(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) {
    throw InvalidValue(ErrorCode::kInvalidArg, ErrorKind::kTypeError, "a string", "file", info[0]);
  }
  return info[0].As<Napi::String>().Utf8Value();
}

// Runs `body` and turns whatever it throws into a JS error with its code.
template <typename Body>
Napi::Value Guarded(const Napi::CallbackInfo& info, Body body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw MakeJsError(info.Env(), CaptureCurrentException());
  }
}

}  // namespace

Napi::Value ReadCheckpointPickle(const Napi::CallbackInfo& info) {
  return Guarded(info, [&]() -> Napi::Value {
    auto reader = OpenArchive(FileArgument(info));
    if (!reader->hasRecord("data.pkl")) {
      throw SanException(ErrorCode::kModelLoad, "The archive holds no data.pkl: it is not a torch.save file");
    }
    at::DataPtr data;
    std::size_t bytes = 0;
    std::tie(data, bytes) = reader->getRecord("data.pkl");
    return Napi::Buffer<char>::Copy(info.Env(), static_cast<const char*>(data.get()), bytes);
  });
}

Napi::Value ReadCheckpointTensor(const Napi::CallbackInfo& info) {
  return Guarded(info, [&]() -> Napi::Value {
    auto reader = OpenArchive(FileArgument(info));
    const at::Tensor tensor = ReadTensor(*reader, SpecFromJs(info[1], "spec", false)).to(at::kFloat);
    return TensorToJs(info.Env(), tensor, true);
  });
}

Napi::Value BindCheckpoint(const Napi::CallbackInfo& info) {
  return Guarded(info, [&]() -> Napi::Value {
    const std::string checkpoint = FileArgument(info);
    if (!info[1].IsArray()) {
      throw InvalidValue(ErrorCode::kInvalidArg, ErrorKind::kTypeError, "an array", "jobs", info[1]);
    }
    Napi::Array list = info[1].As<Napi::Array>();
    std::vector<BindJob> jobs;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const std::string where = "jobs[" + std::to_string(i) + "]";
      Napi::Value value = list.Get(i);
      if (!value.IsObject()) {
        throw SanException(ErrorCode::kInvalidArg, where + " must be an object", ErrorKind::kTypeError);
      }
      Napi::Object object = value.As<Napi::Object>();
      BindJob job{StringField(object, "template", where), StringField(object, "output", where), {}};
      Napi::Value tensors = object.Get("tensors");
      if (!tensors.IsArray()) {
        throw SanException(ErrorCode::kInvalidArg, where + ".tensors must be an array", ErrorKind::kTypeError);
      }
      Napi::Array specs = tensors.As<Napi::Array>();
      for (uint32_t j = 0; j < specs.Length(); ++j) {
        job.tensors.push_back(SpecFromJs(specs.Get(j), where + ".tensors[" + std::to_string(j) + "]", true));
      }
      jobs.push_back(std::move(job));
    }
    auto* worker = new BindWorker(info.Env(), checkpoint, std::move(jobs));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace san
