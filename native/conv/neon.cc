// NEON convolution kernel of the aarch64 ISA (plain Advanced SIMD: the neon-dotprod build compiles it,
// nothing here needs dotprod; -ffp-contract=off, so no vmul/vadd pair becomes an FMLA), bit-exact twin
// of scalar.cc: avx2.cc with 4 output channels per q register and up to 8 registers (32 channels) per
// group, vmulq_n_f32 (the lane product x·w) then vaddq_f32 per element. The GELU is activation/gelu-fast.h
// act_gelu_fast_neon.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "activation/gelu-fast.h"
#include "conv.h"
#include "plan.h"

namespace bitmar {

namespace {

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
    act_gelu_fast_neon(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_neon = {
    cnv_conv3x3_gelu_f32_neon,
};

}  // namespace bitmar
