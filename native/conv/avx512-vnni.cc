// AVX-512 convolution kernel of the avx512-vnni ISA (it uses AVX-512F/VL only; built with that ISA's
// flags and -ffp-contract=off), bit-exact twin of scalar.cc: avx2.cc with 16 output channels per zmm
// register for a group of 16 channels (wider groups run block-avx2.h's ymm block) and a GELU on eight
// fp64 lanes (activation/gelu-fast.h act_gelu_fast_avx512). The convolution's order is avx2.cc's.
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*() and trip a false
// -Wmaybe-uninitialized / -Wuninitialized (GCC PR 105593); nothing here reads an undefined value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation/gelu-fast.h"
#include "conv.h"
#include "block-avx2.h"
#include "plan.h"

namespace bitmar {

namespace {

template <int NV, int P>
inline void cnv_block_avx512(const float* const* base, const int32_t* off, int k, const float* wt, int coutp, const float* bias,
                             float* const* dst, int nout) {
  alignas(64) float lanes[8][P][NV][16];
  for (int l = 0; l < 8; l++) {
    __m512 acc[P][NV];
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();
    for (int j = l; j < k; j += 8) {
      const float* wj = wt + static_cast<size_t>(j) * coutp;
      const int o = off[j];
      __m512 wv[NV];
      for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(wj + 16 * v);
      for (int p = 0; p < P; p++) {
        const __m512 xb = _mm512_set1_ps(base[p][o]);
        for (int v = 0; v < NV; v++) acc[p][v] = _mm512_add_ps(acc[p][v], _mm512_mul_ps(xb, wv[v]));
      }
    }
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) _mm512_store_ps(lanes[l][p][v], acc[p][v]);
  }
  for (int p = 0; p < P; p++) {
    for (int v = 0; v < NV; v++) {
      auto L = [&](int l) { return _mm512_load_ps(lanes[l][p][v]); };
      const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(L(0), L(4)), _mm512_add_ps(L(2), L(6))),
                                     _mm512_add_ps(_mm512_add_ps(L(1), L(5)), _mm512_add_ps(L(3), L(7))));
      const int n = nout - 16 * v;
      if (n <= 0) break;
      const __mmask16 keep = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
      _mm512_mask_storeu_ps(dst[p] + 16 * v, keep, _mm512_add_ps(s, _mm512_loadu_ps(bias + 16 * v)));
    }
  }
}

template <int NV, int P>
void cnv_row_avx512(const cnv_plan& pl, int oy, int g0) {
  const float* wt = pl.wt + g0;
  const float* bias = pl.bias + g0;
  const int nout = std::min(16 * NV, pl.cout - g0);
  cnv_row_pixels<P>(pl, oy, [&](const float* const* b, const int32_t* off, float* const* d, int n) {
    float* dg[P];
    for (int p = 0; p < n; p++) dg[p] = d[p] + g0;
    if (n == P) {
      cnv_block_avx512<NV, P>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    } else {
      cnv_block_avx512<NV, 1>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    }
  });
}

bool cnv_conv3x3_gelu_f32_avx512(const float* x, int h, int w, int cin, const float* weight, const float* bias, int cout, int stride, float* out) {
  cnv_plan pl;
  if (!pl.init(x, h, w, cin, weight, bias, cout, stride, out, 16)) return false;
  for (int oy = 0; oy < pl.oh; oy++) {
    for (int g0 = 0; g0 < pl.coutp; g0 += 32) {  // groups of 32 channels, the last one 16 or 32
      if (pl.coutp - g0 >= 32) {
        cnv_row_avx2<4, 3>(pl, oy, g0);  // ymm: faster than any zmm block on Zen 4 (block-avx2.h)
      } else {
        cnv_row_avx512<1, 12>(pl, oy, g0);
      }
    }
    act_gelu_fast_avx512(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_avx512vnni = {
    cnv_conv3x3_gelu_f32_avx512,
};

}  // namespace bitmar
