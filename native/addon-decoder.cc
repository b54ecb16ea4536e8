// Bindings of the fused decoder step: read the spec object built by src/model/kernels-native.ts
// (createDecoderStep) into a dec_model once, check the session state on every step, run dec_step.
// The plan holds a strong reference to the spec, so every array it points into stays alive and
// attached (the engine never transfers them) until the handle is collected.
#include "addon-decoder.h"

#include <algorithm>
#include <string>

#include "addon-args.h"
#include "decode/decoder-step.h"

namespace bitmar {

namespace {

struct dec_plan {
  dec_model model;
  Napi::ObjectReference spec;
};

// Reads the fields of the spec, naming each by its path in errors; the first failure throws and
// turns every later read into a no-op (ok = false).
struct dec_spec_reader {
  Napi::Env env;
  bool ok = true;

  Napi::Value get(const Napi::Object& o, const std::string& path, const char* key) {
    if (!ok) return env.Undefined();
    return o.Get(key);
  }
  Napi::Object object(const Napi::Object& o, const std::string& path, const char* key) {
    Napi::Value v = get(o, path, key);
    if (ok && !v.IsObject()) {
      tq_throw(env, tq_err_kind::kType, "decoder spec " + path + key + " must be an object");
      ok = false;
    }
    return ok ? v.As<Napi::Object>() : Napi::Object::New(env);
  }
  long long integer(const Napi::Object& o, const std::string& path, const char* key, long long min, long long max) {
    long long out = 0;
    Napi::Value v = get(o, path, key);
    if (ok && !tq_value_int(env, v, "decoder spec " + path + key, min, max, &out)) ok = false;
    return out;
  }
  double number(const Napi::Object& o, const std::string& path, const char* key) {
    Napi::Value v = get(o, path, key);
    if (ok && (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))) {
      tq_throw(env, tq_err_kind::kType, "decoder spec " + path + key + " must be a finite number");
      ok = false;
    }
    return ok ? v.As<Napi::Number>().DoubleValue() : 0.0;
  }
  template <typename T>
  T* array(const Napi::Object& o, const std::string& path, const char* key, napi_typedarray_type type, long long min_len, bool optional = false) {
    T* out = nullptr;
    Napi::Value v = get(o, path, key);
    if (ok && !tq_value_array(env, v, "decoder spec " + path + key, type, min_len, optional, &out)) ok = false;
    return out;
  }
  dec_norm norm(const Napi::Object& o, const std::string& path, const char* key, int d) {
    const Napi::Object n = object(o, path, key);
    const std::string p = path + key + ".";
    return {array<float>(n, p, "weight", napi_float32_array, d), array<float>(n, p, "bias", napi_float32_array, d)};
  }
  dec_linear linear(const Napi::Object& o, const std::string& path, const char* key, int rows, int cols) {
    const Napi::Object n = object(o, path, key);
    const std::string p = path + key + ".";
    Napi::Value w = get(n, p, "w");
    if (!ok) return {};
    if (!w.IsExternal() || !w.As<Napi::External<tq_matrix>>().CheckTypeTag(&kTqMatrixTag)) {
      tq_throw(env, tq_err_kind::kType, "decoder spec " + p + "w must be a handle returned by packTernary");
      ok = false;
      return {};
    }
    const tq_matrix* m = w.As<Napi::External<tq_matrix>>().Data();
    if (m->rows != rows || m->cols != cols) {
      tq_throw(env, tq_err_kind::kRange, "decoder spec " + p + "w is " + std::to_string(m->rows) + "×" + std::to_string(m->cols) +
                                             ", expected " + std::to_string(rows) + "×" + std::to_string(cols));
      ok = false;
      return {};
    }
    const float scale = static_cast<float>(number(n, p, "scale"));
    const float* bias = array<float>(n, p, "bias", napi_float32_array, rows, true);
    return {m, scale, bias};
  }
};

// The session state the step indexes with, checked before every step (the addon never trusts it).
bool dec_state_ok(Napi::Env env, const dec_model& m) {
  const int cap = m.sinks + m.window;
  for (size_t l = 0; l < m.layers.size(); l++) {
    const double* meta = m.layers[l].cache.meta;
    const double fed = meta[0], head = meta[1], valid = meta[2];
    const bool ok = fed >= 0 && fed < 9007199254740992.0 && fed == std::floor(fed) && head >= 0 && head < m.window && head == std::floor(head) &&
                    valid >= 0 && valid <= std::min(fed, static_cast<double>(cap)) && valid == std::floor(valid);
    if (!ok) {
      tq_throw(env, tq_err_kind::kRange, "decoder cache of layer " + std::to_string(l) + " is corrupt (meta " + std::to_string(fed) + ", " +
                                             std::to_string(head) + ", " + std::to_string(valid) + ")");
      return false;
    }
    const int n = static_cast<int>(std::min(fed, static_cast<double>(cap)));
    for (int i = 0; i < n; i++) {
      if (m.layers[l].cache.order[i] < 0 || m.layers[l].cache.order[i] >= cap) {
        tq_throw(env, tq_err_kind::kRange, "decoder cache of layer " + std::to_string(l) + " has a bad row index at slot " + std::to_string(i));
        return false;
      }
    }
  }
  return true;
}

}  // namespace

Napi::Value decoder_create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return tq_throw(env, tq_err_kind::kType, "createDecoder needs a spec object");
  const Napi::Object spec = info[0].As<Napi::Object>();
  dec_spec_reader r{env};
  auto* plan = new dec_plan{};
  dec_model& m = plan->model;
  const long long big = 1LL << 24;
  m.d = static_cast<int>(r.integer(spec, "", "dim", 1, 1 << 16));
  m.heads = static_cast<int>(r.integer(spec, "", "heads", 1, 1 << 16));
  m.head_dim = static_cast<int>(r.integer(spec, "", "headDim", 2, 1 << 16));
  m.ffn = static_cast<int>(r.integer(spec, "", "ffnDim", 1, 1 << 20));
  m.vocab = static_cast<int>(r.integer(spec, "", "vocab", 1, big));
  m.sinks = static_cast<int>(r.integer(spec, "", "sinks", 0, big));
  m.window = static_cast<int>(r.integer(spec, "", "window", 1, big));
  m.x_capacity = static_cast<int>(r.integer(spec, "", "xCapacity", 1, big));
  m.eps = r.number(spec, "", "eps");
  if (r.ok && (m.heads * m.head_dim != m.d || m.head_dim % 2 != 0)) {
    r.ok = false;
    tq_throw(env, tq_err_kind::kRange, "decoder spec: dim must equal heads·headDim with headDim even");
  }
  const long long d = m.d, cap = static_cast<long long>(m.sinks) + m.window;
  m.tok_emb = r.array<float>(spec, "", "tokEmb", napi_float32_array, static_cast<long long>(m.vocab) * d);
  m.lnf = r.norm(spec, "", "lnF", m.d);
  m.lm_head = r.linear(spec, "", "lmHead", m.vocab, m.d);
  m.rope_cos = r.array<float>(spec, "", "ropeCos", napi_float32_array, cap * (m.head_dim / 2));
  m.rope_sin = r.array<float>(spec, "", "ropeSin", napi_float32_array, cap * (m.head_dim / 2));
  Napi::Value lv = r.get(spec, "", "layers");
  if (r.ok && !lv.IsArray()) {
    r.ok = false;
    tq_throw(env, tq_err_kind::kType, "decoder spec layers must be an array");
  }
  if (r.ok) {
    Napi::Array layers = lv.As<Napi::Array>();
    for (uint32_t i = 0; i < layers.Length() && r.ok; i++) {
      const std::string p = "layers[" + std::to_string(i) + "].";
      Napi::Value ov = layers.Get(i);
      if (!ov.IsObject()) {
        r.ok = false;
        tq_throw(env, tq_err_kind::kType, "decoder spec " + p + " must be an object");
        break;
      }
      const Napi::Object o = ov.As<Napi::Object>();
      dec_layer L{};
      L.ln1 = r.norm(o, p, "ln1", m.d);
      L.ln2 = r.norm(o, p, "ln2", m.d);
      L.ln3 = r.norm(o, p, "ln3", m.d);
      L.q = r.linear(o, p, "q", m.d, m.d);
      L.k = r.linear(o, p, "k", m.d, m.d);
      L.v = r.linear(o, p, "v", m.d, m.d);
      L.o = r.linear(o, p, "o", m.d, m.d);
      L.xq = r.linear(o, p, "xq", m.d, m.d);
      L.xo = r.linear(o, p, "xo", m.d, m.d);
      L.up = r.linear(o, p, "up", m.ffn, m.d);
      L.down = r.linear(o, p, "down", m.d, m.ffn);
      L.cond = r.array<float>(o, p, "cond", napi_float32_array, d);
      L.xk = r.array<float>(o, p, "xk", napi_float32_array, m.x_capacity * d);
      L.xv = r.array<float>(o, p, "xv", napi_float32_array, m.x_capacity * d);
      L.cache.keys = r.array<float>(o, p, "keys", napi_float32_array, cap * d);
      L.cache.values = r.array<float>(o, p, "values", napi_float32_array, cap * d);
      L.cache.rotated = r.array<float>(o, p, "rotated", napi_float32_array, cap * d);
      L.cache.order = r.array<int32_t>(o, p, "order", napi_int32_array, cap);
      L.cache.meta = r.array<double>(o, p, "meta", napi_float64_array, 3);
      m.layers.push_back(L);
    }
  }
  if (!r.ok) {
    delete plan;
    return env.Undefined();
  }
  dec_model_init(&m);
  plan->spec = Napi::Persistent(spec);
  auto handle = Napi::External<dec_plan>::New(env, plan, [](Napi::Env, dec_plan* p) { delete p; });
  handle.TypeTag(&kDecPlanTag);
  return handle;
}

Napi::Value decoder_step(const Napi::CallbackInfo& info, const isa_kernels& t) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsExternal() || !info[1].As<Napi::External<dec_plan>>().CheckTypeTag(&kDecPlanTag)) {
    return tq_throw(env, tq_err_kind::kType, "decoder must be a handle returned by createDecoder");
  }
  dec_model& m = info[1].As<Napi::External<dec_plan>>().Data()->model;
  long long token, x_rows;
  float* logits;
  if (info.Length() < 5 || !tq_value_int(env, info[2], "token", 0, m.vocab - 1, &token) ||
      !tq_value_int(env, info[3], "xRows", 1, m.x_capacity, &x_rows) ||
      !tq_arg_array(info, 4, "logits", napi_float32_array, m.vocab, false, &logits) || !dec_state_ok(env, m)) {
    if (!env.IsExceptionPending()) tq_throw(env, tq_err_kind::kType, "decodeStep(isa, decoder, token, xRows, logits)");
    return env.Undefined();
  }
  return Napi::Number::New(env, dec_step(t, m, static_cast<int>(token), static_cast<int>(x_rows), logits));
}

}  // namespace bitmar
