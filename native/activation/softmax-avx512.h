// The AVX-512 softmax, shared by activation/avx512-vnni.cc and attention/avx512-vnni.cc (internal
// linkage, AVX-512F/VL only). Same steps as act_softmax_f32_scalar: the max is order-free (a NaN
// lane is skipped as `>` skips it, and the sign of a zero max never changes x − max), exp runs eight
// fp64 lanes (a masked tail: lanes are independent; a short exp whose fp32 rounding is proven equal to
// V8's, else V8's own), the sums stay left-to-right fp64 chains, and the division is per element.
#pragma once
#include <immintrin.h>

#include "gelu-fast.h"
#include "softmax-rows.h"
#include "v8-math-avx512.h"

namespace bitmar {
namespace {

inline __mmask8 act_tail8(int n) { return static_cast<__mmask8>((1u << n) - 1u); }

// Eight fp32 values at p as fp64 lanes, and back; a masked access only for a tail of `left` < 8
// (full vectors take plain loads and stores: masked stores are slow on Zen 4).
inline __m512d act_load8(const float* p, long left) {
  return _mm512_cvtps_pd(left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(act_tail8(static_cast<int>(left)), p));
}
inline void act_store8(float* p, long left, __m512d v) {
  const __m256 f = _mm512_cvtpd_ps(v);
  if (left >= 8) _mm256_storeu_ps(p, f);
  else _mm256_mask_storeu_ps(p, act_tail8(static_cast<int>(left)), f);
}

// The max and the exponentials of one row, in place (x_i ← fp32(exp(x_i − max))).
inline void act_softmax_exp_avx512(float* x, int n) {
  __m512 vmax = _mm512_set1_ps(-__builtin_inff());
  int i = 0;
  for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(_mm512_loadu_ps(x + i), vmax);  // NaN in x → keeps vmax
  float max = _mm512_reduce_max_ps(vmax);
  for (; i < n; i++) if (x[i] > max) max = x[i];
  const __m512d vm = _mm512_set1_pd(max);
  for (i = 0; i < n; i += 8) {
    // fp32(exp(t)) proven from a short exp (gelu-fast.h act_gexp_avx512, within 8e-16 relative; V8's
    // within an ulp): when fp32(r·(1 ∓ 2^-46)) are the same bits, fp32 of V8's exp is those bits too
    // (rounding is monotonic). Other lanes (a rounding boundary near r: ~1e-6 of values; t < −100,
    // −inf or NaN) take V8's exp.
    const long left = n - i;
    const __m512d t = _mm512_sub_pd(act_load8(x + i, left), vm);
    const __mmask8 in = _mm512_cmp_pd_mask(t, _mm512_set1_pd(-100.0), _CMP_GE_OQ);
    const __m512d r = act_gexp_avx512(_mm512_maskz_mov_pd(in, t));
    const __m512d e = _mm512_mul_pd(r, _mm512_set1_pd(0x1p-46));
    const __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(r, e)), hi = _mm512_cvtpd_ps(_mm512_add_pd(r, e));
    const __mmask8 ok = _mm256_mask_cmpeq_epi32_mask(in, _mm256_castps_si256(lo), _mm256_castps_si256(hi));
    const __mmask8 want = left >= 8 ? static_cast<__mmask8>(0xFF) : act_tail8(static_cast<int>(left));
    act_store8(x + i, left, (ok & want) == want ? r : _mm512_mask_mov_pd(v8_exp_pd8(t), ok, r));
  }
}

// x_i ← fp32(x_i / sum) for one row.
inline void act_softmax_div_avx512(float* x, int n, double sum) {
  const __m512d vs = _mm512_set1_pd(sum);
  for (int i = 0; i < n; i += 8) act_store8(x + i, n - i, _mm512_div_pd(act_load8(x + i, n - i), vs));
}

// Softmax of `rows` rows of n values (row r at x + r·n): softmax-rows.h with this ISA's exp and division.
inline void act_softmax_rows_avx512(float* x, int rows, int n) {
  act_softmax_rows<act_softmax_exp_avx512, act_softmax_div_avx512>(x, rows, n);
}

inline void act_softmax_avx512(float* x, int n) { act_softmax_rows_avx512(x, 1, n); }

}  // namespace
}  // namespace bitmar
