// SPDX-License-Identifier: Apache-2.0
#include "tensor_convert.h"

#include <ATen/ops/empty.h>

#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "common.h"

namespace san {

namespace {

// One row per JS tensor type; lib/tensor.ts holds the same table. float16 and bfloat16 travel as their raw bits in
// a Uint16Array (Node 20 has no Float16Array), bool as 0/1 bytes in a Uint8Array.
struct TensorType {
  const char* name;
  c10::ScalarType scalar;
  napi_typedarray_type array;
  const char* arrayName;
  std::size_t elementBytes;  // of the TypedArray, and so of the LibTorch element
};

constexpr TensorType TENSOR_TYPES[] = {
    {"float32", c10::ScalarType::Float, napi_float32_array, "Float32Array", 4},
    {"float64", c10::ScalarType::Double, napi_float64_array, "Float64Array", 8},
    {"float16", c10::ScalarType::Half, napi_uint16_array, "Uint16Array", 2},
    {"bfloat16", c10::ScalarType::BFloat16, napi_uint16_array, "Uint16Array", 2},
    {"int8", c10::ScalarType::Char, napi_int8_array, "Int8Array", 1},
    {"uint8", c10::ScalarType::Byte, napi_uint8_array, "Uint8Array", 1},
    {"int16", c10::ScalarType::Short, napi_int16_array, "Int16Array", 2},
    {"int32", c10::ScalarType::Int, napi_int32_array, "Int32Array", 4},
    {"int64", c10::ScalarType::Long, napi_bigint64_array, "BigInt64Array", 8},
    {"bool", c10::ScalarType::Bool, napi_uint8_array, "Uint8Array", 1},
};

// Sharing memory between a TypedArray and a tensor is only sound when both see elements of the same size.
template <std::size_t... I>
constexpr bool ElementSizesMatch(std::index_sequence<I...>) {
  return ((sizeof(typename c10::impl::ScalarTypeToCPPType<TENSOR_TYPES[I].scalar>::type) ==
           TENSOR_TYPES[I].elementBytes) &&
          ...);
}
static_assert(ElementSizesMatch(std::make_index_sequence<std::size(TENSOR_TYPES)>()),
              "TENSOR_TYPES: a TypedArray element size differs from its LibTorch dtype");

// Above 2^53 a JS number no longer holds every integer; no real tensor comes near it.
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

const TensorType* FindByName(const std::string& name) {
  for (const auto& type : TENSOR_TYPES) {
    if (name == type.name) return &type;
  }
  return nullptr;
}

const TensorType* FindByScalar(c10::ScalarType scalar) {
  for (const auto& type : TENSOR_TYPES) {
    if (scalar == type.scalar) return &type;
  }
  return nullptr;
}

std::string TypeNames() {
  std::string names;
  for (const auto& type : TENSOR_TYPES) names += (names.empty() ? "" : ", ") + std::string(type.name);
  return names;
}

const TensorType& ReadType(Napi::Object tensor, const std::string& where) {
  Napi::Value value = tensor.Get("type");
  if (!value.IsString()) throw InvalidValue(ErrorCode::kDtype, ErrorKind::kTypeError, "a string", where, value);
  const TensorType* type = FindByName(value.As<Napi::String>().Utf8Value());
  if (type == nullptr) throw InvalidValue(ErrorCode::kDtype, ErrorKind::kRangeError, "one of: " + TypeNames(), where,
                                          value);
  return *type;
}

std::vector<int64_t> ReadDims(Napi::Object tensor, const std::string& where, int64_t* count) {
  Napi::Value value = tensor.Get("dims");
  if (!value.IsArray()) throw InvalidValue(ErrorCode::kShape, ErrorKind::kTypeError, "an Array", where, value);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> dims;
  *count = 1;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const std::string name = where + "[" + std::to_string(i) + "]";
    Napi::Value dim = array.Get(i);
    if (!dim.IsNumber()) throw InvalidValue(ErrorCode::kShape, ErrorKind::kTypeError, "an integer", name, dim);
    const double size = dim.As<Napi::Number>().DoubleValue();
    // Empty tensors are refused: no exported model takes one, and they only ever come from a bug upstream.
    if (!(size >= 1 && size <= kMaxSafeInteger && size == static_cast<int64_t>(size))) {
      throw InvalidValue(ErrorCode::kShape, ErrorKind::kRangeError, "an integer of at least 1", name, dim);
    }
    dims.push_back(static_cast<int64_t>(size));
    if (*count > kMaxSafeInteger / dims.back()) {
      throw InvalidValue(ErrorCode::kShape, ErrorKind::kRangeError, "at most 2^53 elements in all", where, value);
    }
    *count *= dims.back();
  }
  return dims;
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string text;
  for (auto dim : dims) text += (text.empty() ? "" : ", ") + std::to_string(dim);
  return "[" + text + "]";
}

// LibTorch reads bool elements as 0 or 1; any other byte would be undefined behaviour, so it is refused here.
void CheckBoolBytes(Napi::TypedArray data, const uint8_t* bytes, int64_t count, const std::string& where) {
  for (int64_t i = 0; i < count; ++i) {
    if (bytes[i] > 1) {
      throw InvalidValue(ErrorCode::kDtype, ErrorKind::kRangeError, "0 or 1 (type bool)",
                         where + "[" + std::to_string(i) + "]", data.Get(static_cast<uint32_t>(i)));
    }
  }
}

struct ExternalTensor {
  at::Tensor tensor;
  int64_t bytes;
};

void FinalizeExternalTensor(napi_env env, void* /*data*/, void* hint) {
  auto* owned = static_cast<ExternalTensor*>(hint);
  int64_t ignored;
  napi_adjust_external_memory(env, -owned->bytes, &ignored);
  delete owned;
}

// An ArrayBuffer over the tensor's own memory, or nothing where this runtime refuses external buffers.
std::optional<Napi::ArrayBuffer> SharedBuffer(Napi::Env env, const at::Tensor& tensor, int64_t bytes) {
  auto owned = std::make_unique<ExternalTensor>(ExternalTensor{tensor, bytes});
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, tensor.data_ptr(), bytes, FinalizeExternalTensor, owned.get(),
                                       &buffer) != napi_ok) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return std::nullopt;
  }
  owned.release();
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return Napi::ArrayBuffer(env, buffer);
}

Napi::ArrayBuffer CopiedBuffer(Napi::Env env, const at::Tensor& tensor, int64_t bytes) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), tensor.data_ptr(), bytes);
  return buffer;
}

}  // namespace

bool IsJsTensor(Napi::Value value) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray()) return false;
  Napi::Object object = value.As<Napi::Object>();
  return object.Has("type") && object.Has("dims") && object.Has("data");
}

at::Tensor TensorFromJs(Napi::Object tensor, const std::string& where) {
  const TensorType& type = ReadType(tensor, where + ".type");
  int64_t count = 0;
  std::vector<int64_t> dims = ReadDims(tensor, where + ".dims", &count);

  Napi::Value value = tensor.Get("data");
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type.array) {
    throw InvalidValue(ErrorCode::kDtype, ErrorKind::kTypeError,
                       std::string(type.arrayName) + " data (tensor type " + type.name + ")", where + ".data", value);
  }
  Napi::TypedArray data = value.As<Napi::TypedArray>();
  if (static_cast<int64_t>(data.ElementLength()) != count) {
    throw SanException(ErrorCode::kShape,
                       "Expected " + std::to_string(count) + " elements (dims " + DimsText(dims) + ") for " + where +
                           ".data but received " + std::to_string(data.ElementLength()),
                       ErrorKind::kRangeError);
  }
  auto* bytes = static_cast<uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  if (type.scalar == c10::ScalarType::Bool) CheckBoolBytes(data, bytes, count, where + ".data");

  // Copied now, on the JS thread: the job may wait in the queue, and JS may meanwhile change, transfer or detach the
  // buffer (structuredClone with transfer frees it), which a tensor over the JS memory would then read after free.
  at::Tensor copy = at::empty(dims, at::TensorOptions().dtype(type.scalar));
  if (count > 0) std::memcpy(copy.data_ptr(), bytes, static_cast<std::size_t>(count) * type.elementBytes);
  return copy;
}

bool HasJsType(c10::ScalarType dtype) { return FindByScalar(dtype) != nullptr; }

Napi::Object TensorToJs(Napi::Env env, const at::Tensor& tensor, bool copy) {
  const TensorType* type = FindByScalar(tensor.scalar_type());
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  std::optional<Napi::ArrayBuffer> buffer;
  if (!copy && bytes > 0) buffer = SharedBuffer(env, tensor, bytes);
  if (!buffer) buffer = CopiedBuffer(env, tensor, bytes);

  napi_value data;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, type->array, tensor.numel(), *buffer, 0, &data),
                       Napi::Object());
  Napi::Array dims = Napi::Array::New(env, tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); ++i) dims.Set(static_cast<uint32_t>(i), Napi::Number::New(env, tensor.size(i)));

  Napi::Object result = Napi::Object::New(env);
  result.Set("type", type->name);
  result.Set("dims", dims);
  result.Set("data", data);
  return result;
}

}  // namespace san
