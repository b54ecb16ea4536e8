// AVX2 ternary kernels (built with -mavx2 -mfma -ffp-contract=off; used only when cpuid says AVX2+FMA).
// Bit-exact twins of scalar.cc. Core step: vpmaddubsw of 2-bit codes c ∈ {0,1,2} (format.h, tq2x8)
// against a broadcast 4-byte activation quad, so int16 lanes (2r, 2r+1) hold row r of the group and one
// vpmaddwd by ones turns a window of int16 sums into the group's 8 int32 row sums.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "format.h"
#include "quant-common.h"
#include "x86-common.h"

namespace bitmar {

namespace {

// ---- activation quantisers (same steps as quant-common.h; cvtps rounds half to even under Node's MXCSR) ----

float tq_quant_row_i8_avx2(const float* x, int cols, int cols_padded, int8_t* q, int32_t* qsum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 amax = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= cols; j += 8) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
  float a = tq_hmax_ps(amax);
  for (; j < cols; j++) a = std::max(a, std::fabs(x[j]));
  const float sx = tq_scale_i8(a);
  const __m256 vs = _mm256_set1_ps(sx), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  __m256i sum = _mm256_setzero_si256();
  for (j = 0; j + 8 <= cols; j += 8) {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(_mm256_loadu_ps(x + j), vs), lo), hi);
    const __m256i i = _mm256_cvtps_epi32(v);
    sum = _mm256_add_epi32(sum, i);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + j), _mm_packs_epi16(w, w));
  }
  int32_t s = tq_hsum_epi32(sum);
  for (; j < cols; j++) {
    const int v = tq_round_clamp(x[j] / sx, -127.0f, 127.0f);
    q[j] = static_cast<int8_t>(v);
    s += v;
  }
  std::memset(q + cols, 0, cols_padded - cols);
  *qsum = s;
  return sx;
}

void tq_minmax_f32_avx2(const float* x, size_t n, float* lo, float* hi) {
  const __m256 cl = _mm256_set1_ps(-1e6f), ch = _mm256_set1_ps(1e6f);
  __m256 vl = _mm256_set1_ps(INFINITY), vh = _mm256_set1_ps(-INFINITY);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + j), cl), ch);
    vl = _mm256_min_ps(vl, v);
    vh = _mm256_max_ps(vh, v);
  }
  float l = -tq_hmax_ps(_mm256_sub_ps(_mm256_setzero_ps(), vl)), h = tq_hmax_ps(vh);
  for (; j < n; j++) {
    const float v = tq_clamp_x(x[j]);
    l = std::min(l, v);
    h = std::max(h, v);
  }
  *lo = l;
  *hi = h;
}

void tq_quant_row_u8_avx2(const float* x, int cols, int cols_padded, float s, int zp, uint8_t* q, int32_t* qsum) {
  const __m256 vs = _mm256_set1_ps(s), vzp = _mm256_set1_ps(static_cast<float>(zp));
  const __m256 cl = _mm256_set1_ps(-1e6f), ch = _mm256_set1_ps(1e6f), lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  __m256i sum = _mm256_setzero_si256();
  int j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + j), cl), ch);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_div_ps(xc, vs), vzp), lo), hi);
    const __m256i i = _mm256_cvtps_epi32(v);
    sum = _mm256_add_epi32(sum, i);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + j), _mm_packus_epi16(w, w));
  }
  int32_t acc = tq_hsum_epi32(sum);
  const float zpf = static_cast<float>(zp);
  for (; j < cols; j++) {
    const int v = tq_round_clamp(tq_clamp_x(x[j]) / s + zpf, 0.0f, 255.0f);
    q[j] = static_cast<uint8_t>(v);
    acc += v;
  }
  std::memset(q + cols, 0, cols_padded - cols);
  *qsum = acc;
}

// ---- integer kernels ----
// vpmaddubsw(u8, s8): i8 scheme puts the codes in the unsigned operand and q (|q| ≤ 127) in the signed
// one; u8 scheme puts q (≤ 255) unsigned and the codes (≤ 2, or ≤ 8 when pre-shifted) signed.
// Bounds per int16 lane (a lane is 2 bytes of one row):
//   i8: one vpmaddubsw ≤ 2·2·127 = 508;  u8: ≤ 2·255·2 = 1020;  ×4 when the codes are kept 4× (mask 0x0C).
template <bool kU8>
inline __m256i tq_maddubs(__m256i codes, __m256i act) {
  return kU8 ? _mm256_maddubs_epi16(act, codes) : _mm256_maddubs_epi16(codes, act);
}

// One token: Σ c·q of the 8 rows of one group, as 8 int32 lanes. Quads k = 1, 3 are masked with 0x0C
// without shifting (codes 4c), so one shift decodes a block; they go to B, whose lanes are multiples of
// 4, and B >> 2 is exact. Window of W blocks per int16 pass:
//   i8: A ≤ W·2·508, B ≤ W·2·2032 → W = 8 gives B ≤ 32512, A + B/4 ≤ 16256 (int16-safe);
//   u8: A ≤ W·2·1020, B ≤ W·2·4080 → W = 4 gives B ≤ 32640, A + B/4 ≤ 16320.
template <bool kU8, typename Act>
inline void tq_block1(const uint8_t* blk, const Act& act, int b, __m256i& a, __m256i& c) {
  const __m256i m3 = _mm256_set1_epi8(3), mc = _mm256_set1_epi8(12);
  const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + b * kTqBlockBytes));
  const __m256i h = _mm256_srli_epi16(x, 4);  // bits crossing from the high byte are masked off below
  a = _mm256_add_epi16(a, tq_maddubs<kU8>(_mm256_and_si256(x, m3), act.get(0, b, 0)));
  c = _mm256_add_epi16(c, tq_maddubs<kU8>(_mm256_and_si256(x, mc), act.get(0, b, 1)));
  a = _mm256_add_epi16(a, tq_maddubs<kU8>(_mm256_and_si256(h, m3), act.get(0, b, 2)));
  c = _mm256_add_epi16(c, tq_maddubs<kU8>(_mm256_and_si256(h, mc), act.get(0, b, 3)));
}

template <bool kU8>
struct tq_dot_avx2 {
  // One token, windows of kW blocks per int16 pass (bounds above).
  template <typename Act>
  static __m256i dot1(const uint8_t* blk, int nblocks, const Act& act) {
    if (nblocks == 8) return dot1_n<8>(blk, 8, act);
    if (nblocks == 4) return dot1_n<4>(blk, 4, act);
    return dot1_n<0>(blk, nblocks, act);
  }
  // kNb > 0: a compile-time block count (64- and 128-wide rows); 0: nblocks at run time. The window
  // is unrolled by 4, not 8: with 8, GCC hoists all 32 vpmaddubsw of a window ahead of their adds and
  // spills (measured on Zen 4, CPU time, M = 1: 1024² 94 → 117 GMAC/s, 50,257×128 76 → 59 µs, and
  // callgrind 0.19 → 0.18 instructions per MAC).
  template <int kNb, typename Act>
  static __m256i dot1_n(const uint8_t* blk, int nblocks_rt, const Act& act) {
    const int nblocks = kNb > 0 ? kNb : nblocks_rt;
    constexpr int kW = kU8 ? 4 : 8;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s32 = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nblocks; b0 += kW) {
      __m256i a = _mm256_setzero_si256(), c = _mm256_setzero_si256();
      if (b0 + kW <= nblocks) {
#pragma GCC unroll 4
        for (int u = 0; u < kW; u++) tq_block1<kU8>(blk, act, b0 + u, a, c);
      } else {
        for (int b = b0; b < nblocks; b++) tq_block1<kU8>(blk, act, b, a, c);
      }
      s32 = _mm256_add_epi32(s32, _mm256_madd_epi16(_mm256_add_epi16(a, _mm256_srai_epi16(c, 2)), ones));
    }
    return s32;
  }

  // kMt tokens (2..4) share each decoded block: full decode (3 shifts, 4 masks), one int16 sum per
  // token. Per block a lane gains ≤ 4·508 = 2032 (i8) or 4·1020 = 4080 (u8): windows of 16 (i8,
  // ≤ 32512) or 8 (u8, ≤ 32640) blocks.
  template <int kMt, typename Act>
  static void dotn(const uint8_t* blk, int nblocks, const Act& act, __m256i* out) {
    constexpr int kW = kU8 ? 8 : 16;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i s32[kMt];
    for (int t = 0; t < kMt; t++) s32[t] = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nblocks; b0 += kW) {
      const int b1 = std::min(nblocks, b0 + kW);
      __m256i acc[kMt];
      for (int t = 0; t < kMt; t++) acc[t] = _mm256_setzero_si256();
      for (int b = b0; b < b1; b++) {
        const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + b * kTqBlockBytes));
        const __m256i g0 = _mm256_and_si256(x, m3);
        const __m256i g1 = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
        const __m256i g2 = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
        const __m256i g3 = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
        for (int t = 0; t < kMt; t++) {
          const __m256i p01 = _mm256_add_epi16(tq_maddubs<kU8>(g0, act.get(t, b, 0)), tq_maddubs<kU8>(g1, act.get(t, b, 1)));
          const __m256i p23 = _mm256_add_epi16(tq_maddubs<kU8>(g2, act.get(t, b, 2)), tq_maddubs<kU8>(g3, act.get(t, b, 3)));
          acc[t] = _mm256_add_epi16(acc[t], _mm256_add_epi16(p01, p23));
        }
      }
      for (int t = 0; t < kMt; t++) s32[t] = _mm256_add_epi32(s32[t], _mm256_madd_epi16(acc[t], ones));
    }
    for (int t = 0; t < kMt; t++) out[t] = s32[t];
  }
};

void tq_gemm_i8_avx2(const tq_matrix& w, const tq_acts_i8& a, int m, const float* bias, float* y) {
  auto correct = [&](int t, int, __m256i s) { return _mm256_sub_epi32(s, _mm256_set1_epi32(a.qsum[t])); };
  auto scale = [&](int t) { return a.scale[t]; };
  tq_gemm_x86<tq_dot_avx2<false>>(w, reinterpret_cast<const uint8_t*>(a.q), m, bias, y, tq_acc_exact_f32(w.cols, 127), correct, scale);
}

void tq_gemm_u8_avx2(const tq_matrix& w, const tq_acts_u8& a, int m, const float* bias, float* y) {
  const __m256i zp = _mm256_set1_epi32(a.zp);
  auto correct = [&](int t, int g, __m256i s) {
    const __m256i tsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.row_tsum + g * kTqGroupRows));
    return _mm256_sub_epi32(_mm256_sub_epi32(s, _mm256_set1_epi32(a.qsum[t])), _mm256_mullo_epi32(zp, tsum));
  };
  auto scale = [&](int) { return a.scale; };
  tq_gemm_x86<tq_dot_avx2<true>>(w, a.q, m, bias, y, tq_acc_exact_f32(w.cols, 255), correct, scale);
}

// fp32 matmul in the fixed order of kernels-ts.ts: 8 lane sums (lane = j mod 8), then
// ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)). The tail uses masked loads: masked lanes add 0·0 = +0, which
// leaves a lane sum unchanged (a lane sum is never −0: it starts at +0 and x + (−x) = +0).
void tq_matmul_f32_avx2(const float* w, int n, int k, const float* x, int m, const float* bias, float* y) {
  const int rem = k & 7, kv = k - rem;
  alignas(32) static const int32_t kMaskSrc[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const __m256i mask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskSrc + 8 - rem));
  for (int i = 0; i < m; i++) {
    const float* xr = x + static_cast<size_t>(i) * k;
    for (int r = 0; r < n; r++) {
      const float* wr = w + static_cast<size_t>(r) * k;
      __m256 p = _mm256_setzero_ps();
      for (int j = 0; j < kv; j += 8) p = _mm256_add_ps(p, _mm256_mul_ps(_mm256_loadu_ps(xr + j), _mm256_loadu_ps(wr + j)));
      if (rem) p = _mm256_add_ps(p, _mm256_mul_ps(_mm256_maskload_ps(xr + kv, mask), _mm256_maskload_ps(wr + kv, mask)));
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));  // p_l + p_{l+4}
      const __m128 s2 = _mm_add_ps(h, _mm_movehl_ps(h, h));                                   // (l=0: +p2+p6, l=1: +p3+p7)
      const float s = _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
      y[static_cast<size_t>(i) * n + r] = s + (bias ? bias[r] : 0.0f);
    }
  }
}

}  // namespace

extern const tq_kernel_table tq_table_avx2 = {
    "avx2",
    tq_quant_row_i8_avx2,
    tq_minmax_f32_avx2,
    tq_quant_row_u8_avx2,
    tq_gemm_i8_avx2,
    tq_gemm_u8_avx2,
    tq_matmul_f32_avx2,
};

}  // namespace bitmar
