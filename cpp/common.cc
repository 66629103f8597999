// SPDX-License-Identifier: Apache-2.0
#include "common.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/runtime/jit_exception.h>

#include <regex>
#include <sstream>
#include <utility>
#include <vector>

namespace san {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kModelLoad: return "ERR_SAN_MODEL_LOAD";
    case ErrorCode::kShape: return "ERR_SAN_SHAPE";
    case ErrorCode::kDtype: return "ERR_SAN_DTYPE";
    case ErrorCode::kDevice: return "ERR_SAN_DEVICE";
    case ErrorCode::kDisposed: return "ERR_SAN_DISPOSED";
    case ErrorCode::kOverloaded: return "ERR_SAN_OVERLOADED";
    case ErrorCode::kInvalidArg: return "ERR_SAN_INVALID_ARG";
    case ErrorCode::kOutOfMemory: return "ERR_SAN_OUT_OF_MEMORY";
    case ErrorCode::kRuntime: return "ERR_SAN_RUNTIME";
  }
  return "ERR_SAN_RUNTIME";
}

namespace {

bool IsNoise(const std::string& line) {
  return line.empty() || line.rfind("Exception raised from ", 0) == 0 || line.rfind("frame #", 0) == 0;
}

std::string Trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

std::string ShortenMessage(const std::string& message) {
  std::string text = message;
  // The TorchScript interpreter wraps the real error after two tracebacks: "...\nRuntimeError: <what>\n". Keep
  // what follows the last "<Name>Error: " that starts a line (Python-raised errors read "builtins.ValueError: ").
  static const std::regex kErrorLine(R"((^|\n)[A-Za-z_.]*(Error|Exception): )");
  if (text.find("Traceback of TorchScript") != std::string::npos) {
    std::size_t start = std::string::npos;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kErrorLine); it != std::sregex_iterator(); ++it) {
      start = it->position() + it->length();
    }
    if (start != std::string::npos) text = text.substr(start);
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = Trim(line);
    if (!IsNoise(line)) return line;
  }
  return Trim(message);
}

ErrorCode ClassifyMessage(const std::string& message) {
  // The last resort, for errors whose type says nothing (see CaptureCurrentException). First match wins, so the
  // more specific wordings come first. The samples in test/native/errors.test.ts are real LibTorch messages.
  static const std::vector<std::pair<std::regex, ErrorCode>> kRules = [] {
    const auto flags = std::regex::icase | std::regex::ECMAScript;
    return std::vector<std::pair<std::regex, ErrorCode>>{
        {std::regex(R"(out of memory|can't allocate memory|failed to allocate)", flags), ErrorCode::kOutOfMemory},
        {std::regex(R"(expected a value of type|missing value for argument|expected at most \d+ argument)", flags),
         ErrorCode::kInvalidArg},
        // "Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor)": one on the GPU, one not.
        {std::regex(R"(same device|device type|on device|\(torch\.cuda\.\w+\) and \w+ type \(torch\.(?!cuda\.))"
                    R"(|\(torch\.(?!cuda\.)\w+\) and \w+ type \(torch\.cuda\.)",
                    flags),
         ErrorCode::kDevice},
        {std::regex(R"(dtype|scalar type|input type \(.*\) and .* type|not implemented for ')", flags),
         ErrorCode::kDtype},
        {std::regex(R"(shape|size|dimension|\bdims?\b|\d-?d\b|channels|out of (range|bounds))", flags),
         ErrorCode::kShape},
    };
  }();
  for (const auto& [pattern, code] : kRules) {
    if (std::regex_search(message, pattern)) return code;
  }
  return ErrorCode::kRuntime;
}

namespace {

NativeError FromMessage(const std::string& raw, ErrorCode fallback = ErrorCode::kRuntime) {
  const std::string message = ShortenMessage(raw);
  const ErrorCode guessed = ClassifyMessage(message);
  return {guessed == ErrorCode::kRuntime ? fallback : guessed, ErrorKind::kError, message};
}

NativeError Typed(ErrorCode code, const c10::Error& e) {
  return {code, ErrorKind::kError, ShortenMessage(e.what_without_backtrace())};
}

}  // namespace

NativeError CaptureCurrentException() {
  // By the exception's type first: LibTorch raises TORCH_CHECK_INDEX, _VALUE, _TYPE, _NOT_IMPLEMENTED and allocation
  // failures as their own c10::Error subclasses. Plain c10::Error, and errors the TorchScript interpreter rethrows
  // as std::runtime_error with its traceback, say what they are only in words: the wording table is the last resort.
  try {
    throw;
  } catch (const SanException& e) {
    return {e.code(), e.kind(), e.what()};
  } catch (const c10::OutOfMemoryError& e) {
    return Typed(ErrorCode::kOutOfMemory, e);
  } catch (const c10::IndexError& e) {
    return Typed(ErrorCode::kShape, e);
  } catch (const c10::TypeError& e) {
    return Typed(ErrorCode::kDtype, e);
  } catch (const c10::NotImplementedError& e) {
    // An operator without a kernel for a dtype ("not implemented for 'Half'") or a backend ("CUDA backend").
    return FromMessage(e.what_without_backtrace(), ErrorCode::kDtype);
  } catch (const c10::ValueError& e) {
    return FromMessage(e.what_without_backtrace(), ErrorCode::kInvalidArg);
  } catch (const c10::Error& e) {
    return FromMessage(e.what_without_backtrace());
  } catch (const torch::jit::JITException& e) {
    // Raised by the model's own code (`raise ValueError(...)` in TorchScript): the model's failure, as it words it.
    return {ErrorCode::kRuntime, ErrorKind::kError, ShortenMessage(e.what())};
  } catch (const std::bad_alloc&) {
    return {ErrorCode::kOutOfMemory, ErrorKind::kError, "Out of memory (std::bad_alloc)"};
  } catch (const std::exception& e) {
    return FromMessage(e.what());
  } catch (...) {
    return {ErrorCode::kRuntime, ErrorKind::kError, "Unknown native exception"};
  }
}

Napi::Error MakeJsError(Napi::Env env, const NativeError& error) {
  Napi::Error js = error.kind == ErrorKind::kTypeError    ? Napi::TypeError::New(env, error.message)
                   : error.kind == ErrorKind::kRangeError ? Napi::RangeError::New(env, error.message)
                                                          : Napi::Error::New(env, error.message);
  js.Set("code", Napi::String::New(env, ErrorCodeName(error.code)));
  return js;
}

namespace {

const char* TypeOf(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "object";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return "object";
  }
}

// Short enough for a one-line message: strings quoted and cut, objects by their constructor's name.
std::string Describe(Napi::Value value) {
  switch (value.Type()) {
    case napi_null: return "null";
    case napi_undefined: return "undefined";
    case napi_string: {
      std::string text = value.As<Napi::String>().Utf8Value();
      return "'" + (text.size() > 40 ? text.substr(0, 40) + "..." : text) + "'";
    }
    case napi_number:
    case napi_boolean:
    case napi_bigint: return value.ToString().Utf8Value();
    case napi_object: {
      Napi::Value constructor = value.As<Napi::Object>().Get("constructor");
      if (constructor.IsFunction()) return constructor.As<Napi::Object>().Get("name").ToString().Utf8Value();
      return "Object";
    }
    default: return TypeOf(value);
  }
}

}  // namespace

SanException InvalidValue(ErrorCode code, ErrorKind kind, const std::string& expected, const std::string& where,
                          Napi::Value received) {
  return SanException(code,
                      "Expected " + expected + " for " + where + " but received " + Describe(received) + " of type " +
                          TypeOf(received),
                      kind);
}

}  // namespace san
