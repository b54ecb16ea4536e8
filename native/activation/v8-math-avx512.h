// Eight-lane AVX-512 twins of v8-math.h (the algorithms are in v8-math-simd.h): fp64 lanes in a zmm
// register, masks in k registers. Internal linkage; include only from files built with -mavx512f.
#pragma once
#include <immintrin.h>

#include "v8-math-simd.h"

namespace bitmar {
namespace {

struct v8s_avx512 {
  using V = __m512d;
  using M = __mmask8;
  static V set(double v) { return _mm512_set1_pd(v); }
  static V words(uint32_t high) { return _mm512_set1_pd(v8m_words(high, 0)); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static __m512i bits(V a) { return _mm512_castpd_si512(a); }
  static V and_(V a, V b) { return _mm512_castsi512_pd(_mm512_and_si512(bits(a), bits(b))); }
  static V or_(V a, V b) { return _mm512_castsi512_pd(_mm512_or_si512(bits(a), bits(b))); }
  static V xor_(V a, V b) { return _mm512_castsi512_pd(_mm512_xor_si512(bits(a), bits(b))); }
  static M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static M unord(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q); }
  static M mor(M a, M b) { return static_cast<M>(a | b); }
  static M mand(M a, M b) { return static_cast<M>(a & b); }
  static V sel(M m, V t, V f) { return _mm512_mask_blend_pd(m, f, t); }
  static V keep(M m, V v) { return _mm512_maskz_mov_pd(m, v); }
  static V trunc(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static __m512i k64(V k) { return _mm512_cvtepi32_epi64(_mm512_cvttpd_epi32(k)); }
  static V pow2(V k, int bias) { return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k64(k), _mm512_set1_epi64(bias)), 52)); }
  static V hi_1m2k(V k) {
    const __m512i hw = _mm512_sub_epi64(_mm512_set1_epi64(0x3FF00000), _mm512_srlv_epi64(_mm512_set1_epi64(0x200000), k64(k)));
    return _mm512_castsi512_pd(_mm512_slli_epi64(hw, 32));
  }
  static bool any(M m) { return m != 0; }
};

inline __m512d v8_exp_pd8(__m512d x) { return v8s_exp<v8s_avx512>(x); }
inline __m512d v8_expm1_pd8(__m512d x) { return v8s_expm1<v8s_avx512>(x); }
inline __m512d v8_tanh_pd8(__m512d x) { return v8s_tanh<v8s_avx512>(x); }

}  // namespace
}  // namespace bitmar
