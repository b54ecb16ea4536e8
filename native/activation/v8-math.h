// Scalar twins of V8's Math.exp, Math.expm1 and Math.tanh (src/base/ieee754.cc in V8, itself a port
// of fdlibm's e_exp.c, s_expm1.c and s_tanh.c by Sun Microsystems: "Permission to use, copy, modify,
// and distribute this software is freely granted, provided that this notice is preserved."). The
// TypeScript ops (src/model/kernels-ts.ts) call Math.exp/Math.tanh; native code that must give the
// same bits performs the same fp64 operations in the same order, written out here. Every function is
// plain IEEE-754 binary64 arithmetic (built with -ffp-contract=off: no fused multiply-add), so the
// results do not depend on the C library. test/model/kernels.test.ts checks them against Math.* on
// millions of inputs.
//
// Internal linkage: each ISA file that includes this gets its own copy built with its own flags.
#pragma once
#include <cstdint>
#include <cstring>

namespace bitmar {
namespace {

inline uint32_t v8m_high(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return static_cast<uint32_t>(b >> 32);
}
inline uint32_t v8m_low(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return static_cast<uint32_t>(b);
}
inline double v8m_words(uint32_t high, uint32_t low) {
  const uint64_t b = (static_cast<uint64_t>(high) << 32) | low;
  double x;
  std::memcpy(&x, &b, 8);
  return x;
}

// ln 2 split so that k·kV8Ln2Hi is exact for |k| < 2^11, the polynomial coefficients of both
// algorithms, and the thresholds (fdlibm's hexadecimal values, written as decimals that round to them).
constexpr double kV8Ln2Hi = 6.93147180369123816490e-01;   // 0x3FE62E42 FEE00000
constexpr double kV8Ln2Lo = 1.90821492927058770002e-10;   // 0x3DEA39EF 35793C76
constexpr double kV8InvLn2 = 1.44269504088896338700e+00;  // 0x3FF71547 652B82FE
constexpr double kV8ExpP1 = 1.66666666666666019037e-01;
constexpr double kV8ExpP2 = -2.77777777770155933842e-03;
constexpr double kV8ExpP3 = 6.61375632143793436117e-05;
constexpr double kV8ExpP4 = -1.65339022054652515390e-06;
constexpr double kV8ExpP5 = 4.13813679705723846039e-08;
constexpr double kV8E = 2.718281828459045;                  // exp(1), returned as is
constexpr double kV8ExpOver = 7.09782712893383973096e+02;   // above: +inf
constexpr double kV8ExpUnder = -7.45133219101941108420e+02; // below: +0
constexpr double kV8Expm1Q1 = -3.33333333333331316428e-02;
constexpr double kV8Expm1Q2 = 1.58730158725481460165e-03;
constexpr double kV8Expm1Q3 = -7.93650757867487942473e-05;
constexpr double kV8Expm1Q4 = 4.00821782732936239552e-06;
constexpr double kV8Expm1Q5 = -2.01099218183624371326e-07;
constexpr double kV8Two1023 = 8.98846567431158e+307;       // 2^1023 (expm1 spells it this way)

// exp(x): x = k·ln2 + r with |r| ≤ ln2/2, exp(r) from a degree-5 rational form, times 2^k.
inline double v8_exp(double x) {
  const uint32_t hw = v8m_high(x);
  const bool neg = (hw >> 31) != 0;
  const uint32_t hx = hw & 0x7FFFFFFF;
  if (hx >= 0x40862E42) {  // |x| ≥ 709.78…: non-finite, overflow, underflow
    if (hx >= 0x7FF00000) {
      if (((hx & 0xFFFFF) | v8m_low(x)) != 0) return x + x;  // NaN
      return neg ? 0.0 : x;                                   // exp(±inf) = inf, 0
    }
    if (x > kV8ExpOver) return v8m_words(0x7FF00000, 0);
    if (x < kV8ExpUnder) return 0.0;
  }
  double hi = 0.0, lo = 0.0;
  int k = 0;
  if (hx > 0x3FD62E42) {    // |x| > ln2/2: reduce
    if (hx < 0x3FF0A2B2) {  // |x| < 1.5·ln2: k = ±1
      if (x == 1.0) return kV8E;
      hi = neg ? x + kV8Ln2Hi : x - kV8Ln2Hi;
      lo = neg ? -kV8Ln2Lo : kV8Ln2Lo;
      k = neg ? -1 : 1;
    } else {
      k = static_cast<int>(kV8InvLn2 * x + (neg ? -0.5 : 0.5));
      const double t = k;
      hi = x - t * kV8Ln2Hi;
      lo = t * kV8Ln2Lo;
    }
    x = hi - lo;
  } else if (hx < 0x3E300000) {  // |x| < 2^-28
    return 1.0 + x;
  }
  const double t = x * x;
  const double c = x - t * (kV8ExpP1 + t * (kV8ExpP2 + t * (kV8ExpP3 + t * (kV8ExpP4 + t * kV8ExpP5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * v8m_words(0x7FE00000, 0);
    return y * v8m_words(0x3FF00000u + (static_cast<uint32_t>(k) << 20), 0);
  }
  return y * v8m_words(0x3FF00000u + (static_cast<uint32_t>(k + 1000) << 20), 0) * v8m_words(0x01700000, 0);
}

// expm1(x) = exp(x) − 1 without cancellation: the same reduction with a correction term c, a
// degree-5 rational form for expm1(r), and a reconstruction that depends on k.
inline double v8_expm1(double x) {
  const uint32_t hw = v8m_high(x);
  const bool neg = (hw >> 31) != 0;
  const uint32_t hx = hw & 0x7FFFFFFF;
  if (hx >= 0x4043687A) {    // |x| ≥ 56·ln2
    if (hx >= 0x40862E42) {  // |x| ≥ 709.78…
      if (hx >= 0x7FF00000) {
        if (((hx & 0xFFFFF) | v8m_low(x)) != 0) return x + x;  // NaN
        return neg ? -1.0 : x;
      }
      if (x > kV8ExpOver) return v8m_words(0x7FF00000, 0);
    }
    if (neg) return -1.0;  // x < −56·ln2
  }
  double hi, lo, c = 0.0;
  int k;
  if (hx > 0x3FD62E42) {    // |x| > ln2/2
    if (hx < 0x3FF0A2B2) {  // and < 1.5·ln2
      hi = neg ? x + kV8Ln2Hi : x - kV8Ln2Hi;
      lo = neg ? -kV8Ln2Lo : kV8Ln2Lo;
      k = neg ? -1 : 1;
    } else {
      k = static_cast<int>(kV8InvLn2 * x + (neg ? -0.5 : 0.5));
      const double t = k;
      hi = x - t * kV8Ln2Hi;
      lo = t * kV8Ln2Lo;
    }
    x = hi - lo;
    c = (hi - x) - lo;
  } else if (hx < 0x3C900000) {  // |x| < 2^-54
    return x;
  } else {
    k = 0;
  }
  const double hfx = 0.5 * x;
  const double hxs = x * hfx;
  const double r1 = 1.0 + hxs * (kV8Expm1Q1 + hxs * (kV8Expm1Q2 + hxs * (kV8Expm1Q3 + hxs * (kV8Expm1Q4 + hxs * kV8Expm1Q5))));
  double t = 3.0 - r1 * hfx;
  double e = hxs * ((r1 - t) / (6.0 - x * t));
  if (k == 0) return x - (x * e - hxs);
  const double twopk = v8m_words(0x3FF00000u + (static_cast<uint32_t>(k) << 20), 0);
  e = (x * (e - c) - c);
  e -= hxs;
  if (k == -1) return 0.5 * (x - e) - 0.5;
  if (k == 1) return x < -0.25 ? -2.0 * (e - (x + 0.5)) : 1.0 + 2.0 * (x - e);
  double y;
  if (k <= -2 || k > 56) {
    y = 1.0 - (e - x);
    y = k == 1024 ? y * 2.0 * kV8Two1023 : y * twopk;
    return y - 1.0;
  }
  if (k < 20) {
    t = v8m_words(0x3FF00000u - (0x200000u >> k), 0);  // 1 − 2^−k
    y = t - (e - x);
    return y * twopk;
  }
  t = v8m_words(static_cast<uint32_t>(0x3FF - k) << 20, 0);  // 2^−k
  y = x - (e + t);
  y += 1.0;
  return y * twopk;
}

// tanh(x) = −t/(t+2), t = expm1(−2|x|) for |x| < 1; 1 − 2/(t+2), t = expm1(2|x|) for 1 ≤ |x| < 22; ±1 beyond.
inline double v8_tanh(double x) {
  const uint32_t jx = v8m_high(x);
  const uint32_t ix = jx & 0x7FFFFFFF;
  const bool neg = (jx >> 31) != 0;
  if (ix >= 0x7FF00000) return neg ? 1.0 / x - 1.0 : 1.0 / x + 1.0;  // ±inf → ±1, NaN → NaN
  double z;
  if (ix < 0x40360000) {                  // |x| < 22
    if (ix < 0x3E300000) return x;        // |x| < 2^-28
    const double ax = x < 0 ? -x : x;
    if (ix >= 0x3FF00000) {               // |x| ≥ 1
      const double t = v8_expm1(2.0 * ax);
      z = 1.0 - 2.0 / (t + 2.0);
    } else {
      const double t = v8_expm1(-2.0 * ax);
      z = -t / (t + 2.0);
    }
  } else {
    z = 1.0;  // fdlibm's 1 − 1e-300 rounds to 1
  }
  return neg ? -z : z;
}

}  // namespace
}  // namespace bitmar
