// x86 pieces shared by avx2.cc and avx512-vnni.cc. Everything here has internal linkage (anonymous
// namespace): each ISA file compiles its own copy with its own -m flags, so the linker can never hand
// the AVX-512 copy to the AVX2 path (an ODR merge of differently-flagged inline functions would).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "format.h"

namespace bitmar {
namespace {

inline __m256i tq_bcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline float tq_hmax_ps(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline int32_t tq_hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// y[r0..r0+n) = fp32(fp32(acc·scale) + b); acc already corrected. Vector form only when all 8 rows are
// real (no reads past bias/y) and int32 → fp32 is exact (format.h, tq_acc_exact_f32).
inline void tq_store_x86(__m256i acc, float scale, const float* bias, float* y, int n, bool exact) {
  if (n == kTqGroupRows && exact) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(scale));
    f = _mm256_add_ps(f, bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps());
    _mm256_storeu_ps(y, f);
    return;
  }
  alignas(32) int32_t a[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(a), acc);
  for (int r = 0; r < n; r++) y[r] = tq_epilogue(a[r], scale, bias ? bias[r] : 0.0f);
}

// Where a kernel reads the broadcast activation quad k of block b of token t (tokens of one tile).
// tq_act_bcast broadcasts from q with vpbroadcastd; tq_act_pre reads a buffer where every quad is
// already repeated over 32 bytes, so the kernel takes it as a memory operand: on Zen 4 that saves a
// vector-ALU op per quad, at 8 bytes per activation (measured interleaved on Zen 4: +2–8% at M = 1,
// +10–20% at M = 4 on 512–1024 columns).
struct tq_act_bcast {
  const uint8_t* q[4];
  __m256i get(int t, int b, int k) const { return tq_bcast4(q[t] + b * kTqBlockCols + 4 * k); }
};
struct tq_act_pre {
  const __m256i* q[4];
  __m256i get(int t, int b, int k) const { return _mm256_load_si256(q[t] + 4 * b + k); }
};

// Pre-broadcast buffers up to this size (L1-resident: larger ones measured slower than broadcasting on
// the fly, e.g. 1024 cols × 16 tokens = 128 KB: 101 vs 136 GMAC/s).
constexpr size_t kTqPreBytes = 32 * 1024;

// This thread's pre-broadcast buffer of at least `n` vectors (grown, never shrunk; freed at thread exit).
inline __m256i* tq_pre_buffer(size_t n) {
  struct holder {
    __m256i* p = nullptr;
    size_t n = 0;
    ~holder() { std::free(p); }
  };
  thread_local holder h;
  if (h.n < n) {
    std::free(h.p);
    h.p = static_cast<__m256i*>(std::aligned_alloc(32, n * sizeof(__m256i)));
    h.n = h.p ? n : 0;
  }
  return h.p;
}

// Shared driver: per row group, tokens in tiles of up to 4; `tile(t0)` gives the activation source of
// the tile starting at token t0, `correct(t, g, s32)` turns Σ c·q into the signed accumulator and
// `scale(t)` gives fp32(s_x·s_w) of token t.
template <typename Dot, typename Tile, typename Correct, typename Scale>
void tq_gemm_x86_tiles(const tq_matrix& w, int m, const float* bias, float* y, bool exact, Tile tile, Correct correct, Scale scale) {
  const size_t gbytes = static_cast<size_t>(w.nblocks) * kTqBlockBytes;
  if (m == 1) {
    // One token (decode): the activation source and scale are loop invariants; only full groups take
    // the vector store, so the loop body is the dot and five epilogue instructions (measured with
    // callgrind on 50,257×128: 249 → ~170 instructions per 8-row group).
    const auto act = tile(0);
    const float sc = scale(0);
    const int full = exact ? w.rows / kTqGroupRows : 0;
    const uint8_t* blk = w.data;
    int g = 0;
    for (; g < full; g++, blk += gbytes) {
      const __m256i s = correct(0, g, Dot::dot1(blk, w.nblocks, act));
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(sc));
      if (bias) f = _mm256_add_ps(f, _mm256_loadu_ps(bias + g * kTqGroupRows));
      else f = _mm256_add_ps(f, _mm256_setzero_ps());
      _mm256_storeu_ps(y + g * kTqGroupRows, f);
    }
    for (; g < w.groups; g++, blk += gbytes) {
      const int r0 = g * kTqGroupRows, n = std::min(kTqGroupRows, w.rows - r0);
      tq_store_x86(correct(0, g, Dot::dot1(blk, w.nblocks, act)), sc, bias ? bias + r0 : nullptr, y + r0, n, exact);
    }
    return;
  }
  for (int g = 0; g < w.groups; g++) {
    const uint8_t* blk = w.data + g * gbytes;
    const int r0 = g * kTqGroupRows, n = std::min(kTqGroupRows, w.rows - r0);
    const float* bg = bias ? bias + r0 : nullptr;
    for (int t0 = 0; t0 < m; t0 += 4) {
      const int mt = std::min(4, m - t0);
      const auto act = tile(t0);
      __m256i s[4];
      switch (mt) {
        case 1: s[0] = Dot::dot1(blk, w.nblocks, act); break;
        case 2: Dot::template dotn<2>(blk, w.nblocks, act, s); break;
        case 3: Dot::template dotn<3>(blk, w.nblocks, act, s); break;
        default: Dot::template dotn<4>(blk, w.nblocks, act, s); break;
      }
      for (int t = 0; t < mt; t++) {
        tq_store_x86(correct(t0 + t, g, s[t]), scale(t0 + t), bg, y + static_cast<size_t>(t0 + t) * w.rows + r0, n, exact);
      }
    }
  }
}

// Picks the activation source: pre-broadcast when the buffer fits kTqPreBytes, else on-the-fly broadcasts.
template <typename Dot, typename Correct, typename Scale>
void tq_gemm_x86(const tq_matrix& w, const uint8_t* q, int m, const float* bias, float* y, bool exact, Correct correct, Scale scale) {
  const size_t cp = static_cast<size_t>(tq_cols_padded(w)), nq = cp / 4;
  __m256i* pre = nq * m * sizeof(__m256i) <= kTqPreBytes ? tq_pre_buffer(nq * m) : nullptr;
  if (pre) {
    for (size_t i = 0; i < nq * m; i++) pre[i] = tq_bcast4(q + 4 * i);
    auto tile = [&](int t0) {
      tq_act_pre a{};
      for (int t = 0; t < 4 && t0 + t < m; t++) a.q[t] = pre + (t0 + t) * nq;
      return a;
    };
    tq_gemm_x86_tiles<Dot>(w, m, bias, y, exact, tile, correct, scale);
  } else {
    auto tile = [&](int t0) {
      tq_act_bcast a{};
      for (int t = 0; t < 4 && t0 + t < m; t++) a.q[t] = q + (t0 + t) * cp;
      return a;
    };
    tq_gemm_x86_tiles<Dot>(w, m, bias, y, exact, tile, correct, scale);
  }
}

}  // namespace
}  // namespace bitmar
