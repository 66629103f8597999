// SPDX-License-Identifier: Apache-2.0
// Errors shared by every file: the stable codes JS sees, the exception our own checks throw, and the conversion of
// any C++ or LibTorch exception into one short message with a code.
#ifndef SAN_COMMON_H_
#define SAN_COMMON_H_

#include <napi.h>

#include <stdexcept>
#include <string>

namespace san {

// The `code` of every error the addon rejects with; lib/errors.ts lists the same strings.
enum class ErrorCode {
  kModelLoad,    // a module file is missing, unreadable or not TorchScript
  kShape,        // a tensor's dims do not fit its data or the model
  kDtype,        // a tensor's element type does not fit its data or the model
  kDevice,       // the device cannot be used (no CUDA in this LibTorch, no such GPU, tensors on two devices)
  kDisposed,     // the model was disposed
  kOverloaded,   // the model's queue is full
  kInvalidArg,   // an argument the method does not take, an unknown module or method
  kOutOfMemory,  // LibTorch could not allocate
  kRuntime,      // any other failure inside LibTorch or the model
};

const char* ErrorCodeName(ErrorCode code);

// The JS class an error is built with: TypeError for a value of the wrong type, RangeError for a bad value.
enum class ErrorKind { kError, kTypeError, kRangeError };

// Thrown by the addon's own checks; carries the code and class that JS will see.
class SanException : public std::runtime_error {
 public:
  SanException(ErrorCode code, const std::string& message, ErrorKind kind = ErrorKind::kError)
      : std::runtime_error(message), code_(code), kind_(kind) {}
  ErrorCode code() const { return code_; }
  ErrorKind kind() const { return kind_; }

 private:
  ErrorCode code_;
  ErrorKind kind_;
};

// A failure captured on the executor thread, turned into a JS error later on the JS thread.
struct NativeError {
  ErrorCode code = ErrorCode::kRuntime;
  ErrorKind kind = ErrorKind::kError;
  std::string message;
};

// Reduces a LibTorch message to the line that says what went wrong: drops C++ backtraces, "Exception raised
// from" trailers and TorchScript interpreter tracebacks (keeping their final "RuntimeError: ..." line).
std::string ShortenMessage(const std::string& message);

// Guesses the code of a LibTorch message from its wording (see the table in common.cc): the last resort, for an
// error whose type and origin say nothing more.
ErrorCode ClassifyMessage(const std::string& message);

// Call inside a catch block: the current exception as a NativeError, classified by its type (SanException,
// c10::OutOfMemoryError, IndexError, TypeError, NotImplementedError, ValueError, the model's own JITException,
// std::bad_alloc), and by its wording only when the type is a plain c10::Error or std::exception.
NativeError CaptureCurrentException();

// A JS Error (or TypeError/RangeError) with `code` set.
Napi::Error MakeJsError(Napi::Env env, const NativeError& error);

// The one wording for a rejected value, as in lib/is.ts:
// "Expected <expected> for <where> but received <value> of type <typeof>".
SanException InvalidValue(ErrorCode code, ErrorKind kind, const std::string& expected, const std::string& where,
                          Napi::Value received);

}  // namespace san

#endif  // SAN_COMMON_H_
