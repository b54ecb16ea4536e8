// AVX2 convolution kernel (built with -mavx2 -mfma -ffp-contract=off), bit-exact twin of scalar.cc.
//
// Convolution: vectorised across output channels. For a run of P output pixels and up to four
// vectors of 8 output channels, lane sum l (l = 0..7) of every (pixel, channel) lives in a register
// while j runs over l, l+8, l+16, … < 9·cin: acc += x_j·w_j with vmulps then vaddps (each rounded
// like the scalar multiply and add; no FMA), x_j broadcast from the input, w_j one vector load from the
// transposed weights (plan.h). The eight lane sums are then reduced in matmulF32's tree, plus bias.
//
// GELU (on each output row once its sums are stored): activation/gelu-fast.h act_gelu_fast_avx2, the
// activation family's shared fast exact GELU.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation/gelu-fast.h"
#include "conv.h"
#include "block-avx2.h"
#include "plan.h"

namespace bitmar {

namespace {

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
    act_gelu_fast_avx2(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_avx2 = {
    cnv_conv3x3_gelu_f32_avx2,
};

}  // namespace bitmar
