// The fast exact GELU, shared by the activation family (gelu_f32), the fused decoder step (through it)
// and the convolution family's fused stem: one implementation per ISA, chosen by the including file's
// build flags (an AVX2, AVX-512 or aarch64 section below). act_gelu_fast_<isa>(a, n) sets
// a[i] ← fp32(G(a[i])) with exactly scalar.cc act_gelu_f32_scalar's bits.
//
// The result must be fp32(G(v)), G the fp64 expression of activation.h with V8's tanh, whose SIMD twin (v8-math-simd.h) costs ~4 ns a value (AVX-512).
// Instead a short fp64 tanh (T = (1 − e)/(1 + e), e = exp(−2u) from act_gexp_avx2; FMA allowed here)
// gives r ≈ G(v). u = √(2/π)·(v + 0.044715·v³) and the final (0.5·v)·(1 + T) are G's own fp64
// operations, so |r − G(v)| ≤ |0.5·v|·(δ + 7e-16) with δ = |T − tanh8(u)| ≲ 1e-15 (exp within 4e-16,
// three roundings, V8's tanh within an ulp); every value within E = |0.5·v|·2^-46 (≈ 1.4e-14·|0.5·v|,
// ten times that bound) of r therefore rounds to fp32 like G(v) does whenever fp32(r − E) and
// fp32(r + E) are the same bits (rounding is monotonic). Lanes where they are not (a rounding boundary
// within E: ~1e-6 of random values; and the steep tail v ≈ −7.7…−4 where 1 + T cancels) take the
// scalar V8 path, so results are always G's bits. For |u| ≥ 22, V8's tanh is exactly ±1 and so is T
// (exp's argument is clamped to ±44, where 1 ∓ e and 1 + e round to 1 or to e), so r is G(v) itself.
// test/native/conv_test.cc --exhaustive checks every fp32 input against scalar.cc, both through
// act_table_<isa>.gelu_f32 and through the conv kernels' identity convolution.
//
// Internal linkage: each ISA file that includes this gets its own copy built with its own flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "activation.h"
#include "v8-math.h"

namespace bitmar {
namespace {

// G(v) rounded to fp32 the reference way (scalar.cc).
inline float act_gelu_v8(float y) {
  const double v = y;
  return static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
}

// a[0..n) ← GELU(a[0..n)) by blocks of L·G values (one result bit each, L·G ≤ 32): `block` proves
// most lanes, `tail` retries the unproven lanes of each group of L, and the scalar V8 port takes what
// is still unproven. A short last block is zero-padded so the vector code never reads past a[n).
template <int L, int G, typename Block, typename Tail>
inline void act_gelu_fast_blocks(float* a, size_t n, Block block, Tail tail) {
  constexpr size_t kN = static_cast<size_t>(L) * G;
  static_assert(kN <= 32, "one bit per value in a uint32_t");
  constexpr uint32_t kAll = kN == 32 ? 0xFFFFFFFFu : (1u << kN) - 1;
  constexpr uint32_t kGroup = (1u << L) - 1;
  alignas(64) float y[kN], r[kN];
  alignas(64) double q[kN], h[kN];
  for (size_t i = 0; i < n; i += kN) {
    const size_t m = n - i < kN ? n - i : kN;
    const float* src = a + i;
    if (m < kN) {
      std::memcpy(y, a + i, m * sizeof(float));
      std::memset(y + m, 0, (kN - m) * sizeof(float));
      src = y;
    }
    uint32_t ok = block(src, r, q, h);
    if (ok != kAll) {
      for (int g = 0; g < G; g++)
        if (((ok >> (L * g)) & kGroup) != kGroup) tail(q + L * g, h + L * g, r + L * g, &ok, L * g);
      if (ok != kAll) {
        for (size_t k = 0; k < m; k++)
          if (!((ok >> k) & 1)) r[k] = act_gelu_v8(src[k]);
      }
    }
    std::memcpy(a + i, r, m * sizeof(float));
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// exp(x) for −100 ≤ x ≤ 44 within ~4e-16 relative (also softmax-avx2.h's): x = n·ln2 + r, |r| ≤ ln2/2 (+ rounding), e^r by its
// degree-12 Taylor polynomial (remainder < 2e-16), times 2^n built in the exponent field.
inline __m256d act_gexp_avx2(__m256d x) {
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);                    // 1.5·2^52: adds round to integers
  const __m256d m = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634), magic);  // magic + round(x/ln2)
  const __m256d n = _mm256_sub_pd(m, magic);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(0.6931471805599453), x);       // x − n·ln2_hi
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(2.3190468138462996e-17), r);          // − n·ln2_lo
  __m256d p = _mm256_set1_pd(1.0 / 479001600.0);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  // 2^n: the low bits of m hold n (two's complement), so (bits(m) + 1023) << 52 is its exponent field.
  const __m256i e = _mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(m), _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(e));
}

#define ACT_U for (int i = 0; i < U; i++)

// GELU of 4·U fp32 values y[0..4U) into dst, U vectors of four fp64 lanes interleaved step by step (the
// dependency chain of one vector is long: interleaving keeps the out-of-order window full). Returns a
// bit per value whose result is proven equal to act_gelu_v8's (dst holds approximations for the
// others); q and h get 2/(1 + e) and 0.5·v (for act_gelu_tail_avx2).
template <int U>
inline unsigned act_gelu_block_avx2(const float* y, float* dst, double* q, double* h) {
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0);
  __m256d v[U], u[U], big[U], t[U], r[U], err[U];
  ACT_U v[i] = _mm256_cvtps_pd(_mm_loadu_ps(y + 4 * i));
  ACT_U u[i] = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.044715), v[i]), v[i]), v[i]);  // ((0.044715·v)·v)·v
  ACT_U u[i] = _mm256_mul_pd(_mm256_set1_pd(kActGeluC), _mm256_add_pd(v[i], u[i]));                      // G's u, bit for bit
  ACT_U big[i] = _mm256_cmp_pd(_mm256_andnot_pd(sign, u[i]), _mm256_set1_pd(22.0), _CMP_GE_OQ);          // tanh8(u) = ±1 exactly
  // e = exp(clamp(−2u, ±44)) (a NaN u gives −44: NaN lanes fail the check through v anyway)
  ACT_U t[i] = _mm256_min_pd(_mm256_max_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), u[i]), _mm256_set1_pd(-44.0)), _mm256_set1_pd(44.0));
  ACT_U t[i] = act_gexp_avx2(t[i]);
  ACT_U t[i] = _mm256_div_pd(_mm256_set1_pd(2.0), _mm256_add_pd(one, t[i]));  // q = 2/(1 + e)
  ACT_U _mm256_store_pd(q + 4 * i, t[i]);
  ACT_U t[i] = _mm256_sub_pd(t[i], one);                                       // tanh(u) = q − 1
  ACT_U v[i] = _mm256_mul_pd(_mm256_set1_pd(0.5), v[i]);
  ACT_U _mm256_store_pd(h + 4 * i, v[i]);
  ACT_U r[i] = _mm256_mul_pd(v[i], _mm256_add_pd(one, t[i]));  // G's last two operations
  ACT_U err[i] = _mm256_mul_pd(_mm256_andnot_pd(sign, v[i]), _mm256_set1_pd(0x1p-46));
  unsigned ok = 0;
  ACT_U {
    const __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(r[i], err[i])), hi = _mm256_cvtpd_ps(_mm256_add_pd(r[i], err[i]));
    // same bits (not −0 against +0) and ordered (not NaN); or exact (|u| ≥ 22)
    const __m128 same = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(lo), _mm_castps_si128(hi))), _mm_cmp_ps(lo, hi, _CMP_EQ_OQ));
    ok |= static_cast<unsigned>(_mm_movemask_ps(same) | _mm256_movemask_pd(big[i])) << (4 * i);
    _mm_storeu_ps(dst + 4 * i, _mm256_cvtpd_ps(r[i]));
  }
  return ok;
}

#undef ACT_U

// The negative tail, where 1 + T cancels and the check above fails (v ≈ −7.7…−4): for u ≤ −1 V8
// computes T = −z, z = 1 − q8 with q8 = 2/(expm1(2|u|) + 2) (the same quantity as q, within ~1e-15
// relative of it), and then 1 + T = 1 − z exactly. When 1 − q·(1 ± 2^-46) round to the same z (q
// small: always, bar ties, once q < ~1e-4), that z is V8's (rounding is monotonic), and so are
// 1 − z and r = (0.5·v)·(1 − z): exact. Lanes of 4 values starting at q, h whose bits in `*ok` are
// clear get that result where it holds (h < 0 and q < 0.2 select u < −1.09 < −1); their bits are set.
inline void act_gelu_tail_avx2(const double* q, const double* h, float* dst, unsigned* ok, int shift) {
  const __m256d qv = _mm256_load_pd(q), hv = _mm256_load_pd(h), one = _mm256_set1_pd(1.0);
  const __m256d za = _mm256_fnmadd_pd(qv, _mm256_set1_pd(1.0 + 0x1p-46), one), zb = _mm256_fnmadd_pd(qv, _mm256_set1_pd(1.0 - 0x1p-46), one);
  const __m256d sel = _mm256_and_pd(_mm256_and_pd(_mm256_cmp_pd(hv, _mm256_setzero_pd(), _CMP_LT_OQ), _mm256_cmp_pd(qv, _mm256_set1_pd(0.2), _CMP_LT_OQ)),
                                    _mm256_cmp_pd(za, zb, _CMP_EQ_OQ));
  const unsigned good = static_cast<unsigned>(_mm256_movemask_pd(sel)) & ~(*ok >> shift) & 0xF;
  if (!good) return;
  alignas(16) float rt[4];
  _mm_store_ps(rt, _mm256_cvtpd_ps(_mm256_mul_pd(hv, _mm256_sub_pd(one, za))));  // V8's (0.5·v)·(1 + −z)
  for (int k = 0; k < 4; k++)
    if ((good >> k) & 1) dst[k] = rt[k];
  *ok |= good << shift;
}

// a[0..n) ← GELU(a[0..n)), kActGeluU4·4 values at a time.
constexpr int kActGeluU4 = 4;
inline void act_gelu_fast_avx2(float* a, size_t n) {
  act_gelu_fast_blocks<4, kActGeluU4>(a, n, act_gelu_block_avx2<kActGeluU4>, act_gelu_tail_avx2);
}

#endif  // AVX2

#if defined(__AVX512F__) && defined(__AVX512VL__)
// 2^(j/16), j = 0..15, correctly rounded.
alignas(64) constexpr double kActExp2Sixteenths[16] = {
    1.0,                1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721,  1.241857812073484,
    1.2968395546510096, 1.3542555469368927, 1.4142135623730951, 1.4768261459394993, 1.5422108254079407, 1.6104903319492543,
    1.681792830507429,  1.7562521603732995, 1.8340080864093424, 1.9152065613971474};

// exp(x) for −100 ≤ x ≤ 44 within ~8e-16 relative (also softmax-avx512.h's): x = (16k + j)·ln2/16 + r, |r| ≤ ln2/32 (+ rounding),
// e^r by its degree-6 Taylor polynomial (remainder < 5e-16), times 2^(j/16) from a 16-entry table
// (one two-register permute) with k added to its exponent field.
inline __m512d act_gexp_avx512(__m512d x) {
  const __m512d magic = _mm512_set1_pd(6755399441055744.0);                        // 1.5·2^52: adds round to integers
  const __m512d m = _mm512_fmadd_pd(x, _mm512_set1_pd(23.083120654223414), magic);  // magic + round(16·x/ln2)
  const __m512d n = _mm512_sub_pd(m, magic);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0.04332169878499658), x);          // x − n·(ln2/16)_hi
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.4494042586539372e-18), r);              // − n·(ln2/16)_lo
  __m512d p = _mm512_set1_pd(1.0 / 720.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  // the low bits of m hold n = 16k + j (two's complement): the permute reads j from bits 0–3
  const __m512i mi = _mm512_castpd_si512(m);
  const __m512d t = _mm512_permutex2var_pd(_mm512_load_pd(kActExp2Sixteenths), mi, _mm512_load_pd(kActExp2Sixteenths + 8));
  const __m512i k52 = _mm512_slli_epi64(_mm512_srai_epi64(_mm512_sub_epi64(mi, _mm512_castpd_si512(magic)), 4), 52);
  return _mm512_mul_pd(p, _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(t), k52)));
}

inline __m512d act_abs_pd(__m512d a) { return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(0x7FFFFFFFFFFFFFFF))); }

#define ACT_U for (int i = 0; i < U; i++)

// GELU of 8·U fp32 values y[0..8U) into dst (act_gelu_block_avx2 with eight lanes). Returns a
// bit per value whose result is proven equal to act_gelu_v8's; q and h get 2/(1 + e) and 0.5·v
// (for act_gelu_tail_avx512).
template <int U>
inline uint32_t act_gelu_block_avx512(const float* y, float* dst, double* q, double* h) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d v[U], u[U], t[U], r[U], err[U];
  __mmask8 big[U];
  ACT_U v[i] = _mm512_cvtps_pd(_mm256_loadu_ps(y + 8 * i));
  ACT_U u[i] = _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(0.044715), v[i]), v[i]), v[i]);
  ACT_U u[i] = _mm512_mul_pd(_mm512_set1_pd(kActGeluC), _mm512_add_pd(v[i], u[i]));
  ACT_U big[i] = _mm512_cmp_pd_mask(act_abs_pd(u[i]), _mm512_set1_pd(22.0), _CMP_GE_OQ);
  ACT_U t[i] = _mm512_min_pd(_mm512_max_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), u[i]), _mm512_set1_pd(-44.0)), _mm512_set1_pd(44.0));
  ACT_U t[i] = act_gexp_avx512(t[i]);
  ACT_U t[i] = _mm512_div_pd(_mm512_set1_pd(2.0), _mm512_add_pd(one, t[i]));  // q = 2/(1 + e)
  ACT_U _mm512_store_pd(q + 8 * i, t[i]);
  ACT_U t[i] = _mm512_sub_pd(t[i], one);                                       // tanh(u) = q − 1
  ACT_U v[i] = _mm512_mul_pd(_mm512_set1_pd(0.5), v[i]);
  ACT_U _mm512_store_pd(h + 8 * i, v[i]);
  ACT_U r[i] = _mm512_mul_pd(v[i], _mm512_add_pd(one, t[i]));
  ACT_U err[i] = _mm512_mul_pd(act_abs_pd(v[i]), _mm512_set1_pd(0x1p-46));
  uint32_t ok = 0;
  ACT_U {
    const __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(r[i], err[i])), hi = _mm512_cvtpd_ps(_mm512_add_pd(r[i], err[i]));
    const __mmask8 same = static_cast<__mmask8>(_mm256_cmpeq_epi32_mask(_mm256_castps_si256(lo), _mm256_castps_si256(hi)) &
                                                _mm256_cmp_ps_mask(lo, hi, _CMP_EQ_OQ));
    ok |= static_cast<uint32_t>(same | big[i]) << (8 * i);
    _mm256_storeu_ps(dst + 8 * i, _mm512_cvtpd_ps(r[i]));
  }
  return ok;
}

#undef ACT_U

// The negative tail (act_gelu_tail_avx2, see there): lanes of 8 values starting at q, h whose
// bits in `*ok` are clear get V8's exact result where it can be rebuilt; their bits are set.
inline void act_gelu_tail_avx512(const double* q, const double* h, float* dst, uint32_t* ok, int shift) {
  const __mmask8 todo = static_cast<__mmask8>(~(*ok >> shift));
  const __m512d qv = _mm512_load_pd(q), hv = _mm512_load_pd(h), one = _mm512_set1_pd(1.0);
  const __mmask8 tail = _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(hv, _mm512_setzero_pd(), _CMP_LT_OQ), qv, _mm512_set1_pd(0.2), _CMP_LT_OQ);
  const __m512d za = _mm512_fnmadd_pd(qv, _mm512_set1_pd(1.0 + 0x1p-46), one), zb = _mm512_fnmadd_pd(qv, _mm512_set1_pd(1.0 - 0x1p-46), one);
  const __mmask8 good = _mm512_mask_cmp_pd_mask(static_cast<__mmask8>(todo & tail), za, zb, _CMP_EQ_OQ);
  if (!good) return;
  _mm256_mask_storeu_ps(dst, good, _mm512_cvtpd_ps(_mm512_mul_pd(hv, _mm512_sub_pd(one, za))));  // V8's (0.5·v)·(1 + −z)
  *ok |= static_cast<uint32_t>(good) << shift;
}

// a[0..n) ← GELU(a[0..n)), kActGeluU8·8 values at a time.
constexpr int kActGeluU8 = 4;
inline void act_gelu_fast_avx512(float* a, size_t n) {
  act_gelu_fast_blocks<8, kActGeluU8>(a, n, act_gelu_block_avx512<kActGeluU8>, act_gelu_tail_avx512);
}

#endif  // AVX-512

#if defined(__aarch64__)
// exp(x) for −44 ≤ x ≤ 44 (act_gexp_avx2, two lanes; vfmaq_f64(a, b, c) = a + b·c, fused).
inline float64x2_t act_gexp_neon(float64x2_t x) {
  const float64x2_t magic = vdupq_n_f64(6755399441055744.0);
  const float64x2_t m = vfmaq_f64(magic, x, vdupq_n_f64(1.4426950408889634));
  const float64x2_t n = vsubq_f64(m, magic);
  float64x2_t r = vfmsq_f64(x, n, vdupq_n_f64(0.6931471805599453));
  r = vfmsq_f64(r, n, vdupq_n_f64(2.3190468138462996e-17));
  static constexpr double c[] = {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
                                 1.0 / 120.0,      1.0 / 24.0,      1.0 / 6.0,      0.5,           1.0,          1.0};
  float64x2_t p = vdupq_n_f64(1.0 / 479001600.0);
  for (double ci : c) p = vfmaq_f64(vdupq_n_f64(ci), p, r);
  const uint64x2_t e = vshlq_n_u64(vaddq_u64(vreinterpretq_u64_f64(m), vdupq_n_u64(1023)), 52);
  return vmulq_f64(p, vreinterpretq_f64_u64(e));
}

// GELU of two fp32 values (widened); *ok gets a lane mask of results proven equal to act_gelu_v8's,
// *q and *h get 2/(1 + e) and 0.5·v (for act_gelu_tail_neon).
inline float32x2_t act_gelu2_neon(float64x2_t v, uint32x2_t* ok, float64x2_t* q, float64x2_t* h) {
  const float64x2_t one = vdupq_n_f64(1.0);
  const float64x2_t cube = vmulq_f64(vmulq_f64(vmulq_f64(vdupq_n_f64(0.044715), v), v), v);
  const float64x2_t u = vmulq_f64(vdupq_n_f64(kActGeluC), vaddq_f64(v, cube));
  const uint64x2_t big = vcgeq_f64(vabsq_f64(u), vdupq_n_f64(22.0));
  // e = exp(clamp(−2u, ±44)) (FMAX/FMIN propagate a NaN u: such lanes fail the check)
  const float64x2_t e = act_gexp_neon(vminq_f64(vmaxq_f64(vmulq_f64(vdupq_n_f64(-2.0), u), vdupq_n_f64(-44.0)), vdupq_n_f64(44.0)));
  *q = vdivq_f64(vdupq_n_f64(2.0), vaddq_f64(one, e));
  const float64x2_t t = vsubq_f64(*q, one);  // tanh(u)
  *h = vmulq_f64(vdupq_n_f64(0.5), v);
  const float64x2_t r = vmulq_f64(*h, vaddq_f64(one, t));
  const float64x2_t err = vmulq_f64(vabsq_f64(*h), vdupq_n_f64(0x1p-46));
  const float32x2_t lo = vcvt_f32_f64(vsubq_f64(r, err)), hi = vcvt_f32_f64(vaddq_f64(r, err));
  const uint32x2_t same = vand_u32(vceq_u32(vreinterpret_u32_f32(lo), vreinterpret_u32_f32(hi)), vceq_f32(lo, hi));
  *ok = vorr_u32(same, vmovn_u64(big));
  return vcvt_f32_f64(r);
}

// The negative tail (act_gelu_tail_avx2, see there) for two lanes: where *ok is clear and V8's
// result can be rebuilt, *res gets it and *ok is set.
inline void act_gelu_tail_neon(float64x2_t q, float64x2_t h, float32x2_t* res, uint32x2_t* ok) {
  const float64x2_t one = vdupq_n_f64(1.0);
  const float64x2_t za = vfmsq_f64(one, q, vdupq_n_f64(1.0 + 0x1p-46)), zb = vfmsq_f64(one, q, vdupq_n_f64(1.0 - 0x1p-46));
  const uint64x2_t sel = vandq_u64(vandq_u64(vcltq_f64(h, vdupq_n_f64(0.0)), vcltq_f64(q, vdupq_n_f64(0.2))), vceqq_f64(za, zb));
  const uint32x2_t good = vbic_u32(vmovn_u64(sel), *ok);
  *res = vbsl_f32(good, vcvt_f32_f64(vmulq_f64(h, vsubq_f64(one, za))), *res);  // V8's (0.5·v)·(1 + −z)
  *ok = vorr_u32(*ok, good);
}

// a[0..n) ← GELU(a[0..n)), 8 values at a time.
inline void act_gelu_fast_neon(float* a, size_t n) {
  float y[8], r[8];
  for (size_t i = 0; i < n; i += 8) {
    const size_t m = n - i < 8 ? n - i : 8;
    std::memcpy(y, a + i, m * sizeof(float));
    if (m < 8) std::memset(y + m, 0, (8 - m) * sizeof(float));
    const float32x4_t y0 = vld1q_f32(y), y1 = vld1q_f32(y + 4);
    const float64x2_t v[4] = {vcvt_f64_f32(vget_low_f32(y0)), vcvt_high_f64_f32(y0), vcvt_f64_f32(vget_low_f32(y1)), vcvt_high_f64_f32(y1)};
    uint32x2_t ok[4];
    float64x2_t q[4], h[4];
    float32x2_t res[4];
    for (int g = 0; g < 4; g++) res[g] = act_gelu2_neon(v[g], &ok[g], &q[g], &h[g]);
    if (vminv_u32(vand_u32(vand_u32(ok[0], ok[1]), vand_u32(ok[2], ok[3]))) == 0) {
      for (int g = 0; g < 4; g++) act_gelu_tail_neon(q[g], h[g], &res[g], &ok[g]);
    }
    vst1q_f32(r, vcombine_f32(res[0], res[1]));
    vst1q_f32(r + 4, vcombine_f32(res[2], res[3]));
    uint32_t okv[8];
    vst1q_u32(okv, vcombine_u32(ok[0], ok[1]));
    vst1q_u32(okv + 4, vcombine_u32(ok[2], ok[3]));
    for (size_t k = 0; k < m; k++)
      if (!okv[k]) r[k] = act_gelu_v8(y[k]);
    std::memcpy(a + i, r, m * sizeof(float));
  }
}

#endif  // aarch64

}  // namespace
}  // namespace bitmar
