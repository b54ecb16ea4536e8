// Lane-parallel twins of v8-math.h, written once over a SIMD traits type S (v8-math-avx2.h: four
// fp64 lanes in a ymm register with vector masks; v8-math-avx512.h: eight lanes in a zmm register with
// k-masks). Every lane performs exactly the fp64 operations the scalar function performs for its input
// (all branches are computed and blended), so the bits match V8's Math.exp / Math.expm1 / Math.tanh.
// High-word range tests become comparisons of |x| against the double whose high word is the threshold
// (positive doubles order like their bit patterns); NaN lanes fail every ordered comparison and are
// blended last.
//
// S provides: V, M; set(double); words(uint32 high); add sub mul div; and_ or_ xor_ (bitwise on V);
// lt le gt ge eq (ordered) and unord (→ M); mor mand (on M); sel(M, if_true, if_false); keep(M, v)
// (v where M, +0 elsewhere); trunc(v); pow2(k, bias) = 2^k from integer-valued lanes k (exponent field
// k + bias); hi_1m2k(k) = the double with high word 0x3FF00000 − (0x200000 >> k); any(M).
// Internal linkage; include only from a file built for S's instruction set.
#pragma once
#include "v8-math.h"

namespace bitmar {
namespace {

// The shared argument reduction of exp and expm1 for lanes with |x| > ln2/2: k = ±1 below 1.5·ln2,
// else trunc(x/ln2 ± 1/2); hi = x − k·ln2_hi, lo = k·ln2_lo. k is 0 in the other lanes.
template <typename S>
inline void v8s_reduce(typename S::V x, typename S::V sign, typename S::V ax, typename S::M* reduce, typename S::V* kf, typename S::V* hi,
                       typename S::V* lo) {
  *reduce = S::ge(ax, S::words(0x3FD62E43));
  const typename S::M mid = S::lt(ax, S::words(0x3FF0A2B2));
  const typename S::V kgen = S::trunc(S::add(S::mul(S::set(kV8InvLn2), x), S::or_(S::set(0.5), sign)));
  *kf = S::keep(*reduce, S::sel(mid, S::or_(S::set(1.0), sign), kgen));
  *hi = S::sub(x, S::mul(*kf, S::set(kV8Ln2Hi)));  // x − (±1)·ln2_hi = x ∓ ln2_hi exactly
  *lo = S::mul(*kf, S::set(kV8Ln2Lo));
}

template <typename S>
inline typename S::V v8s_exp(typename S::V x) {
  using V = typename S::V;
  using M = typename S::M;
  const V sign = S::and_(x, S::set(-0.0));
  const V ax = S::xor_(x, sign);
  const V one = S::set(1.0), two = S::set(2.0);
  M reduce;
  V kf, hi, lo;
  v8s_reduce<S>(x, sign, ax, &reduce, &kf, &hi, &lo);
  const V xr = S::sel(reduce, S::sub(hi, lo), x);
  const V t = S::mul(xr, xr);
  V p = S::add(S::set(kV8ExpP4), S::mul(t, S::set(kV8ExpP5)));
  p = S::add(S::set(kV8ExpP3), S::mul(t, p));
  p = S::add(S::set(kV8ExpP2), S::mul(t, p));
  p = S::add(S::set(kV8ExpP1), S::mul(t, p));
  const V c = S::sub(xr, S::mul(t, p));
  // k ≠ 0: y = 1 − ((lo − x·c/(2 − c)) − hi). For k = 0 the scalar code computes 1 − (x·c/(c − 2) − x);
  // here hi = x and lo = +0, and (0 − a) − x = (−a) − x with x·c/(c − 2) = −(x·c/(2 − c)) exactly, so
  // the same expression gives those bits too (x·c = 0 only for x = ±0, a tiny lane), times 2^0.
  const V y = S::sub(one, S::sub(S::sub(lo, S::div(S::mul(xr, c), S::sub(two, c))), hi));
  V r = S::mul(y, S::pow2(kf, 1023));
  const M k1024 = S::eq(kf, S::set(1024.0)), klow = S::lt(kf, S::set(-1021.0));
  if (S::any(S::mor(k1024, klow))) {  // results near overflow or underflow: scale in two steps
    r = S::sel(k1024, S::mul(S::mul(y, two), S::words(0x7FE00000)), r);
    r = S::sel(klow, S::mul(S::mul(y, S::pow2(kf, 1023 + 1000)), S::words(0x01700000)), r);
  }
  r = S::sel(S::lt(ax, S::words(0x3E300000)), S::add(one, x), r);  // |x| < 2^-28
  r = S::sel(S::eq(x, one), S::set(kV8E), r);
  r = S::sel(S::gt(x, S::set(kV8ExpOver)), S::words(0x7FF00000), r);  // incl. +inf
  r = S::sel(S::lt(x, S::set(kV8ExpUnder)), S::set(0.0), r);         // incl. −inf
  return S::sel(S::unord(x, x), S::add(x, x), r);
}

template <typename S>
inline typename S::V v8s_expm1(typename S::V x) {
  using V = typename S::V;
  using M = typename S::M;
  const V sign = S::and_(x, S::set(-0.0));
  const V ax = S::xor_(x, sign);
  const V one = S::set(1.0), half = S::set(0.5), two = S::set(2.0);
  M reduce;
  V kf, hi, lo;
  v8s_reduce<S>(x, sign, ax, &reduce, &kf, &hi, &lo);
  const V xred = S::sub(hi, lo);
  const V xr = S::sel(reduce, xred, x);
  const V c = S::keep(reduce, S::sub(S::sub(hi, xred), lo));
  const V hfx = S::mul(half, xr);
  const V hxs = S::mul(xr, hfx);
  V r1 = S::add(S::set(kV8Expm1Q4), S::mul(hxs, S::set(kV8Expm1Q5)));
  r1 = S::add(S::set(kV8Expm1Q3), S::mul(hxs, r1));
  r1 = S::add(S::set(kV8Expm1Q2), S::mul(hxs, r1));
  r1 = S::add(S::set(kV8Expm1Q1), S::mul(hxs, r1));
  r1 = S::add(one, S::mul(hxs, r1));
  const V t = S::sub(S::set(3.0), S::mul(r1, hfx));
  const V e = S::mul(hxs, S::div(S::sub(r1, t), S::sub(S::set(6.0), S::mul(xr, t))));
  const V r_k0 = S::sub(xr, S::sub(S::mul(xr, e), hxs));
  const V e2 = S::sub(S::sub(S::mul(xr, S::sub(e, c)), c), hxs);
  const V r_km1 = S::sub(S::mul(half, S::sub(xr, e2)), half);
  const V r_k1 = S::sel(S::lt(xr, S::set(-0.25)), S::mul(S::set(-2.0), S::sub(e2, S::add(xr, half))), S::add(one, S::mul(two, S::sub(xr, e2))));
  const V twopk = S::pow2(kf, 1023);
  V y = S::sub(one, S::sub(e2, xr));
  y = S::sel(S::eq(kf, S::set(1024.0)), S::mul(S::mul(y, two), S::set(kV8Two1023)), S::mul(y, twopk));
  const V r_far = S::sub(y, one);
  const V r_lt20 = S::mul(S::sub(S::hi_1m2k(kf), S::sub(e2, xr)), twopk);                       // t = 1 − 2^−k
  const V r_ge20 = S::mul(S::add(S::sub(xr, S::add(e2, S::pow2(S::sub(S::set(0.0), kf), 1023))), one), twopk);  // t = 2^−k
  V r = S::sel(S::lt(kf, S::set(20.0)), r_lt20, r_ge20);
  r = S::sel(S::mor(S::le(kf, S::set(-2.0)), S::gt(kf, S::set(56.0))), r_far, r);
  r = S::sel(S::eq(kf, one), r_k1, r);
  r = S::sel(S::eq(kf, S::set(-1.0)), r_km1, r);
  r = S::sel(S::eq(kf, S::set(0.0)), r_k0, r);
  r = S::sel(S::lt(ax, S::words(0x3C900000)), x, r);                                             // |x| < 2^-54
  r = S::sel(S::mand(S::ge(ax, S::words(0x4043687A)), S::lt(x, S::set(0.0))), S::set(-1.0), r);  // x ≤ −56·ln2
  r = S::sel(S::gt(x, S::set(kV8ExpOver)), S::words(0x7FF00000), r);
  return S::sel(S::unord(x, x), S::add(x, x), r);
}

template <typename S>
inline typename S::V v8s_tanh(typename S::V x) {
  using V = typename S::V;
  using M = typename S::M;
  const V sign = S::and_(x, S::set(-0.0));
  const V ax = S::xor_(x, sign);
  const V two = S::set(2.0);
  const M ge1 = S::ge(ax, S::set(1.0));
  const V t = v8s_expm1<S>(S::sel(ge1, S::mul(two, ax), S::mul(S::set(-2.0), ax)));
  const V tp2 = S::add(t, two);
  V z = S::sel(ge1, S::sub(S::set(1.0), S::div(two, tp2)), S::div(S::xor_(t, S::set(-0.0)), tp2));
  z = S::sel(S::ge(ax, S::set(22.0)), S::set(1.0), z);  // incl. ±inf
  z = S::xor_(z, sign);
  z = S::sel(S::lt(ax, S::words(0x3E300000)), x, z);  // |x| < 2^-28
  return S::sel(S::unord(x, x), S::add(x, x), z);
}

}  // namespace
}  // namespace bitmar
