// The AVX2 softmax, shared by activation/avx2.cc and attention/avx2.cc (internal linkage, -mavx2 only).
// Same steps as act_softmax_f32_scalar: the max is order-free (a NaN lane is skipped as `>` skips it,
// and the sign of a zero max never changes x − max), exp runs four fp64 lanes (a short exp proven to
// round like V8's, else V8's own), the sum stays a
// left-to-right fp64 chain, and the division is per element.
#pragma once
#include <immintrin.h>

#include "gelu-fast.h"
#include "softmax-rows.h"
#include "v8-math-avx2.h"

namespace bitmar {
namespace {

// The max and the exponentials of one row, in place (x_i ← fp32(exp(x_i − max))).
inline void act_softmax_exp_avx2(float* x, int n) {
  __m256 vmax = _mm256_set1_ps(-__builtin_inff());
  int i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(x + i), vmax);  // NaN in x → keeps vmax
  __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(vmax, 1), _mm256_castps256_ps128(vmax));
  m4 = _mm_max_ps(_mm_movehl_ps(m4, m4), m4);
  m4 = _mm_max_ss(_mm_shuffle_ps(m4, m4, 1), m4);
  float max = _mm_cvtss_f32(m4);
  for (; i < n; i++) if (x[i] > max) max = x[i];
  const __m256d vm = _mm256_set1_pd(max);
  for (i = 0; i + 4 <= n; i += 4) {
    // fp32(exp(t)) proven from a short exp as in softmax-avx512.h (gelu-fast.h act_gexp_avx2, within
    // 4e-16 relative): lanes where fp32(r·(1 ∓ 2^-46)) differ, or t < −100, −inf or NaN, take V8's exp.
    const __m256d t = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vm);
    const __m256d in = _mm256_cmp_pd(t, _mm256_set1_pd(-100.0), _CMP_GE_OQ);
    const __m256d r = act_gexp_avx2(_mm256_and_pd(t, in));
    const __m256d e = _mm256_mul_pd(r, _mm256_set1_pd(0x1p-46));
    const __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(r, e)), hi = _mm256_cvtpd_ps(_mm256_add_pd(r, e));
    const __m256d ok = _mm256_and_pd(in, _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpeq_epi32(_mm_castps_si128(lo), _mm_castps_si128(hi)))));
    _mm_storeu_ps(x + i, _mm256_cvtpd_ps(_mm256_movemask_pd(ok) == 0xF ? r : _mm256_blendv_pd(v8_exp_pd(t), r, ok)));
  }
  for (; i < n; i++) x[i] = static_cast<float>(v8_exp(static_cast<double>(x[i]) - static_cast<double>(max)));
}

// x_i ← fp32(x_i / sum) for one row.
inline void act_softmax_div_avx2(float* x, int n, double sum) {
  const __m256d vs = _mm256_set1_pd(sum);
  int i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vs)));
  for (; i < n; i++) x[i] = static_cast<float>(x[i] / sum);
}

// Softmax of `rows` rows of n values (row r at x + r·n): softmax-rows.h with this ISA's exp and division.
inline void act_softmax_rows_avx2(float* x, int rows, int n) {
  act_softmax_rows<act_softmax_exp_avx2, act_softmax_div_avx2>(x, rows, n);
}

inline void act_softmax_avx2(float* x, int n) { act_softmax_rows_avx2(x, 1, n); }

}  // namespace
}  // namespace bitmar
