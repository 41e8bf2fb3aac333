// Argument and error helpers shared by the JavaScript bindings (binding.cc, weight_binding.cc), so
// that both report errors and read counts alike.
#pragma once

#include <nan.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "rans.h"

namespace qans {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// An Error whose `code` is a QANS error code, as sdk/native/addon.ts expects.
inline v8::Local<v8::Value> coded_error(const char* code, const std::string& message) {
  v8::Local<v8::Value> error = Nan::Error(message.c_str());
  Nan::Set(error.As<v8::Object>(), Nan::New("code").ToLocalChecked(), Nan::New(code).ToLocalChecked());
  return error;
}

inline void throw_code(const char* code, const std::string& message) {
  Nan::ThrowError(coded_error(code, message));
}

inline void throw_status(Status status, const std::string& message) {
  throw_code(status_code(status), message);
}

inline void throw_invalid(const std::string& message) {
  throw_status(Status::InvalidArgument, message);
}

// A non-negative integer no larger than `max` (at most 2^53 - 1).
inline bool as_count(v8::Local<v8::Value> value, double max, uint64_t* out) {
  if (!value->IsNumber()) return false;
  const double d = value.As<v8::Number>()->Value();
  if (!(d >= 0) || d > max || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

inline bool is_absent(v8::Local<v8::Value> value) {
  return value->IsUndefined() || value->IsNull();
}

// A typed array's memory, kept alive by its backing store for as long as a holder or job keeps it,
// even if the array is detached or collected meanwhile.
struct Pinned {
  std::shared_ptr<v8::BackingStore> store;
  void* data = nullptr;
  size_t length = 0;  // elements

  uint8_t* bytes() const { return static_cast<uint8_t*>(data); }
};

// Pins `value` when `matches` (the caller's check of its typed-array kind); false otherwise.
inline bool pin(v8::Local<v8::Value> value, bool matches, Pinned* out) {
  if (!matches) return false;
  v8::Local<v8::TypedArray> view = value.As<v8::TypedArray>();
  out->store = view->Buffer()->GetBackingStore();
  // A detached or empty buffer may have no memory; kernels never dereference zero-length arrays,
  // but give them a valid address all the same.
  static uint64_t empty = 0;
  char* base = static_cast<char*>(out->store->Data());
  out->data = base == nullptr ? static_cast<void*>(&empty) : static_cast<void*>(base + view->ByteOffset());
  out->length = view->Length();
  return true;
}

}  // namespace qans
