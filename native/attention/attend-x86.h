// The x86 attention kernel shared by attention/avx2.cc and attention/avx512-vnni.cc, templated on
// the ISA's softmax and p·v (internal linkage: each file compiles its own copy with its own flags).
// Bit-exact twin of attention/scalar.cc. The q·k dot keeps the four fp64 lane sums of the reference in
// the four lanes of one register (lane j mod 4), so one vector add per four columns is the
// reference's four scalar adds; p·v accumulates per column, independent across columns, so it
// vectorises as is. Every product is of two fp32 values widened to fp64, so it is exact and a fused
// multiply-add (one rounding: the add's) gives the bits of the reference's multiply then add (built
// with -ffp-contract=off, FMA only where written: here). Head widths that are a multiple of 4 up to 64 keep the accumulators in registers
// (kU = hd/4); others take the generic loop.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <vector>

#include "attention.h"

namespace bitmar {
namespace {

// Σ lanes as the reference adds them: (s0 + s1) + (s2 + s3).
inline double attn_hsum_pd(__m256d s) {
  const __m128d p = _mm_hadd_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));  // (s0+s1, s2+s3)
  return _mm_cvtsd_f64(_mm_add_sd(p, _mm_unpackhi_pd(p, p)));
}

// Scores of one head of one query row: scores[i] = fp32(fp32(q_h·k_ih) / √hd). kU > 0: hd = 4·kU at
// compile time (q held in registers); 0: hd at run time. kK keys a step (4, or 8 with 32 registers).
template <int kU, int kK = 4>
void attn_scores_x86(const float* q, const attn_rows& a, int h, float* scores) {
  const int hd = kU > 0 ? 4 * kU : a.head_dim, d = a.heads * a.head_dim, hd4 = hd & ~3, nu = hd4 / 4;
  const double scale = std::sqrt(static_cast<double>(hd));
  constexpr int kR = kU > 0 ? kU : 1;
  __m256d qd[kR];
  if (kU > 0) for (int u = 0; u < kU; u++) qd[u] = _mm256_cvtps_pd(_mm_loadu_ps(q + 4 * u));
  auto key = [&](int i) { return a.k + static_cast<long>(a.k_rows ? a.k_rows[i] : i) * d + h * a.head_dim; };
  int i0 = 0;
  if (hd4 == hd) {
    // kK keys at a time (a multiple of 4): kK independent lane-sum chains, then one vector epilogue per
    // four keys.
    const __m256d vscale = _mm256_set1_pd(scale);
    for (; i0 + kK <= a.n_keys; i0 += kK) {
      const float* k[kK];
      __m256d s[kK];
      for (int j = 0; j < kK; j++) k[j] = key(i0 + j), s[j] = _mm256_setzero_pd();
      for (int u = 0; u < nu; u++) {
        const __m256d qv = kU > 0 ? qd[u] : _mm256_cvtps_pd(_mm_loadu_ps(q + 4 * u));
        for (int j = 0; j < kK; j++) s[j] = _mm256_fmadd_pd(qv, _mm256_cvtps_pd(_mm_loadu_ps(k[j] + 4 * u)), s[j]);
      }
      for (int j = 0; j < kK; j += 4) {
        // hadd gives (s_01, s'_01, s_23, s'_23); the two 128-bit halves line up each key's (s0+s1) and (s2+s3).
        const __m256d t01 = _mm256_hadd_pd(s[j], s[j + 1]), t23 = _mm256_hadd_pd(s[j + 2], s[j + 3]);
        const __m256d dot = _mm256_add_pd(_mm256_permute2f128_pd(t01, t23, 0x20), _mm256_permute2f128_pd(t01, t23, 0x31));
        const __m256d f = _mm256_cvtps_pd(_mm256_cvtpd_ps(dot));  // fp32(dot)
        _mm_storeu_ps(scores + i0 + j, _mm256_cvtpd_ps(_mm256_div_pd(f, vscale)));
      }
    }
  }
  for (int i = i0; i < a.n_keys; i++) {
    const float* k = key(i);
    __m256d s = _mm256_setzero_pd();
    for (int u = 0; u < nu; u++) {
      const __m256d qv = kU > 0 ? qd[u] : _mm256_cvtps_pd(_mm_loadu_ps(q + 4 * u));
      s = _mm256_fmadd_pd(qv, _mm256_cvtps_pd(_mm_loadu_ps(k + 4 * u)), s);
    }
    double dot;
    if (hd4 == hd) {
      dot = attn_hsum_pd(s);
    } else {
      alignas(32) double l[4];
      _mm256_store_pd(l, s);
      for (int j = hd4; j < hd; j++) l[0] += static_cast<double>(q[j]) * k[j];
      dot = l[0] + l[1] + (l[2] + l[3]);
    }
    scores[i] = static_cast<float>(static_cast<float>(dot) / scale);
  }
}

// out_h = fp32(Σ_i p_i·v_ih) in fp64, keys in order, four columns per register (any head width).
inline void attn_pv_avx2(const float* p, const attn_rows& a, int h, double* acc, float* out) {
  const int hd = a.head_dim, d = a.heads * hd, hd4 = hd & ~3;
  if (hd == 32) {  // the BitMar head width: the accumulators stay in registers
    __m256d s[8];
    for (auto& v : s) v = _mm256_setzero_pd();
    for (int i = 0; i < a.n_keys; i++) {
      const __m256d pv = _mm256_set1_pd(p[i]);
      const float* v = a.v + static_cast<long>(a.v_rows ? a.v_rows[i] : i) * d + h * hd;
      for (int u = 0; u < 8; u++) s[u] = _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(v + 4 * u)), s[u]);
    }
    for (int u = 0; u < 8; u++) _mm_storeu_ps(out + 4 * u, _mm256_cvtpd_ps(s[u]));
    return;
  }
  for (int j = 0; j < hd; j++) acc[j] = 0.0;
  for (int i = 0; i < a.n_keys; i++) {
    const double ps = p[i];
    const __m256d pv = _mm256_set1_pd(ps);
    const float* v = a.v + static_cast<long>(a.v_rows ? a.v_rows[i] : i) * d + h * hd;
    int j = 0;
    for (; j < hd4; j += 4) _mm256_storeu_pd(acc + j, _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(v + j)), _mm256_loadu_pd(acc + j)));
    for (; j < hd; j++) acc[j] += ps * v[j];
  }
  for (int j = 0; j < hd; j++) out[j] = static_cast<float>(acc[j]);
}

// attend_f32 for one ISA, per query row in three passes: the scores of every head, one softmax over
// all heads' rows (their sum chains interleave), then p·v per head with the ISA's `kPv`.
// kK: keys per step of the scores (attn_scores_x86).
template <void (*kSoftmaxRows)(float*, int, int), void (*kPv)(const float*, const attn_rows&, int, double*, float*), int kK = 4>
void attn_attend_x86(const attn_rows& a) {
  thread_local std::vector<float> scores;
  thread_local std::vector<double> acc;
  const size_t need = static_cast<size_t>(a.heads) * a.n_keys;
  if (scores.size() < need) scores.resize(need);
  if (acc.size() < static_cast<size_t>(a.head_dim)) acc.resize(a.head_dim);
  const int hd = a.head_dim, d = a.heads * hd;
  auto head = hd == 32 ? attn_scores_x86<8, kK> : hd == 16 ? attn_scores_x86<4, kK> : hd == 64 ? attn_scores_x86<16, kK> : hd == 8 ? attn_scores_x86<2, kK> : attn_scores_x86<0, kK>;
  for (int r = 0; r < a.mq; r++) {
    const float* q = a.q + static_cast<long>(r) * d;
    for (int h = 0; h < a.heads; h++) head(q + h * hd, a, h, scores.data() + static_cast<size_t>(h) * a.n_keys);
    kSoftmaxRows(scores.data(), a.heads, a.n_keys);
    for (int h = 0; h < a.heads; h++) kPv(scores.data() + static_cast<size_t>(h) * a.n_keys, a, h, acc.data(), a.out + static_cast<long>(r) * d + h * hd);
  }
}

}  // namespace
}  // namespace bitmar
