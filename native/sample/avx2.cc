// AVX2 arg-max (built with -mavx2): the max of the non-NaN values in eight lanes (vmaxps returns its
// second operand when the first is NaN), then the first index holding it. Same result as the strict
// `>` scan of scalar.cc: that scan ends on the first occurrence of the max, and ±0 compare equal.
// Measured over 50,257 logits: one pass for the max and one for the index 4.1 µs; chunk maxima then a
// search of one chunk, below, less than half of that.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "sample.h"

namespace bitmar {

namespace {

constexpr int kSmpChunk = 256;  // floats per chunk of the first pass

// Max of x[0] and the non-NaN values of x[i0..i1) (four independent running maxima).
inline float smp_chunk_max(const float* x, int i0, int i1, float init) {
  __m256 m0 = _mm256_set1_ps(init), m1 = m0, m2 = m0, m3 = m0;
  int i = i0;
  for (; i + 32 <= i1; i += 32) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
  }
  __m256 vmax = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  for (; i + 8 <= i1; i += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(x + i), vmax);
  __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(vmax, 1), _mm256_castps256_ps128(vmax));
  m4 = _mm_max_ps(_mm_movehl_ps(m4, m4), m4);
  m4 = _mm_max_ss(_mm_shuffle_ps(m4, m4, 1), m4);
  float m = _mm_cvtss_f32(m4);
  for (; i < i1; i++) if (x[i] > m) m = x[i];
  return m;
}

// Two passes: the max of every 256-value chunk (seeded with x[0], so a chunk max can equal the global
// max without the chunk holding it), then the first index equal to the global max, searching only
// the chunks whose max equals it, in order.
int smp_argmax_f32_avx2(const float* x, int n) {
  if (!(x[0] == x[0])) return 0;  // NaN first: nothing compares greater
  thread_local std::vector<float> chunk_max;
  const int chunks = (n + kSmpChunk - 1) / kSmpChunk;
  if (chunk_max.size() < static_cast<size_t>(chunks)) chunk_max.resize(chunks);
  float m = x[0];
  for (int c = 0; c < chunks; c++) {
    chunk_max[c] = smp_chunk_max(x, c * kSmpChunk, std::min(n, (c + 1) * kSmpChunk), x[0]);
    if (chunk_max[c] > m) m = chunk_max[c];
  }
  const __m256 vm = _mm256_set1_ps(m);
  for (int c = 0; c < chunks; c++) {
    if (chunk_max[c] != m) continue;
    const int i1 = std::min(n, (c + 1) * kSmpChunk);
    int i = c * kSmpChunk;
    for (; i + 8 <= i1; i += 8) {
      const int bits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vm, _CMP_EQ_OQ));
      if (bits) return i + __builtin_ctz(static_cast<unsigned>(bits));
    }
    for (; i < i1; i++) if (x[i] == m) return i;
  }
  return 0;  // unreachable: m is one of the values
}

}  // namespace

extern const smp_kernel_table smp_table_avx2 = {smp_argmax_f32_avx2};

}  // namespace bitmar
