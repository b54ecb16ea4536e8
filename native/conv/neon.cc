// NEON convolution kernel of the aarch64 ISA (plain Advanced SIMD: the neon-dotprod build compiles it,
// nothing here needs dotprod; -ffp-contract=off, so no vmul/vadd pair becomes an FMLA), bit-exact twin
// of scalar.cc: avx2.cc with 4 output channels per q register and up to 8 registers (32 channels) per
// group, vmulq_n_f32 (the lane product x·w) then vaddq_f32 per element. The fast GELU is avx2.cc's on
// two fp64 lanes per register, with the same exactness checks, tail path and scalar V8 path for the rest.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "activation/activation.h"
#include "activation/v8-math.h"
#include "conv.h"
#include "plan.h"

namespace bitmar {

namespace {

inline float cnv_gelu_v8(float y) {
  const double v = y;
  return static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
}

// exp(x) for −44 ≤ x ≤ 44 (avx2.cc cnv_exp_avx2, two lanes; vfmaq_f64(a, b, c) = a + b·c, fused).
inline float64x2_t cnv_exp_neon(float64x2_t x) {
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

// GELU of two fp32 values (widened); *ok gets a lane mask of results proven equal to cnv_gelu_v8's,
// *q and *h get 2/(1 + e) and 0.5·v (for cnv_gelu_tail_neon).
inline float32x2_t cnv_gelu2_neon(float64x2_t v, uint32x2_t* ok, float64x2_t* q, float64x2_t* h) {
  const float64x2_t one = vdupq_n_f64(1.0);
  const float64x2_t cube = vmulq_f64(vmulq_f64(vmulq_f64(vdupq_n_f64(0.044715), v), v), v);
  const float64x2_t u = vmulq_f64(vdupq_n_f64(kActGeluC), vaddq_f64(v, cube));
  const uint64x2_t big = vcgeq_f64(vabsq_f64(u), vdupq_n_f64(22.0));
  // e = exp(clamp(−2u, ±44)) (FMAX/FMIN propagate a NaN u: such lanes fail the check)
  const float64x2_t e = cnv_exp_neon(vminq_f64(vmaxq_f64(vmulq_f64(vdupq_n_f64(-2.0), u), vdupq_n_f64(-44.0)), vdupq_n_f64(44.0)));
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

// The negative tail (avx2.cc cnv_gelu_tail_avx2, see there) for two lanes: where *ok is clear and V8's
// result can be rebuilt, *res gets it and *ok is set.
inline void cnv_gelu_tail_neon(float64x2_t q, float64x2_t h, float32x2_t* res, uint32x2_t* ok) {
  const float64x2_t one = vdupq_n_f64(1.0);
  const float64x2_t za = vfmsq_f64(one, q, vdupq_n_f64(1.0 + 0x1p-46)), zb = vfmsq_f64(one, q, vdupq_n_f64(1.0 - 0x1p-46));
  const uint64x2_t sel = vandq_u64(vandq_u64(vcltq_f64(h, vdupq_n_f64(0.0)), vcltq_f64(q, vdupq_n_f64(0.2))), vceqq_f64(za, zb));
  const uint32x2_t good = vbic_u32(vmovn_u64(sel), *ok);
  *res = vbsl_f32(good, vcvt_f32_f64(vmulq_f64(h, vsubq_f64(one, za))), *res);  // V8's (0.5·v)·(1 + −z)
  *ok = vorr_u32(*ok, good);
}

// a[0..n) ← GELU(a[0..n)), 8 values at a time.
void cnv_gelu_neon(float* a, size_t n) {
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
    for (int g = 0; g < 4; g++) res[g] = cnv_gelu2_neon(v[g], &ok[g], &q[g], &h[g]);
    if (vminv_u32(vand_u32(vand_u32(ok[0], ok[1]), vand_u32(ok[2], ok[3]))) == 0) {
      for (int g = 0; g < 4; g++) cnv_gelu_tail_neon(q[g], h[g], &res[g], &ok[g]);
    }
    vst1q_f32(r, vcombine_f32(res[0], res[1]));
    vst1q_f32(r + 4, vcombine_f32(res[2], res[3]));
    uint32_t okv[8];
    vst1q_u32(okv, vcombine_u32(ok[0], ok[1]));
    vst1q_u32(okv + 4, vcombine_u32(ok[2], ok[3]));
    for (size_t k = 0; k < m; k++)
      if (!okv[k]) r[k] = cnv_gelu_v8(y[k]);
    std::memcpy(a + i, r, m * sizeof(float));
  }
}

// P pixels × NV vectors of output channels (avx2.cc cnv_block_avx2 with four channels per vector).
template <int NV, int P>
inline void cnv_block_neon(const float* const* base, const int32_t* off, int k, const float* wt, int coutp, const float* bias,
                           float* const* dst, int nout) {
  float lanes[8][P][NV][4];
  for (int l = 0; l < 8; l++) {
    float32x4_t acc[P][NV];
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) acc[p][v] = vdupq_n_f32(0.0f);
    for (int j = l; j < k; j += 8) {
      const float* wj = wt + static_cast<size_t>(j) * coutp;
      const int o = off[j];
      float32x4_t wv[NV];
      for (int v = 0; v < NV; v++) wv[v] = vld1q_f32(wj + 4 * v);
      for (int p = 0; p < P; p++) {
        const float xs = base[p][o];
        for (int v = 0; v < NV; v++) acc[p][v] = vaddq_f32(acc[p][v], vmulq_n_f32(wv[v], xs));
      }
    }
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) vst1q_f32(lanes[l][p][v], acc[p][v]);
  }
  for (int p = 0; p < P; p++) {
    for (int v = 0; v < NV; v++) {
      auto L = [&](int l) { return vld1q_f32(lanes[l][p][v]); };
      const float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(L(0), L(4)), vaddq_f32(L(2), L(6))), vaddq_f32(vaddq_f32(L(1), L(5)), vaddq_f32(L(3), L(7))));
      const float32x4_t y = vaddq_f32(s, vld1q_f32(bias + 4 * v));
      const int n = nout - 4 * v;
      if (n >= 4) {
        vst1q_f32(dst[p] + 4 * v, y);
      } else {
        float t[4];
        vst1q_f32(t, y);
        std::memcpy(dst[p] + 4 * v, t, sizeof(float) * n);
      }
    }
  }
}

template <int NV, int P>
void cnv_row_neon(const cnv_plan& pl, int oy, int g0) {
  const float* wt = pl.wt + g0;
  const float* bias = pl.bias + g0;
  const int nout = std::min(4 * NV, pl.cout - g0);
  cnv_row_pixels<P>(pl, oy, [&](const float* const* b, const int32_t* off, float* const* d, int n) {
    float* dg[P];
    for (int p = 0; p < n; p++) dg[p] = d[p] + g0;
    if (n == P) {
      cnv_block_neon<NV, P>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    } else {
      cnv_block_neon<NV, 1>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    }
  });
}

bool cnv_conv3x3_gelu_f32_neon(const float* x, int h, int w, int cin, const float* weight, const float* bias, int cout, int stride, float* out) {
  cnv_plan pl;
  if (!pl.init(x, h, w, cin, weight, bias, cout, stride, out, 4)) return false;
  for (int oy = 0; oy < pl.oh; oy++) {
    for (int g0 = 0; g0 < pl.coutp; g0 += 32) {  // groups of up to 8 vectors (32 channels)
      switch (std::min(8, (pl.coutp - g0) / 4)) {
        case 1: cnv_row_neon<1, 6>(pl, oy, g0); break;
        case 2: cnv_row_neon<2, 6>(pl, oy, g0); break;
        case 3: cnv_row_neon<3, 4>(pl, oy, g0); break;
        case 4: cnv_row_neon<4, 4>(pl, oy, g0); break;
        case 5: cnv_row_neon<5, 3>(pl, oy, g0); break;
        case 6: cnv_row_neon<6, 3>(pl, oy, g0); break;
        case 7: cnv_row_neon<7, 2>(pl, oy, g0); break;
        default: cnv_row_neon<8, 2>(pl, oy, g0); break;
      }
    }
    cnv_gelu_neon(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_neon = {
    cnv_conv3x3_gelu_f32_neon,
};

}  // namespace bitmar
