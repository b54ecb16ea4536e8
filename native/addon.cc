// Node-API bindings of bitmar_native: check arguments, hand work to the dispatched kernels, no math.
// Every bad argument throws a TypeError/RangeError with code BITMAR_ERR_NATIVE_ARGUMENT (never aborts).
// Context-aware (Napi::Addon): per-environment state only, so it loads in any number of worker_threads.
// The calls are synchronous on purpose: the engine runs inside a worker_thread, so the main event
// loop never waits on them, and one crossing costs well under a microsecond.
//
// Exports (TypeScript view in src/model/kernels-native.ts):
//   packTernary(codes: Uint8Array, rows, cols): handle            t2-row-v1 → tq2x8 (ternary/format.h)
//   bitlinearI8(isa, handle, scale, x, m, y, bias | null): void    int8 per token (bitmar-stream §2)
//   bitlinearU8(isa, handle, scale, x, m, y, bias | null): void    uint8 per tensor (R1, spec §4)
//   matmulF32(isa, w, n, k, x, m, y, bias | null): void           fp32 y = x·wᵀ + b (y must not overlap x, w)
//   layerNorm(isa, x, m, d, w, b, eps, out): void                  norm/norm.h (out may alias x)
//   gelu(isa, x, n): void                                           activation/activation.h, in place
//   softmax(isa, x, n): void                                        in place on x[0..n)
//   attention(isa, q, mq, k, kRows | null, v, vRows | null, nKeys, heads, headDim, out): void
//                                                                   attention/attention.h
//   argmax(isa, x, n): number                                       sample/sample.h
//   resizeAreaU8(isa, rgb, width, height, size, out): void         image/image.h (preprocess.ts resizeAreaU8)
//   conv3x3Gelu(isa, x, h, w, cin, weight, bias | null, cout, stride, out): void
//                                                                   conv/conv.h (kernels-ts.ts conv3x3Gelu)
//   mathF64(isa, op, x, y): void                                    op "exp" | "tanh" on Float64Arrays (tests)
//   createDecoder(spec): handle; decodeStep(isa, handle, token, xRows, logits): number
//                                                                   decode/decoder-step.h (addon-decoder.cc)
//   setThreads(n): void                                             intra-op threads of this instance (1..64, default 1;
//                                                                   thread-pool.h): bitlinearI8/U8 and matmulF32 split large calls
//   kernelInfo(): { isa, available, arch, threads }                 throws if BITMAR_KERNELS is unsupported
//   isaIndex(name): number                                          the `isa` argument of the calls above
//   benchClockGhz(iters): number                                    core clock from a dependent add chain (bench/)
//   sdNotify(state): boolean                                         from native/notify (systemd work)
//   sourceHash: string                                               the sources' hash (tools/source-hash.mjs), or ""
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>

#include "addon-args.h"
#include "addon-decoder.h"
#include "dispatch.h"
#include "notify/notify.h"
#include "thread-pool.h"
#include "ternary/bitlinear.h"
#include "ternary/format.h"

// The hash of native/ and binding.gyp this binary was built from (tools/source-hash.mjs), passed by
// tools/build-prebuilds.mjs and tools/build-addon.mjs; kept readable in the file's bytes so a stale
// prebuilt binary is detected without loading it. Empty when built without it.
#ifndef BITMAR_SOURCE_HASH
#define BITMAR_SOURCE_HASH ""
#endif
static const char kBitmarSourceTag[] = "bitmar-source-hash=" BITMAR_SOURCE_HASH;

namespace bitmar {

class BitmarNative : public Napi::Addon<BitmarNative> {
 public:
  BitmarNative(Napi::Env env, Napi::Object exports) {
    default_isa_ = dispatch_default(&default_error_);
    DefineAddon(exports, {
                             InstanceMethod("packTernary", &BitmarNative::PackTernary),
                             InstanceMethod("bitlinearI8", &BitmarNative::BitlinearI8),
                             InstanceMethod("bitlinearU8", &BitmarNative::BitlinearU8),
                             InstanceMethod("matmulF32", &BitmarNative::MatmulF32),
                             InstanceMethod("layerNorm", &BitmarNative::LayerNorm),
                             InstanceMethod("gelu", &BitmarNative::Gelu),
                             InstanceMethod("softmax", &BitmarNative::Softmax),
                             InstanceMethod("attention", &BitmarNative::Attention),
                             InstanceMethod("argmax", &BitmarNative::Argmax),
                             InstanceMethod("resizeAreaU8", &BitmarNative::ResizeAreaU8),
                             InstanceMethod("conv3x3Gelu", &BitmarNative::Conv3x3Gelu),
                             InstanceMethod("mathF64", &BitmarNative::MathF64),
                             InstanceMethod("createDecoder", &BitmarNative::CreateDecoder),
                             InstanceMethod("decodeStep", &BitmarNative::DecodeStep),
                             InstanceMethod("setThreads", &BitmarNative::SetThreads),
                             InstanceMethod("kernelInfo", &BitmarNative::KernelInfo),
                             InstanceMethod("isaIndex", &BitmarNative::IsaIndex),
                             InstanceMethod("benchClockGhz", &BitmarNative::BenchClockGhz),
                             InstanceMethod("detachArrayBuffer", &BitmarNative::DetachArrayBuffer),
                         });
    notify_register(env, exports);
    exports.Set("sourceHash", Napi::String::New(env, kBitmarSourceTag + sizeof("bitmar-source-hash=") - 1));
  }

 private:
  int default_isa_ = 0;
  std::string default_error_;
  // Intra-op threads (setThreads); null = 1. Destroyed with the instance at environment cleanup,
  // which stops and joins the workers (they never touch JavaScript).
  std::unique_ptr<thread_pool> pool_;

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
    const isa_kernels* t = Table(info, 0);
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
    run(t->tq, w, static_cast<float>(scale), x, static_cast<int>(m), bias, y, pool_.get());
    return env.Undefined();
  }

  Napi::Value BitlinearI8(const Napi::CallbackInfo& info) { return Bitlinear(info, &tq_bitlinear_i8); }
  Napi::Value BitlinearU8(const Napi::CallbackInfo& info) { return Bitlinear(info, &tq_bitlinear_u8); }

  Napi::Value MatmulF32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
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
    tq_matmul_f32(t->tq, w, static_cast<int>(n), static_cast<int>(k), x, static_cast<int>(m), bias, y, pool_.get());
    return env.Undefined();
  }

  Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
    long long m, d;
    if (!t || !tq_arg_int(info, 2, "m", 1LL << 30, &m) || !tq_arg_int(info, 3, "d", 1LL << 30, &d)) return env.Undefined();
    float *x, *w, *b, *out;
    if (!tq_arg_array(info, 1, "x", napi_float32_array, m * d, false, &x) || !tq_arg_array(info, 4, "w", napi_float32_array, d, false, &w) ||
        !tq_arg_array(info, 5, "b", napi_float32_array, d, false, &b) || !tq_arg_array(info, 7, "out", napi_float32_array, m * d, false, &out)) {
      return env.Undefined();
    }
    if (info.Length() < 7 || !info[6].IsNumber() || !std::isfinite(info[6].As<Napi::Number>().DoubleValue())) {
      return tq_throw(env, tq_err_kind::kType, "eps must be a finite number");
    }
    t->nrm.layer_norm_f32(x, static_cast<int>(m), static_cast<int>(d), w, b, info[6].As<Napi::Number>().DoubleValue(), out);
    return env.Undefined();
  }

  Napi::Value Gelu(const Napi::CallbackInfo& info) {
    const isa_kernels* t = Table(info, 0);
    long long n;
    float* x;
    if (!t || !tq_arg_int(info, 2, "n", 1LL << 40, &n) || !tq_arg_array(info, 1, "x", napi_float32_array, n, false, &x)) return info.Env().Undefined();
    t->act.gelu_f32(x, static_cast<size_t>(n));
    return info.Env().Undefined();
  }

  Napi::Value Softmax(const Napi::CallbackInfo& info) {
    const isa_kernels* t = Table(info, 0);
    long long n;
    float* x;
    if (!t || !tq_arg_int(info, 2, "n", 1LL << 30, &n) || !tq_arg_array(info, 1, "x", napi_float32_array, n, false, &x)) return info.Env().Undefined();
    t->act.softmax_f32(x, static_cast<int>(n));
    return info.Env().Undefined();
  }

  // attention(isa, q, mq, k, kRows, v, vRows, nKeys, heads, headDim, out): every row index is checked.
  Napi::Value Attention(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
    long long mq, n_keys, heads, hd;
    if (!t || !tq_arg_int(info, 2, "mq", 1LL << 30, &mq) || !tq_arg_int(info, 7, "nKeys", 1LL << 30, &n_keys) ||
        !tq_arg_int(info, 8, "heads", 1LL << 16, &heads) || !tq_arg_int(info, 9, "headDim", 1LL << 16, &hd)) {
      return env.Undefined();
    }
    const long long d = heads * hd;
    float *q, *k, *v, *out;
    int32_t *k_rows, *v_rows;
    long long k_len = 0, v_len = 0;
    if (!tq_arg_array(info, 1, "q", napi_float32_array, mq * d, false, &q) ||
        !tq_value_array(env, info[3], "k", napi_float32_array, d, false, &k, &k_len) ||
        !tq_arg_array(info, 4, "kRows", napi_int32_array, n_keys, true, &k_rows) ||
        !tq_value_array(env, info[5], "v", napi_float32_array, d, false, &v, &v_len) ||
        !tq_arg_array(info, 6, "vRows", napi_int32_array, n_keys, true, &v_rows) ||
        !tq_arg_array(info, 10, "out", napi_float32_array, mq * d, false, &out)) {
      return env.Undefined();
    }
    const long long k_rows_avail = k_len / d, v_rows_avail = v_len / d;
    for (long long i = 0; i < n_keys; i++) {
      const long long kr = k_rows ? k_rows[i] : i, vr = v_rows ? v_rows[i] : i;
      if (kr < 0 || kr >= k_rows_avail || vr < 0 || vr >= v_rows_avail) {
        return tq_throw(env, tq_err_kind::kRange, "key " + std::to_string(i) + " reads row " + std::to_string(kr) + " of k / " + std::to_string(vr) +
                                                      " of v, which hold " + std::to_string(k_rows_avail) + " / " + std::to_string(v_rows_avail) + " rows");
      }
    }
    t->attn.attend_f32({q, static_cast<int>(mq), k, k_rows, v, v_rows, static_cast<int>(n_keys), static_cast<int>(heads), static_cast<int>(hd), out});
    return env.Undefined();
  }

  Napi::Value Argmax(const Napi::CallbackInfo& info) {
    const isa_kernels* t = Table(info, 0);
    long long n;
    float* x;
    if (!t || !tq_arg_int(info, 2, "n", 1LL << 31, &n) || !tq_arg_array(info, 1, "x", napi_float32_array, n, false, &x)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), t->smp.argmax_f32(x, static_cast<int>(n)));
  }

  // resizeAreaU8(isa, rgb, width, height, size, out): rgb holds exactly width·height·3 bytes, out at
  // least size·size·3. Sizes are capped so the scratch (≈ 24·size² + 12·width bytes) stays bounded.
  Napi::Value ResizeAreaU8(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
    long long width, height, size;
    if (!t || !tq_arg_int(info, 2, "width", 1LL << 16, &width) || !tq_arg_int(info, 3, "height", 1LL << 16, &height) ||
        !tq_arg_int(info, 4, "size", 2048, &size)) {
      return env.Undefined();
    }
    uint8_t *rgb, *out;
    long long n = 0;
    if (!tq_value_array(env, info.Length() > 1 ? info[1] : env.Undefined(), "rgb", napi_uint8_array, 0, false, &rgb, &n) ||
        !tq_arg_array(info, 5, "out", napi_uint8_array, size * size * 3, false, &out)) {
      return env.Undefined();
    }
    if (n != width * height * 3) {
      return tq_throw(env, tq_err_kind::kRange,
                      "rgb holds " + std::to_string(n) + " bytes but " + std::to_string(width) + "×" + std::to_string(height) + " RGB8 needs " +
                          std::to_string(width * height * 3));
    }
    if (!t->img.resize_area_u8(rgb, static_cast<int>(width), static_cast<int>(height), static_cast<int>(size), out)) {
      return tq_throw(env, tq_err_kind::kRange, "out of memory while resizing a frame");
    }
    return env.Undefined();
  }

  // conv3x3Gelu(isa, x, h, w, cin, weight, bias, cout, stride, out): x holds ≥ h·w·cin floats (HWC),
  // weight ≥ cout·9·cin, bias null or ≥ cout, out ≥ OH·OW·cout and overlapping neither x nor weight.
  // Sides ≤ 65536, channels ≤ 4096 (so every index of the kernels' tables fits an int32).
  Napi::Value Conv3x3Gelu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
    long long h, w, cin, cout, stride;
    if (!t || !tq_arg_int(info, 2, "h", 1LL << 16, &h) || !tq_arg_int(info, 3, "w", 1LL << 16, &w) || !tq_arg_int(info, 4, "cin", 4096, &cin) ||
        !tq_arg_int(info, 7, "cout", 4096, &cout) || !tq_arg_int(info, 8, "stride", 1LL << 16, &stride)) {
      return env.Undefined();
    }
    const long long n_out = static_cast<long long>(cnv_out_size(static_cast<int>(h), static_cast<int>(stride))) *
                            cnv_out_size(static_cast<int>(w), static_cast<int>(stride)) * cout;
    float *x, *wt, *bias, *out;
    if (!tq_arg_array(info, 1, "x", napi_float32_array, h * w * cin, false, &x) ||
        !tq_arg_array(info, 5, "weight", napi_float32_array, cout * 9 * cin, false, &wt) ||
        !tq_arg_array(info, 6, "bias", napi_float32_array, cout, true, &bias) || !tq_arg_array(info, 9, "out", napi_float32_array, n_out, false, &out)) {
      return env.Undefined();
    }
    auto overlaps = [&](const float* a, long long n) { return a < out + n_out && out < a + n; };
    if (overlaps(x, h * w * cin) || overlaps(wt, cout * 9 * cin)) {
      return tq_throw(env, tq_err_kind::kRange, "out must not overlap x or weight");
    }
    if (!t->cnv.conv3x3_gelu_f32(x, static_cast<int>(h), static_cast<int>(w), static_cast<int>(cin), wt, bias, static_cast<int>(cout),
                                 static_cast<int>(stride), out)) {
      return tq_throw(env, tq_err_kind::kRange, "out of memory while convolving");
    }
    return env.Undefined();
  }

  Napi::Value MathF64(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const isa_kernels* t = Table(info, 0);
    if (!t) return env.Undefined();
    const std::string op = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (op != "exp" && op != "tanh") return tq_throw(env, tq_err_kind::kRange, "op must be \"exp\" or \"tanh\"");
    double *x, *y;
    long long n = 0;
    if (!tq_value_array(env, info.Length() > 2 ? info[2] : env.Undefined(), "x", napi_float64_array, 0, false, &x, &n) ||
        !tq_arg_array(info, 3, "y", napi_float64_array, n, false, &y)) {
      return env.Undefined();
    }
    (op == "exp" ? t->act.exp_f64 : t->act.tanh_f64)(x, static_cast<size_t>(n), y);
    return env.Undefined();
  }

  Napi::Value CreateDecoder(const Napi::CallbackInfo& info) { return decoder_create(info); }

  Napi::Value DecodeStep(const Napi::CallbackInfo& info) {
    const isa_kernels* t = Table(info, 0);
    return t ? decoder_step(info, *t) : info.Env().Undefined();
  }

  // setThreads(n): n an integer in [1, 64]; replaces the pool (its old workers are joined first).
  Napi::Value SetThreads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const double v = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(v >= 1 && v <= kPoolMaxThreads && std::floor(v) == v)) {
      const std::string got = info.Length() > 0 && info[0].IsNumber() ? info[0].ToString().Utf8Value() : "a non-number";
      return tq_throw(env, info.Length() > 0 && info[0].IsNumber() ? tq_err_kind::kRange : tq_err_kind::kType,
                      "threads must be an integer from 1 to " + std::to_string(kPoolMaxThreads) + ", got " + got);
    }
    const int n = static_cast<int>(v);
    if (n != Threads()) {
      pool_.reset();
      if (n > 1) pool_.reset(new thread_pool(n));
    }
    return env.Undefined();
  }

  int Threads() const { return pool_ ? pool_->threads() : 1; }

  // Detaches an ArrayBuffer, which frees its memory now instead of at the isolate's next GC: the
  // inference worker drops a described frame's pixels (2.7 MB at 720p, 30 a second) at once. False
  // when it cannot be detached (WebAssembly memory); detaching a detached buffer is a no-op.
  Napi::Value DetachArrayBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArrayBuffer()) return tq_throw(env, tq_err_kind::kType, "detachArrayBuffer: expected an ArrayBuffer");
    if (napi_detach_arraybuffer(env, info[0]) == napi_ok) return Napi::Boolean::New(env, true);
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    return Napi::Boolean::New(env, false);
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
    o.Set("threads", Threads());
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
  const isa_kernels* Table(const Napi::CallbackInfo& info, size_t i) {
    const isa_kernels* t = nullptr;
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
