// Node-API bindings of bitmar_native: check arguments, hand work to the dispatched kernels, no math.
// Every bad argument throws a TypeError/RangeError with code BITMAR_ERR_NATIVE_ARGUMENT (never aborts).
// Context-aware (Napi::Addon): per-environment state only, so it loads in any number of worker_threads.
// The calls are synchronous on purpose: the engine runs inside a worker_thread, so the main event
// loop never waits on them, and one crossing per matrix costs well under a microsecond.
//
// Exports (TypeScript view in src/model/kernels-native.ts):
//   packTernary(codes: Uint8Array, rows, cols): handle            t2-row-v1 → tq2x8 (ternary/format.h)
//   bitlinearI8(isa, handle, scale, x, m, y, bias | null): void    int8 per token (bitmar-stream §2)
//   bitlinearU8(isa, handle, scale, x, m, y, bias | null): void    uint8 per tensor (R1, spec §4)
//   matmulF32(isa, w, n, k, x, m, y, bias | null): void           fp32 y = x·wᵀ + b (y must not overlap x, w)
//   kernelInfo(): { isa, available, arch }                          throws if BITMAR_KERNELS is unsupported
//   isaIndex(name): number                                          the `isa` argument of the calls above
//   benchClockGhz(iters): number                                    core clock from a dependent add chain (bench/)
//   sdNotify(state): boolean                                         from native/notify (systemd work)
#include <napi.h>

#include <cmath>
#include <string>

#include "dispatch.h"
#include "notify/notify.h"
#include "ternary/bitlinear.h"
#include "ternary/format.h"

namespace bitmar {

namespace {

// Marks externals made by packTernary, so a foreign External is rejected instead of misread.
constexpr napi_type_tag kTqMatrixTag = {0x6269746d61722d74ULL, 0x71327838766d3031ULL};

enum class tq_err_kind { kType, kRange };

Napi::Value tq_throw(Napi::Env env, tq_err_kind kind, const std::string& msg) {
  Napi::Error e = kind == tq_err_kind::kType ? Napi::Error(Napi::TypeError::New(env, msg))
                                              : Napi::Error(Napi::RangeError::New(env, msg));
  e.Set("code", Napi::String::New(env, "BITMAR_ERR_NATIVE_ARGUMENT"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads a positive integer ≤ max; on failure throws and returns false.
bool tq_arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, long long max, long long* out) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    tq_throw(info.Env(), tq_err_kind::kType, std::string(name) + " must be a number");
    return false;
  }
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 1 && v <= static_cast<double>(max) && std::floor(v) == v)) {
    tq_throw(info.Env(), tq_err_kind::kRange, std::string(name) + " must be an integer in [1, " + std::to_string(max) + "], got " + std::to_string(v));
    return false;
  }
  *out = static_cast<long long>(v);
  return true;
}

// Reads a typed array of `type` with at least `min_len` elements (null/undefined allowed when optional).
template <typename T>
bool tq_arg_array(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type, long long min_len,
                  bool optional, T** out) {
  *out = nullptr;
  if (optional && (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined())) return true;
  const char* tname = type == napi_float32_array ? "Float32Array" : "Uint8Array";
  if (i >= info.Length() || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    tq_throw(info.Env(), tq_err_kind::kType, std::string(name) + " must be a " + tname + (optional ? " or null" : ""));
    return false;
  }
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  if (static_cast<long long>(a.ElementLength()) < min_len) {
    tq_throw(info.Env(), tq_err_kind::kRange,
             std::string(name) + " holds " + std::to_string(a.ElementLength()) + " elements, needs at least " + std::to_string(min_len));
    return false;
  }
  *out = reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  return true;
}

}  // namespace

class BitmarNative : public Napi::Addon<BitmarNative> {
 public:
  BitmarNative(Napi::Env env, Napi::Object exports) {
    default_isa_ = dispatch_default(&default_error_);
    DefineAddon(exports, {
                             InstanceMethod("packTernary", &BitmarNative::PackTernary),
                             InstanceMethod("bitlinearI8", &BitmarNative::BitlinearI8),
                             InstanceMethod("bitlinearU8", &BitmarNative::BitlinearU8),
                             InstanceMethod("matmulF32", &BitmarNative::MatmulF32),
                             InstanceMethod("kernelInfo", &BitmarNative::KernelInfo),
                             InstanceMethod("isaIndex", &BitmarNative::IsaIndex),
                             InstanceMethod("benchClockGhz", &BitmarNative::BenchClockGhz),
                         });
    notify_register(env, exports);
  }

 private:
  int default_isa_ = 0;
  std::string default_error_;

  Napi::Value PackTernary(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long long rows, cols;
    if (!tq_arg_int(info, 1, "rows", 1LL << 30, &rows) || !tq_arg_int(info, 2, "cols", kTqMaxCols, &cols)) return env.Undefined();
    const long long need = rows * ((cols + 3) / 4);
    uint8_t* codes;
    if (!tq_arg_array(info, 0, "codes", napi_uint8_array, 0, false, &codes)) return env.Undefined();
    if (static_cast<long long>(info[0].As<Napi::TypedArray>().ElementLength()) != need) {
      return tq_throw(env, tq_err_kind::kRange,
                      "t2-row-v1 codes: expected " + std::to_string(need) + " bytes for " + std::to_string(rows) + "×" +
                          std::to_string(cols) + ", got " + std::to_string(info[0].As<Napi::TypedArray>().ElementLength()));
    }
    tq_matrix* w = new tq_matrix{};
    long long bad = -1;
    if (!tq_pack_t2row(codes, static_cast<int>(rows), static_cast<int>(cols), w, &bad)) {
      delete w;
      if (bad < 0) return tq_throw(env, tq_err_kind::kRange, "out of memory while repacking a ternary matrix");
      return tq_throw(env, tq_err_kind::kRange,
                      "t2-row-v1 code 3 (invalid) at row " + std::to_string(bad / cols) + ", column " + std::to_string(bad % cols));
    }
    const int64_t bytes = static_cast<int64_t>(w->groups) * w->nblocks * kTqBlockBytes + w->groups * kTqGroupRows * 4;
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    auto handle = Napi::External<tq_matrix>::New(env, w, [bytes](Napi::Env e, tq_matrix* p) {
      tq_free(p);
      delete p;
      Napi::MemoryManagement::AdjustExternalMemory(e, -bytes);
    });
    handle.TypeTag(&kTqMatrixTag);
    return handle;
  }

  // Reads (isa, handle, scale, x, m, y, bias) and runs `run`; shared by both BitLinear schemes.
  template <typename Run>
  Napi::Value Bitlinear(const Napi::CallbackInfo& info, Run run) {
    Napi::Env env = info.Env();
    const tq_kernel_table* t = Table(info, 0);
    if (!t) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsExternal() || !info[1].As<Napi::External<tq_matrix>>().CheckTypeTag(&kTqMatrixTag)) {
      return tq_throw(env, tq_err_kind::kType, "w must be a handle returned by packTernary");
    }
    const tq_matrix& w = *info[1].As<Napi::External<tq_matrix>>().Data();
    if (info.Length() < 3 || !info[2].IsNumber()) return tq_throw(env, tq_err_kind::kType, "scale must be a number");
    const double scale = info[2].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(scale)) return tq_throw(env, tq_err_kind::kRange, "scale must be finite");
    long long m;
    if (!tq_arg_int(info, 4, "m", 1LL << 30, &m)) return env.Undefined();
    float *x, *y, *bias;
    if (!tq_arg_array(info, 3, "x", napi_float32_array, m * w.cols, false, &x) ||
        !tq_arg_array(info, 5, "y", napi_float32_array, m * w.rows, false, &y) ||
        !tq_arg_array(info, 6, "bias", napi_float32_array, w.rows, true, &bias)) {
      return env.Undefined();
    }
    run(*t, w, static_cast<float>(scale), x, static_cast<int>(m), bias, y);
    return env.Undefined();
  }

  Napi::Value BitlinearI8(const Napi::CallbackInfo& info) { return Bitlinear(info, tq_bitlinear_i8); }
  Napi::Value BitlinearU8(const Napi::CallbackInfo& info) { return Bitlinear(info, tq_bitlinear_u8); }

  Napi::Value MatmulF32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const tq_kernel_table* t = Table(info, 0);
    if (!t) return env.Undefined();
    long long n, k, m;
    if (!tq_arg_int(info, 2, "n", 1LL << 30, &n) || !tq_arg_int(info, 3, "k", 1LL << 30, &k) || !tq_arg_int(info, 5, "m", 1LL << 30, &m)) {
      return env.Undefined();
    }
    float *w, *x, *y, *bias;
    if (!tq_arg_array(info, 1, "w", napi_float32_array, n * k, false, &w) || !tq_arg_array(info, 4, "x", napi_float32_array, m * k, false, &x) ||
        !tq_arg_array(info, 6, "y", napi_float32_array, m * n, false, &y) || !tq_arg_array(info, 7, "bias", napi_float32_array, n, true, &bias)) {
      return env.Undefined();
    }
    t->matmul_f32(w, static_cast<int>(n), static_cast<int>(k), x, static_cast<int>(m), bias, y);
    return env.Undefined();
  }

  Napi::Value KernelInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (default_isa_ < 0) return tq_throw(env, tq_err_kind::kRange, default_error_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("isa", dispatch_table(default_isa_)->isa);
    Napi::Array avail = Napi::Array::New(env, dispatch_isa_count());
    for (int i = 0; i < dispatch_isa_count(); i++) avail.Set(static_cast<uint32_t>(i), dispatch_table(i)->isa);
    o.Set("available", avail);
    o.Set("arch", dispatch_arch());
    return o;
  }

  Napi::Value IsaIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) return tq_throw(env, tq_err_kind::kType, "isa must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const int i = dispatch_find(name);
    if (i < 0) return tq_throw(env, tq_err_kind::kRange, "ISA " + name + " is not supported by this build or CPU");
    return Napi::Number::New(env, i);
  }

  Napi::Value BenchClockGhz(const Napi::CallbackInfo& info) {
    long long iters;
    if (!tq_arg_int(info, 0, "iters", 1LL << 32, &iters)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), dispatch_clock_ghz(static_cast<long>(iters)));
  }

  // The resolved table for argument `i` (an index from isaIndex); throws and returns null when invalid.
  const tq_kernel_table* Table(const Napi::CallbackInfo& info, size_t i) {
    const tq_kernel_table* t = nullptr;
    if (i < info.Length() && info[i].IsNumber()) {
      const double v = info[i].As<Napi::Number>().DoubleValue();
      if (v >= 0 && v < dispatch_isa_count() && std::floor(v) == v) t = dispatch_table(static_cast<int>(v));
    }
    if (!t) tq_throw(info.Env(), tq_err_kind::kRange, "isa must be an index returned by isaIndex");
    return t;
  }
};

}  // namespace bitmar

// The macro pastes the class name into identifiers, so it needs an unqualified name.
using BitmarNative = bitmar::BitmarNative;
NODE_API_ADDON(BitmarNative)
