// AVX2 convolution kernel (built with -mavx2 -mfma -ffp-contract=off), bit-exact twin of scalar.cc.
//
// Convolution: vectorised across output channels. For a run of P output pixels and up to four
// vectors of 8 output channels, lane sum l (l = 0..7) of every (pixel, channel) lives in a register
// while j runs over l, l+8, l+16, … < 9·cin: acc += x_j·w_j with vmulps then vaddps (each rounded
// like the scalar multiply and add; no FMA), x_j broadcast from the input, w_j one vector load from the
// transposed weights (plan.h). The eight lane sums are then reduced in matmulF32's tree, plus bias.
//
// GELU (cnv_gelu_avx2, on each output row once its sums are stored): the result must be fp32(G(v)),
// G the fp64 expression of activation.h with V8's tanh, whose SIMD twin costs ~3× the convolution.
// Instead a short fp64 tanh (T = (1 − e)/(1 + e), e = exp(−2u) from cnv_exp_avx2; FMA allowed here)
// gives r ≈ G(v). u = √(2/π)·(v + 0.044715·v³) and the final (0.5·v)·(1 + T) are G's own fp64
// operations, so |r − G(v)| ≤ |0.5·v|·(δ + 7e-16) with δ = |T − tanh8(u)| ≲ 1e-15 (exp within 4e-16,
// three roundings, V8's tanh within an ulp); every value within E = |0.5·v|·2^-46 (≈ 1.4e-14·|0.5·v|,
// ten times that bound) of r therefore rounds to fp32 like G(v) does whenever fp32(r − E) and
// fp32(r + E) are the same bits (rounding is monotonic). Lanes where they are not (a rounding boundary
// within E: ~1e-6 of random values; and the steep tail v ≈ −7.7…−4 where 1 + T cancels) take the
// scalar V8 path, so results are always G's bits. For |u| ≥ 22, V8's tanh is exactly ±1 and so is T
// (exp's argument is clamped to ±44, where 1 ∓ e and 1 + e round to 1 or to e), so r is G(v) itself.
// test/native/conv_test.cc --exhaustive checks every fp32 input against scalar.cc.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation/activation.h"
#include "activation/v8-math.h"
#include "conv.h"
#include "block-avx2.h"
#include "plan.h"

namespace bitmar {

namespace {

// G(v) rounded to fp32 the reference way (activation/scalar.cc).
inline float cnv_gelu_v8(float y) {
  const double v = y;
  return static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
}

// exp(x) for −44 ≤ x ≤ 44 within ~4e-16 relative: x = n·ln2 + r, |r| ≤ ln2/2 (+ rounding), e^r by its
// degree-12 Taylor polynomial (remainder < 2e-16), times 2^n built in the exponent field.
inline __m256d cnv_exp_avx2(__m256d x) {
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

#define CNV_U for (int i = 0; i < U; i++)

// GELU of 4·U fp32 values y[0..4U) into dst, U vectors of four fp64 lanes interleaved step by step (the
// dependency chain of one vector is long: interleaving keeps the out-of-order window full). Returns a
// bit per value whose result is proven equal to cnv_gelu_v8's (dst holds approximations for the
// others); q and h get 2/(1 + e) and 0.5·v (for cnv_gelu_tail_avx2).
template <int U>
inline unsigned cnv_gelu_fast_avx2(const float* y, float* dst, double* q, double* h) {
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0);
  __m256d v[U], u[U], big[U], t[U], r[U], err[U];
  CNV_U v[i] = _mm256_cvtps_pd(_mm_loadu_ps(y + 4 * i));
  CNV_U u[i] = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.044715), v[i]), v[i]), v[i]);  // ((0.044715·v)·v)·v
  CNV_U u[i] = _mm256_mul_pd(_mm256_set1_pd(kActGeluC), _mm256_add_pd(v[i], u[i]));                      // G's u, bit for bit
  CNV_U big[i] = _mm256_cmp_pd(_mm256_andnot_pd(sign, u[i]), _mm256_set1_pd(22.0), _CMP_GE_OQ);          // tanh8(u) = ±1 exactly
  // e = exp(clamp(−2u, ±44)) (a NaN u gives −44: NaN lanes fail the check through v anyway)
  CNV_U t[i] = _mm256_min_pd(_mm256_max_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), u[i]), _mm256_set1_pd(-44.0)), _mm256_set1_pd(44.0));
  CNV_U t[i] = cnv_exp_avx2(t[i]);
  CNV_U t[i] = _mm256_div_pd(_mm256_set1_pd(2.0), _mm256_add_pd(one, t[i]));  // q = 2/(1 + e)
  CNV_U _mm256_store_pd(q + 4 * i, t[i]);
  CNV_U t[i] = _mm256_sub_pd(t[i], one);                                       // tanh(u) = q − 1
  CNV_U v[i] = _mm256_mul_pd(_mm256_set1_pd(0.5), v[i]);
  CNV_U _mm256_store_pd(h + 4 * i, v[i]);
  CNV_U r[i] = _mm256_mul_pd(v[i], _mm256_add_pd(one, t[i]));  // G's last two operations
  CNV_U err[i] = _mm256_mul_pd(_mm256_andnot_pd(sign, v[i]), _mm256_set1_pd(0x1p-46));
  unsigned ok = 0;
  CNV_U {
    const __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(r[i], err[i])), hi = _mm256_cvtpd_ps(_mm256_add_pd(r[i], err[i]));
    // same bits (not −0 against +0) and ordered (not NaN); or exact (|u| ≥ 22)
    const __m128 same = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(lo), _mm_castps_si128(hi))), _mm_cmp_ps(lo, hi, _CMP_EQ_OQ));
    ok |= static_cast<unsigned>(_mm_movemask_ps(same) | _mm256_movemask_pd(big[i])) << (4 * i);
    _mm_storeu_ps(dst + 4 * i, _mm256_cvtpd_ps(r[i]));
  }
  return ok;
}

#undef CNV_U

// The negative tail, where 1 + T cancels and the check above fails (v ≈ −7.7…−4): for u ≤ −1 V8
// computes T = −z, z = 1 − q8 with q8 = 2/(expm1(2|u|) + 2) (the same quantity as q, within ~1e-15
// relative of it), and then 1 + T = 1 − z exactly. When 1 − q·(1 ± 2^-46) round to the same z (q
// small: always, bar ties, once q < ~1e-4), that z is V8's (rounding is monotonic), and so are
// 1 − z and r = (0.5·v)·(1 − z): exact. Lanes of 4 values starting at q, h whose bits in `*ok` are
// clear get that result where it holds (h < 0 and q < 0.2 select u < −1.09 < −1); their bits are set.
inline void cnv_gelu_tail_avx2(const double* q, const double* h, float* dst, unsigned* ok, int shift) {
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

// a[0..n) ← GELU(a[0..n)), kGeluU·4 values at a time.
constexpr int kGeluU = 4;
void cnv_gelu_avx2(float* a, size_t n) {
  constexpr size_t kN = 4 * kGeluU;
  constexpr unsigned kAll = (1u << kN) - 1;
  alignas(32) float y[kN], r[kN];
  alignas(32) double q[kN], h[kN];
  for (size_t i = 0; i < n; i += kN) {
    const size_t m = n - i < kN ? n - i : kN;
    const float* src = a + i;
    if (m < kN) {
      std::memcpy(y, a + i, m * sizeof(float));
      std::memset(y + m, 0, (kN - m) * sizeof(float));
      src = y;
    }
    unsigned ok = cnv_gelu_fast_avx2<kGeluU>(src, r, q, h);
    if (ok != kAll) {
      for (int g = 0; g < kGeluU; g++)
        if (((ok >> (4 * g)) & 0xF) != 0xF) cnv_gelu_tail_avx2(q + 4 * g, h + 4 * g, r + 4 * g, &ok, 4 * g);
      if (ok != kAll) {
        for (size_t k = 0; k < m; k++)
          if (!((ok >> k) & 1)) r[k] = cnv_gelu_v8(src[k]);
      }
    }
    std::memcpy(a + i, r, m * sizeof(float));
  }
}

bool cnv_conv3x3_gelu_f32_avx2(const float* x, int h, int w, int cin, const float* weight, const float* bias, int cout, int stride, float* out) {
  cnv_plan pl;
  if (!pl.init(x, h, w, cin, weight, bias, cout, stride, out, 8)) return false;
  for (int oy = 0; oy < pl.oh; oy++) {
    for (int g0 = 0; g0 < pl.coutp; g0 += 32) {  // groups of up to 4 vectors (32 channels)
      switch (std::min(4, (pl.coutp - g0) / 8)) {  // block sizes: the fastest on Zen 4
        case 1: cnv_row_avx2<1, 8>(pl, oy, g0); break;
        case 2: cnv_row_avx2<2, 6>(pl, oy, g0); break;
        case 3: cnv_row_avx2<3, 4>(pl, oy, g0); break;
        default: cnv_row_avx2<4, 3>(pl, oy, g0); break;
      }
    }
    // the row's sums are in out (L1-hot): GELU them in place
    cnv_gelu_avx2(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_avx2 = {
    cnv_conv3x3_gelu_f32_avx2,
};

}  // namespace bitmar
