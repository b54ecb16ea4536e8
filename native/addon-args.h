// Argument checking shared by the Node-API binding files (addon.cc, addon-decoder.cc). Every failure
// throws a TypeError/RangeError with code BITMAR_ERR_NATIVE_ARGUMENT and returns false; the binding
// then returns undefined. Internal linkage: each binding file gets its own copy.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

namespace bitmar {
namespace {

// Marks externals made by packTernary, so a foreign External is rejected instead of misread.
constexpr napi_type_tag kTqMatrixTag = {0x6269746d61722d74ULL, 0x71327838766d3031ULL};
// Marks externals made by createDecoder.
constexpr napi_type_tag kDecPlanTag = {0x6269746d61722d64ULL, 0x65632d706c616e31ULL};

enum class tq_err_kind { kType, kRange };

inline Napi::Value tq_throw(Napi::Env env, tq_err_kind kind, const std::string& msg) {
  Napi::Error e = kind == tq_err_kind::kType ? Napi::Error(Napi::TypeError::New(env, msg))
                                              : Napi::Error(Napi::RangeError::New(env, msg));
  e.Set("code", Napi::String::New(env, "BITMAR_ERR_NATIVE_ARGUMENT"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads an integer in [min, max] from a value; on failure throws and returns false.
inline bool tq_value_int(Napi::Env env, const Napi::Value& value, const std::string& name, long long min, long long max, long long* out) {
  if (!value.IsNumber()) {
    tq_throw(env, tq_err_kind::kType, name + " must be a number");
    return false;
  }
  const double v = value.As<Napi::Number>().DoubleValue();
  if (!(v >= static_cast<double>(min) && v <= static_cast<double>(max) && std::floor(v) == v)) {
    tq_throw(env, tq_err_kind::kRange,
             name + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(v));
    return false;
  }
  *out = static_cast<long long>(v);
  return true;
}

// Reads a positive integer ≤ max from argument i.
inline bool tq_arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, long long max, long long* out) {
  if (i >= info.Length()) {
    tq_throw(info.Env(), tq_err_kind::kType, std::string(name) + " must be a number");
    return false;
  }
  return tq_value_int(info.Env(), info[i], name, 1, max, out);
}

inline const char* tq_array_name(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    default: return "Uint8Array";
  }
}

// Reads a typed array of `type` with at least `min_len` elements from a value (null/undefined allowed
// when optional: *out = nullptr). The data pointer stays valid while the array is alive: V8 never
// moves an ArrayBuffer's backing store (getting it here moves a small on-heap array off the heap once).
template <typename T>
inline bool tq_value_array(Napi::Env env, const Napi::Value& value, const std::string& name, napi_typedarray_type type, long long min_len,
                    bool optional, T** out, long long* len = nullptr) {
  *out = nullptr;
  if (optional && (value.IsNull() || value.IsUndefined())) return true;
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    tq_throw(env, tq_err_kind::kType, name + " must be a " + tq_array_name(type) + (optional ? " or null" : ""));
    return false;
  }
  Napi::TypedArray a = value.As<Napi::TypedArray>();
  const long long n = static_cast<long long>(a.ElementLength());
  if (n < min_len) {
    tq_throw(env, tq_err_kind::kRange, name + " holds " + std::to_string(n) + " elements, needs at least " + std::to_string(min_len));
    return false;
  }
  if (len) *len = n;
  *out = reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  return true;
}

// Reads a typed array from argument i (see tq_value_array).
template <typename T>
inline bool tq_arg_array(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type, long long min_len,
                  bool optional, T** out) {
  const Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  return tq_value_array(info.Env(), v, name, type, min_len, optional, out);
}

}  // namespace
}  // namespace bitmar
