// AVX-512 attention kernels of the avx512-vnni ISA (AVX-512F/VL only, with that ISA's flags): the
// attention of attend-x86.h with the eight-lane softmax and p·v, and RoPE on sixteen fp32 lanes.
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*() and trip a false
// -Wmaybe-uninitialized / -Wuninitialized (GCC PR 105593); nothing here reads an undefined value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "activation/softmax-avx512.h"
#include "attend-x86.h"
#include "attention.h"

namespace bitmar {

namespace {

// p·v with eight fp64 columns per register (each lane still adds p_i·v_ij in key order).
void attn_pv_avx512(const float* p, const attn_rows& a, int h, double* acc, float* out) {
  const int hd = a.head_dim, d = a.heads * hd;
  if (hd != 32) {
    attn_pv_avx2(p, a, h, acc, out);
    return;
  }
  __m512d s[4];
  for (auto& v : s) v = _mm512_setzero_pd();
  for (int i = 0; i < a.n_keys; i++) {
    const __m512d pv = _mm512_set1_pd(p[i]);
    const float* v = a.v + static_cast<long>(a.v_rows ? a.v_rows[i] : i) * d + h * hd;
    for (int u = 0; u < 4; u++) s[u] = _mm512_fmadd_pd(pv, _mm512_cvtps_pd(_mm256_loadu_ps(v + 8 * u)), s[u]);  // exact product: attend-x86.h
  }
  for (int u = 0; u < 4; u++) _mm256_storeu_ps(out + 8 * u, _mm512_cvtpd_ps(s[u]));
}

void attn_attend_f32_avx512(const attn_rows& a) { attn_attend_x86<act_softmax_rows_avx512, attn_pv_avx512, 8>(a); }

// RoPE with sixteen fp32 lanes (a half head of the BitMar width in one register); same operations.
void attn_rope_f32_avx512(const float* x, int heads, int head_dim, const float* cos, const float* sin, float* out) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; h++) {
    const float* xh = x + h * head_dim;
    float* oh = out + h * head_dim;
    int i = 0;
    for (; i + 16 <= half; i += 16) {
      const __m512 x1 = _mm512_loadu_ps(xh + i), x2 = _mm512_loadu_ps(xh + i + half);
      const __m512 c = _mm512_loadu_ps(cos + i), s = _mm512_loadu_ps(sin + i);
      _mm512_storeu_ps(oh + i, _mm512_sub_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x2, s)));
      _mm512_storeu_ps(oh + i + half, _mm512_add_ps(_mm512_mul_ps(x2, c), _mm512_mul_ps(x1, s)));
    }
    if (i < half) {  // a tail shorter than 16 (masked stores are slow on Zen 4: only here)
      const __mmask16 k = static_cast<__mmask16>((1u << (half - i)) - 1u);
      const __m512 x1 = _mm512_maskz_loadu_ps(k, xh + i), x2 = _mm512_maskz_loadu_ps(k, xh + i + half);
      const __m512 c = _mm512_maskz_loadu_ps(k, cos + i), s = _mm512_maskz_loadu_ps(k, sin + i);
      _mm512_mask_storeu_ps(oh + i, k, _mm512_sub_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x2, s)));
      _mm512_mask_storeu_ps(oh + i + half, k, _mm512_add_ps(_mm512_mul_ps(x2, c), _mm512_mul_ps(x1, s)));
    }
  }
}

}  // namespace

extern const attn_kernel_table attn_table_avx512vnni = {attn_attend_f32_avx512, attn_rope_f32_avx512};

}  // namespace bitmar
