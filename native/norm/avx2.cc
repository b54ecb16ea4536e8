// AVX2 LayerNorm (built with -mavx2 -mfma -ffp-contract=off), bit-exact twin of scalar.cc. The two
// sums must stay left-to-right fp64 chains per row, so rows are taken four at a time with one chain
// each (four independent chains keep the adder busy); a single row (decode) takes its mean's sum in
// vector lanes when that is provably exact (nrm_sum_avx2); the elementwise affine step runs in four fp64
// lanes (fp32·fp32 and fp32 + fp64 products are exact or singly rounded exactly as in scalar code).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "norm.h"

namespace bitmar {

namespace {

// out = fp32(fp32((x − mean)·inv)·w + b) for one row.
void nrm_affine_avx2(const float* x, int d, double mean, double inv, const float* w, const float* b, float* o) {
  const __m256d vm = _mm256_set1_pd(mean), vi = _mm256_set1_pd(inv);
  int j = 0;
  for (; j + 4 <= d; j += 4) {
    const __m256d t = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)), vm), vi);
    const __m256d tf = _mm256_cvtps_pd(_mm256_cvtpd_ps(t));
    const __m256d y = _mm256_add_pd(_mm256_mul_pd(tf, _mm256_cvtps_pd(_mm_loadu_ps(w + j))), _mm256_cvtps_pd(_mm_loadu_ps(b + j)));
    _mm_storeu_ps(o + j, _mm256_cvtpd_ps(y));
  }
  for (; j < d; j++) {
    const float t = static_cast<float>((x[j] - mean) * inv);
    o[j] = static_cast<float>(static_cast<double>(t) * w[j] + b[j]);
  }
}

// Σ x[0..d) as the left-to-right fp64 chain computes it, without the chain when that is exact: with
// biased fp32 exponents e (subnormals as 1, zeros left out) in [emin, emax] and d ≤ 2^L, every value
// and every partial sum is a multiple of 2^(emin−150) below 2^(emax−126+L) in magnitude, so when
// emax − emin + L ≤ 29 each is a double, every add of the chain is exact and the sum is the exact sum,
// which eight vector lanes then compute in any order. Otherwise (or inf/NaN) the chain itself.
double nrm_sum_avx2(const float* x, int d) {
  int L = 0;
  while ((1 << L) < d) L++;
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1), none = _mm256_set1_epi32(255);
  __m256i emax = zero, emin = none;
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  int j = 0;
  for (; j + 8 <= d; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i e = _mm256_srli_epi32(_mm256_slli_epi32(bits, 1), 24);
    const __m256i isz = _mm256_cmpeq_epi32(_mm256_slli_epi32(bits, 1), zero);  // all-ones where ±0
    emax = _mm256_max_epi32(emax, e);
    emin = _mm256_min_epi32(emin, _mm256_blendv_epi8(_mm256_max_epi32(e, one), none, isz));
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  alignas(32) int32_t hi[8], lo[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(hi), emax);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lo), emin);
  int mx = 0, mn = 255;
  for (int k = 0; k < 8; k++) mx = std::max(mx, hi[k]), mn = std::min(mn, lo[k]);
  double tail = 0.0;
  for (int k = j; k < d; k++) {
    uint32_t u;
    std::memcpy(&u, x + k, 4);
    const int e = static_cast<int>((u >> 23) & 0xFF);
    if (u << 1) mx = std::max(mx, e), mn = std::min(mn, std::max(e, 1));
    tail += x[k];
  }
  if (mx < 255 && mx - mn + L <= 29) {
    alignas(32) double s[4];
    _mm256_store_pd(s, _mm256_add_pd(a0, a1));
    return ((s[0] + s[1]) + (s[2] + s[3])) + tail;
  }
  double sum = 0.0;
  for (int k = 0; k < d; k++) sum += x[k];
  return sum;
}

void nrm_layer_norm_f32_avx2(const float* x, int m, int d, const float* w, const float* b, double eps, float* out) {
  int r = 0;
  for (; r + 4 <= m; r += 4) {
    const float* x0 = x + static_cast<long>(r) * d;
    const float *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int j = 0; j < d; j++) {
      s0 += x0[j];
      s1 += x1[j];
      s2 += x2[j];
      s3 += x3[j];
    }
    const double m0 = s0 / d, m1 = s1 / d, m2 = s2 / d, m3 = s3 / d;
    double q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    for (int j = 0; j < d; j++) {
      const double t0 = x0[j] - m0, t1 = x1[j] - m1, t2 = x2[j] - m2, t3 = x3[j] - m3;
      q0 += t0 * t0;
      q1 += t1 * t1;
      q2 += t2 * t2;
      q3 += t3 * t3;
    }
    const double means[4] = {m0, m1, m2, m3};
    const double invs[4] = {1.0 / std::sqrt(q0 / d + eps), 1.0 / std::sqrt(q1 / d + eps), 1.0 / std::sqrt(q2 / d + eps),
                            1.0 / std::sqrt(q3 / d + eps)};
    for (int k = 0; k < 4; k++) nrm_affine_avx2(x0 + static_cast<long>(k) * d, d, means[k], invs[k], w, b, out + static_cast<long>(r + k) * d);
  }
  for (; r < m; r++) {
    const float* xr = x + static_cast<long>(r) * d;
    const double mean = nrm_sum_avx2(xr, d) / d;
    double ss = 0.0;
    for (int j = 0; j < d; j++) {
      const double t = xr[j] - mean;
      ss += t * t;
    }
    nrm_affine_avx2(xr, d, mean, 1.0 / std::sqrt(ss / d + eps), w, b, out + static_cast<long>(r) * d);
  }
}

}  // namespace

extern const nrm_kernel_table nrm_table_avx2 = {nrm_layer_norm_f32_avx2};

}  // namespace bitmar
