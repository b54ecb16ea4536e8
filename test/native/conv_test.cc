// Native cross-check of the convolution family (native/conv/) and of the shared fast GELU
// (native/activation/gelu-fast.h, also act_table_<isa>.gelu_f32): every vector ISA this CPU has against
// cnv_table_scalar and act_table_scalar, bit for bit. Links only native/conv/*.cc and
// native/activation/*.cc (each ISA file built with its own flags; test/model/kernels-conv.test.ts builds
// it for x64 and for aarch64 under qemu-aarch64).
//   conv_test                 random convolutions (odd sides, strides 1–3, cin 1–19, cout 1–40, with
//                             and without bias) and GELU sweeps through the identity convolution
//                             (cin = cout = 1, centre tap 1: out = GELU(x)): special values, the GELU
//                             tail, dense grids and random fp32 bit patterns; the same values
//                             through act_table_<isa>.gelu_f32
//   conv_test --exhaustive    also every finite fp32 value (2^32 − 2^24 inputs; minutes on one x86 core)
// Prints "PASS isas=… cases=N" and exits 0, or the first mismatch and exits 1.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "activation/activation.h"
#include "conv/conv.h"

using namespace bitmar;

namespace {

struct isa {
  const char* name;
  const cnv_kernel_table* t;
  const act_kernel_table* act;  // its activation table (gelu_f32: the same shared fast GELU), or null
};

std::vector<isa> vector_isas() {
  std::vector<isa> v;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back({"avx2", &cnv_table_avx2, &act_table_avx2});
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    v.push_back({"avx512-vnni", &cnv_table_avx512vnni, &act_table_avx512vnni});
  }
#elif defined(__aarch64__)
  v.push_back({"neon", &cnv_table_neon, nullptr});
#endif
  return v;
}

uint32_t g_state = 0x9E3779B9u;
uint32_t rnd() {  // xorshift32
  g_state ^= g_state << 13;
  g_state ^= g_state >> 17;
  g_state ^= g_state << 5;
  return g_state;
}
float rndf() { return static_cast<float>(static_cast<int32_t>(rnd())) / 2147483648.0f; }  // [−1, 1)

long long g_cases = 0;

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Equal bits, or both NaN (the TypeScript side cannot carry NaN payloads anyway).
bool same(float a, float b) { return bits(a) == bits(b) || (a != a && b != b); }

// Runs every ISA on one convolution and compares each with the scalar kernel (run once).
bool run(const std::vector<isa>& isas, const float* x, int h, int w, int cin, const float* wt, const float* bias, int cout, int stride,
         const char* what) {
  const size_t n = static_cast<size_t>(cnv_out_size(h, stride)) * cnv_out_size(w, stride) * cout;
  std::vector<float> want(n + 64, -7.0f), got(n + 64);  // 64 guard floats past the end, checked too
  if (!cnv_table_scalar.conv3x3_gelu_f32(x, h, w, cin, wt, bias, cout, stride, want.data())) {
    std::printf("FAIL scalar %s: out of memory\n", what);
    return false;
  }
  for (const isa& is : isas) {
    std::fill(got.begin(), got.end(), -7.0f);
    if (!is.t->conv3x3_gelu_f32(x, h, w, cin, wt, bias, cout, stride, got.data())) {
      std::printf("FAIL %s %s: out of memory\n", is.name, what);
      return false;
    }
    g_cases++;
    for (size_t i = 0; i < n + 64; i++) {
      if (!same(got[i], want[i])) {
        const float in = cin == 1 && cout == 1 && stride == 1 && i < n ? x[i] : NAN;  // the identity convolution's input
        std::printf("FAIL %s %s h=%d w=%d cin=%d cout=%d stride=%d bias=%d: element %zu is %.9g (0x%08x), scalar %.9g (0x%08x) [input %.9g]\n",
                    is.name, what, h, w, cin, cout, stride, bias != nullptr, i, got[i], bits(got[i]), want[i], bits(want[i]), in);
        return false;
      }
    }
  }
  return true;
}

// GELU(xs[i]) through each ISA's activation table (gelu_f32 on all of xs, NaN and inf included, and on
// a ragged prefix for the tails), against act_table_scalar.
bool gelu_act(const std::vector<isa>& isas, const std::vector<float>& xs, const char* what) {
  std::vector<float> want(xs), got;
  act_table_scalar.gelu_f32(want.data(), want.size());
  for (const isa& is : isas) {
    if (!is.act) continue;
    for (size_t n : {xs.size(), xs.size() > 37 ? size_t{37} : xs.size(), xs.size() > 5 ? size_t{5} : xs.size()}) {
      got.assign(xs.begin(), xs.begin() + static_cast<long>(n));
      got.resize(n + 16, -7.0f);
      is.act->gelu_f32(got.data(), n);
      g_cases++;
      for (size_t i = 0; i < n + 16; i++) {
        const float w = i < n ? want[i] : -7.0f;
        if (!same(got[i], w)) {
          std::printf("FAIL %s act gelu_f32 %s n=%zu: element %zu is %.9g (0x%08x), scalar %.9g (0x%08x) [input %.9g]\n", is.name, what, n, i,
                      got[i], bits(got[i]), w, bits(w), i < n ? xs[i] : NAN);
          return false;
        }
      }
    }
  }
  return true;
}

// GELU(xs[i]) through the identity convolution (cin = cout = 1, centre tap 1), every ISA against scalar;
// and through the activation tables (gelu_act).
bool gelu_values(const std::vector<isa>& isas, const std::vector<float>& xs, const char* what) {
  if (!gelu_act(isas, xs, what)) return false;
  float wt[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  // Non-finite values go alone (their neighbours' 0·x would be NaN for every other pixel too).
  std::vector<float> finite;
  for (float v : xs) {
    if (std::isfinite(v)) {
      finite.push_back(v);
    } else if (!run(isas, &v, 1, 1, 1, wt, nullptr, 1, 1, what)) {
      return false;
    }
  }
  if (finite.empty()) return true;
  // a 1024-wide image, zero-padded (interior pixels take the vector kernels' fast path)
  const int w = static_cast<int>(std::min<size_t>(finite.size(), 1024)), h = static_cast<int>((finite.size() + w - 1) / w);
  finite.resize(static_cast<size_t>(h) * w, 0.0f);
  return run(isas, finite.data(), h, w, 1, wt, nullptr, 1, 1, what);
}

bool random_convs(const std::vector<isa>& isas) {
  const int shapes[][5] = {
      // h, w, cin, cout, stride
      {1, 1, 1, 1, 1},   {1, 1, 3, 16, 1},   {2, 2, 1, 1, 2},   {3, 3, 3, 16, 1},  {5, 7, 3, 5, 1},    {7, 5, 3, 5, 2},
      {5, 7, 16, 9, 2},  {6, 6, 3, 16, 1},   {9, 8, 4, 3, 2},   {1, 4, 2, 3, 2},   {5, 1, 3, 2, 2},    {8, 7, 5, 4, 3},
      {11, 9, 16, 32, 1}, {11, 9, 16, 32, 2}, {13, 17, 3, 16, 1}, {17, 13, 16, 32, 2}, {16, 16, 16, 32, 2}, {33, 31, 3, 16, 1},
      {12, 10, 7, 24, 1}, {10, 12, 19, 40, 2}, {9, 9, 8, 17, 1},  {9, 14, 1, 33, 2},  {6, 9, 2, 8, 3},    {4, 30, 3, 31, 1},
      {64, 64, 3, 16, 1}, {64, 64, 16, 32, 2},
  };
  for (const auto& s : shapes) {
    const int h = s[0], w = s[1], cin = s[2], cout = s[3], stride = s[4];
    for (int rep = 0; rep < 2; rep++) {
      std::vector<float> x(static_cast<size_t>(h) * w * cin), wt(static_cast<size_t>(cout) * 9 * cin), b(cout);
      const float scale = rep == 0 ? 1.0f : 6.0f;  // rep 1: outputs reach the GELU tail and beyond
      for (float& v : x) v = rndf() * scale;
      for (float& v : wt) v = rndf() * (rep == 0 ? 0.5f : 2.0f);
      for (float& v : b) v = rndf();
      if (!run(isas, x.data(), h, w, cin, wt.data(), b.data(), cout, stride, "random conv") ||
          !run(isas, x.data(), h, w, cin, wt.data(), nullptr, cout, stride, "random conv")) {
        return false;
      }
    }
  }
  return true;
}

bool gelu_sweeps(const std::vector<isa>& isas) {
  std::vector<float> xs;
  const float special[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.17549435e-38f, -1.17549435e-38f, 1e-30f, -1e-30f, 4.7e-9f, -4.7e-9f, 1.0f, -1.0f,
                           3.4028235e38f, -3.4028235e38f, 1e19f, -1e19f, 7.7f, -7.7f, 7.69f, -7.69f, 7.71f, -7.71f, 22.0f, -22.0f,
                           INFINITY, -INFINITY, NAN, -NAN};
  for (float v : special) xs.push_back(v);
  for (float v = -12.0f; v <= 12.0f; v += 1.0f / 4096) xs.push_back(v);   // dense: the tail and the knee
  for (float v = -9.0f; v <= -3.0f; v = std::nextafter(v, 0.0f)) {       // every fp32 of the steep tail… thinned
    xs.push_back(v);
    for (int i = 0; i < 63; i++) v = std::nextafter(v, 0.0f);
  }
  for (int i = 0; i < 2000000; i++) xs.push_back(from_bits(rnd()));        // any bit pattern (NaN/inf alone)
  for (int i = 0; i < 1000000; i++) xs.push_back(rndf() * 8.0f);
  return gelu_values(isas, xs, "gelu sweep");
}

bool gelu_exhaustive(const std::vector<isa>& isas) {
  const uint64_t chunk = 1u << 22;
  std::vector<float> xs;
  xs.reserve(chunk);
  for (uint64_t b = 0; b < (1ull << 32); b += chunk) {
    xs.clear();
    for (uint64_t i = b; i < b + chunk; i++) {
      const float v = from_bits(static_cast<uint32_t>(i));
      if (std::isfinite(v)) xs.push_back(v);  // ±inf and NaNs: gelu_sweeps
    }
    if (!gelu_values(isas, xs, "gelu exhaustive")) return false;
    if ((b / chunk) % 64 == 63) {
      std::fprintf(stderr, "  exhaustive: %llu of 1024 chunks\n", static_cast<unsigned long long>(b / chunk + 1));
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool exhaustive = argc > 1 && std::string(argv[1]) == "--exhaustive";
  const std::vector<isa> isas = vector_isas();
  if (!random_convs(isas) || !gelu_sweeps(isas) || (exhaustive && !gelu_exhaustive(isas))) return 1;
  std::string names;
  for (const isa& is : isas) names += (names.empty() ? "" : ",") + std::string(is.name);
  std::printf("PASS isas=%s,scalar cases=%lld%s\n", names.c_str(), g_cases, exhaustive ? " exhaustive" : "");
  return 0;
}
