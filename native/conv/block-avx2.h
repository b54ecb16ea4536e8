// The AVX2 convolution block (256-bit vectors of 8 output channels), shared by avx2.cc and
// avx512-vnni.cc (which runs it for groups wider than 16 channels: on Zen 4, where 512-bit operations
// are split in two, a 3-pixel × 4-vector block of ymm registers beats any zmm block by ~15%).
// Internal linkage; include only from files built with -mavx2 (or above).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "plan.h"

namespace bitmar {
namespace {

// P pixels × NV vectors of output channels (wt, bias and dst already at the group's channel 0):
// lane sums kept in registers one lane at a time, parked in `lanes`, reduced, plus bias, stored.
template <int NV, int P>
inline void cnv_block_avx2(const float* const* base, const int32_t* off, int k, const float* wt, int coutp, const float* bias,
                           float* const* dst, int nout) {
  alignas(32) float lanes[8][P][NV][8];
  for (int l = 0; l < 8; l++) {
    __m256 acc[P][NV];
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) acc[p][v] = _mm256_setzero_ps();
    for (int j = l; j < k; j += 8) {
      const float* wj = wt + static_cast<size_t>(j) * coutp;
      const int o = off[j];
      __m256 wv[NV];
      for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_ps(wj + 8 * v);
      for (int p = 0; p < P; p++) {
        const __m256 xb = _mm256_broadcast_ss(base[p] + o);
        for (int v = 0; v < NV; v++) acc[p][v] = _mm256_add_ps(acc[p][v], _mm256_mul_ps(xb, wv[v]));
      }
    }
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) _mm256_store_ps(lanes[l][p][v], acc[p][v]);
  }
  alignas(32) static const int32_t kMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int p = 0; p < P; p++) {
    for (int v = 0; v < NV; v++) {
      auto L = [&](int l) { return _mm256_load_ps(lanes[l][p][v]); };
      const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(L(0), L(4)), _mm256_add_ps(L(2), L(6))),
                                     _mm256_add_ps(_mm256_add_ps(L(1), L(5)), _mm256_add_ps(L(3), L(7))));
      const __m256 y = _mm256_add_ps(s, _mm256_loadu_ps(bias + 8 * v));
      const int n = nout - 8 * v;  // ≤ 0: a vector of padding channels only (avx512-vnni.cc pads cout to 16)
      if (n <= 0) break;
      if (n >= 8) {
        _mm256_storeu_ps(dst[p] + 8 * v, y);
      } else {
        _mm256_maskstore_ps(dst[p] + 8 * v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - n)), y);
      }
    }
  }
}

template <int NV, int P>
void cnv_row_avx2(const cnv_plan& pl, int oy, int g0) {
  const float* wt = pl.wt + g0;
  const float* bias = pl.bias + g0;
  const int nout = std::min(8 * NV, pl.cout - g0);
  cnv_row_pixels<P>(pl, oy, [&](const float* const* b, const int32_t* off, float* const* d, int n) {
    float* dg[P];
    for (int p = 0; p < n; p++) dg[p] = d[p] + g0;
    if (n == P) {
      cnv_block_avx2<NV, P>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    } else {
      cnv_block_avx2<NV, 1>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    }
  });
}

}  // namespace
}  // namespace bitmar
