// Four-lane AVX2 twins of v8-math.h (the algorithms are in v8-math-simd.h): fp64 lanes in a ymm
// register, masks as all-ones lanes. Internal linkage; include only from files built with -mavx2.
#pragma once
#include <immintrin.h>

#include "v8-math-simd.h"

namespace bitmar {
namespace {

struct v8s_avx2 {
  using V = __m256d;
  using M = __m256d;
  static V set(double v) { return _mm256_set1_pd(v); }
  static V words(uint32_t high) { return _mm256_set1_pd(v8m_words(high, 0)); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V and_(V a, V b) { return _mm256_and_pd(a, b); }
  static V or_(V a, V b) { return _mm256_or_pd(a, b); }
  static V xor_(V a, V b) { return _mm256_xor_pd(a, b); }
  static M lt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  static M unord(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static M mor(M a, M b) { return _mm256_or_pd(a, b); }
  static M mand(M a, M b) { return _mm256_and_pd(a, b); }
  static V sel(M m, V t, V f) { return _mm256_blendv_pd(f, t, m); }
  static V keep(M m, V v) { return _mm256_and_pd(v, m); }
  static V trunc(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static __m256i k64(V k) { return _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(k)); }
  static V pow2(V k, int bias) { return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k64(k), _mm256_set1_epi64x(bias)), 52)); }
  static V hi_1m2k(V k) {
    const __m256i hw = _mm256_sub_epi64(_mm256_set1_epi64x(0x3FF00000), _mm256_srlv_epi64(_mm256_set1_epi64x(0x200000), k64(k)));
    return _mm256_castsi256_pd(_mm256_slli_epi64(hw, 32));
  }
  static bool any(M m) { return _mm256_movemask_pd(m) != 0; }
};

inline __m256d v8_exp_pd(__m256d x) { return v8s_exp<v8s_avx2>(x); }
inline __m256d v8_expm1_pd(__m256d x) { return v8s_expm1<v8s_avx2>(x); }
inline __m256d v8_tanh_pd(__m256d x) { return v8s_tanh<v8s_avx2>(x); }

}  // namespace
}  // namespace bitmar
