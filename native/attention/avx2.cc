// AVX2 attention kernels (built with -mavx2 -mfma -ffp-contract=off), bit-exact twins of scalar.cc:
// the head kernel of attend-x86.h with the AVX2 softmax, and RoPE on eight fp32 lanes.
#include <immintrin.h>

#include "activation/softmax-avx2.h"
#include "attend-x86.h"
#include "attention.h"

namespace bitmar {

namespace {

void attn_attend_f32_avx2(const attn_rows& a) { attn_attend_x86<act_softmax_rows_avx2, attn_pv_avx2>(a); }

void attn_rope_f32_avx2(const float* x, int heads, int head_dim, const float* cos, const float* sin, float* out) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; h++) {
    const float* xh = x + h * head_dim;
    float* oh = out + h * head_dim;
    int i = 0;
    for (; i + 8 <= half; i += 8) {
      const __m256 x1 = _mm256_loadu_ps(xh + i), x2 = _mm256_loadu_ps(xh + i + half);
      const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
      _mm256_storeu_ps(oh + i, _mm256_sub_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x2, s)));
      _mm256_storeu_ps(oh + i + half, _mm256_add_ps(_mm256_mul_ps(x2, c), _mm256_mul_ps(x1, s)));
    }
    for (; i < half; i++) {
      const float x1 = xh[i], x2 = xh[i + half];
      oh[i] = x1 * cos[i] - x2 * sin[i];
      oh[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

}  // namespace

extern const attn_kernel_table attn_table_avx2 = {attn_attend_f32_avx2, attn_rope_f32_avx2};

}  // namespace bitmar
