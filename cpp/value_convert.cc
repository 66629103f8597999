// SPDX-License-Identifier: Apache-2.0
#include "value_convert.h"

#include <cmath>
#include <utility>

#include "common.h"

namespace san {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

at::Tensor HostTensor(at::Tensor tensor, const ResultOptions& options, const std::vector<at::Tensor>& inputs) {
  // Cast before leaving the device: a GPU converts in microseconds what would take the executor thread milliseconds.
  if (options.float32Outputs && at::isFloatingType(tensor.scalar_type())) tensor = tensor.to(at::kFloat);
  tensor = tensor.to(at::kCPU);
  if (!HasJsType(tensor.scalar_type())) {
    throw SanException(ErrorCode::kDtype, std::string("Cannot return a tensor of dtype ") +
                                              c10::toString(tensor.scalar_type()) + " to JS");
  }
  tensor = tensor.contiguous();
  // A result that is (a view of) an input shares the input's copy: cloned, so every result owns its own memory.
  for (const auto& input : inputs) {
    if (tensor.is_alias_of(input)) return tensor.clone();
  }
  return tensor;
}

std::string DictKey(const c10::IValue& key) {
  if (key.isString()) return key.toStringRef();
  if (key.isInt()) return std::to_string(key.toInt());
  throw SanException(ErrorCode::kRuntime, "Cannot return a dict with keys of type " + key.type()->annotation_str() +
                                              " to JS (str and int keys only)");
}

}  // namespace

at::Tensor PlaceTensor(const at::Tensor& tensor, const Placement& placement) {
  // Images travel as uint8 (a quarter of float32's bytes) and the model normalises them on the device. The upload is
  // a plain copy from the JS memory: staging it through page-locked memory first (pin_memory(), then a non-blocking
  // copy) measured slower on an H100, 7 ms more for a batch of 16 images at 640x640, since the extra host copy costs
  // more than the faster DMA saves (docs/benchmarks.md, GPU section).
  at::Tensor placed = tensor.to(placement.device);
  if (placement.castFloating && at::isFloatingType(placed.scalar_type())) placed = placed.to(*placement.castFloating);
  return placed;
}

Value ValueFromJs(Napi::Value value, const std::string& where) {
  Value result;
  if (value.IsNull() || value.IsUndefined()) return result;
  if (value.IsBoolean()) {
    result.kind = Value::Kind::kBool;
    result.boolean = value.As<Napi::Boolean>().Value();
  } else if (value.IsNumber()) {
    const double number = value.As<Napi::Number>().DoubleValue();
    // Integral numbers go as int; the method's schema turns them into float where it declares one.
    if (std::trunc(number) == number && std::fabs(number) <= kMaxSafeInteger) {
      result.kind = Value::Kind::kInt;
      result.integer = static_cast<int64_t>(number);
    } else {
      result.kind = Value::Kind::kDouble;
      result.number = number;
    }
  } else if (value.IsBigInt()) {
    bool lossless = false;
    result.kind = Value::Kind::kInt;
    result.integer = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw InvalidValue(ErrorCode::kInvalidArg, ErrorKind::kRangeError, "a 64-bit integer", where, value);
  } else if (value.IsString()) {
    result.kind = Value::Kind::kString;
    result.string = value.As<Napi::String>().Utf8Value();
  } else if (value.IsArray()) {
    Napi::Array array = value.As<Napi::Array>();
    result.kind = Value::Kind::kList;
    for (uint32_t i = 0; i < array.Length(); ++i) {
      result.items.push_back(ValueFromJs(array.Get(i), where + "[" + std::to_string(i) + "]"));
    }
  } else if (IsJsTensor(value)) {
    result.kind = Value::Kind::kTensor;
    result.tensor = TensorFromJs(value.As<Napi::Object>(), where);
  } else {
    throw InvalidValue(ErrorCode::kInvalidArg, ErrorKind::kTypeError,
                       "a tensor {type, dims, data}, number, bigint, boolean, string, null or Array", where, value);
  }
  return result;
}

c10::IValue ValueToIValue(const Value& value, const c10::TypePtr& expected, const Placement& placement) {
  c10::TypePtr type = expected;
  if (auto optional = type->cast<c10::OptionalType>()) type = optional->getElementType();
  switch (value.kind) {
    case Value::Kind::kNone: return c10::IValue();
    case Value::Kind::kBool: return value.boolean;
    case Value::Kind::kInt:
      return type->kind() == c10::TypeKind::FloatType ? c10::IValue(static_cast<double>(value.integer))
                                                      : c10::IValue(value.integer);
    case Value::Kind::kDouble: return value.number;
    case Value::Kind::kString: return value.string;
    case Value::Kind::kTensor:
      try {
        return PlaceTensor(value.tensor, placement);
      } catch (const c10::Error&) {
        // Raised while moving an argument, not while running: the device (or its memory) is the problem.
        const NativeError error = CaptureCurrentException();
        throw SanException(error.code == ErrorCode::kOutOfMemory ? ErrorCode::kOutOfMemory : ErrorCode::kDevice,
                           "Cannot place an argument on " + placement.device.str() + ": " + error.message);
      }
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDict: break;
  }
  // A JS Array becomes whatever sequence the method declares; any other declaration is left for TorchScript's own
  // argument check to report, with the method's signature.
  if (auto tuple = type->cast<c10::TupleType>()) {
    std::vector<c10::IValue> elements;
    for (std::size_t i = 0; i < value.items.size(); ++i) {
      const c10::TypePtr& element = i < tuple->elements().size() ? tuple->elements()[i] : c10::AnyType::get();
      elements.push_back(ValueToIValue(value.items[i], element, placement));
    }
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  auto list = type->cast<c10::ListType>();
  const c10::TypePtr element = list ? list->getElementType() : c10::AnyType::get();
  c10::impl::GenericList items(element);
  for (const auto& item : value.items) items.push_back(ValueToIValue(item, element, placement));
  return items;
}

Value IValueToValue(const c10::IValue& value, const ResultOptions& options, const std::vector<at::Tensor>& inputs) {
  Value result;
  if (value.isNone()) return result;
  if (value.isBool()) {
    result.kind = Value::Kind::kBool;
    result.boolean = value.toBool();
  } else if (value.isInt()) {
    result.kind = Value::Kind::kInt;
    result.integer = value.toInt();
  } else if (value.isDouble()) {
    result.kind = Value::Kind::kDouble;
    result.number = value.toDouble();
  } else if (value.isString()) {
    result.kind = Value::Kind::kString;
    result.string = value.toStringRef();
  } else if (value.isTensor()) {
    if (!value.toTensor().defined()) return result;
    result.kind = Value::Kind::kTensor;
    result.tensor = HostTensor(value.toTensor(), options, inputs);
  } else if (value.isTuple() || value.isList()) {
    result.kind = value.isTuple() ? Value::Kind::kTuple : Value::Kind::kList;
    for (const auto& item : value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec()) {
      result.items.push_back(IValueToValue(item, options, inputs));
    }
  } else if (value.isGenericDict()) {
    result.kind = Value::Kind::kDict;
    for (const auto& entry : value.toGenericDict()) {
      result.keys.push_back(DictKey(entry.key()));
      result.items.push_back(IValueToValue(entry.value(), options, inputs));
    }
  } else {
    throw SanException(ErrorCode::kRuntime,
                       "Cannot return a value of type " + value.type()->annotation_str() + " to JS");
  }
  return result;
}

void CollectTensors(const Value& value, std::vector<at::Tensor>* tensors) {
  if (value.kind == Value::Kind::kTensor) tensors->push_back(value.tensor);
  for (const auto& item : value.items) CollectTensors(item, tensors);
}

Napi::Value ValueToJs(Napi::Env env, const Value& value, const ResultOptions& options) {
  switch (value.kind) {
    case Value::Kind::kNone: return env.Null();
    case Value::Kind::kBool: return Napi::Boolean::New(env, value.boolean);
    case Value::Kind::kInt: return Napi::Number::New(env, static_cast<double>(value.integer));
    case Value::Kind::kDouble: return Napi::Number::New(env, value.number);
    case Value::Kind::kString: return Napi::String::New(env, value.string);
    case Value::Kind::kTensor: return TensorToJs(env, value.tensor, options.copyOutputs);
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      Napi::Array array = Napi::Array::New(env, value.items.size());
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        array.Set(static_cast<uint32_t>(i), ValueToJs(env, value.items[i], options));
      }
      return array;
    }
    case Value::Kind::kDict: {
      Napi::Object object = Napi::Object::New(env);
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        object.Set(value.keys[i], ValueToJs(env, value.items[i], options));
      }
      return object;
    }
  }
  return env.Undefined();
}

}  // namespace san
