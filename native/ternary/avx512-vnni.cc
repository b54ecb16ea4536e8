// AVX-512 VNNI ternary kernels on 256-bit registers (AVX512VL: vpdpbusd ymm, and 32 vector registers).
// Built with -mavx512f -mavx512vl -mavx512bw -mavx512vnni; used only when cpuid reports all of them.
// Bit-exact twins of scalar.cc. vpdpbusd(u8, s8) adds the four byte products a row owns in a lane
// straight into its int32 lane (tq2x8, format.h): no int16 stage, so no overflow windows
// (|Σ| ≤ 4·2·255·cols < 2^31 for cols ≤ kTqMaxCols, even with the 4× pre-shifted codes below).
// Activation quantisers and the fp32 matmul come from the AVX2 table (null entries, dispatch.cc).
#include <immintrin.h>

#include "format.h"
#include "x86-common.h"

namespace bitmar {

namespace {

// i8 scheme: codes unsigned, q signed; u8 scheme: q unsigned, codes signed (c ≤ 8 fits s8).
template <bool kU8>
inline __m256i tq_dpbusd(__m256i acc, __m256i codes, __m256i act) {
  return kU8 ? _mm256_dpbusd_epi32(acc, act, codes) : _mm256_dpbusd_epi32(acc, codes, act);
}

// One block into four accumulators, one per activation quad k. Quads 1 and 3 use mask 0x0C without a
// shift (codes 4c): their sums are multiples of 4 and are shifted back once at the end (exact).
template <bool kU8, typename Act>
inline void tq_block_vnni(const uint8_t* blk, const Act& act, int b, __m256i* s) {
  const __m256i m3 = _mm256_set1_epi8(3), mc = _mm256_set1_epi8(12);
  const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + b * kTqBlockBytes));
  const __m256i h = _mm256_srli_epi16(x, 4);
  s[0] = tq_dpbusd<kU8>(s[0], _mm256_and_si256(x, m3), act.get(0, b, 0));
  s[1] = tq_dpbusd<kU8>(s[1], _mm256_and_si256(x, mc), act.get(0, b, 1));
  s[2] = tq_dpbusd<kU8>(s[2], _mm256_and_si256(h, m3), act.get(0, b, 2));
  s[3] = tq_dpbusd<kU8>(s[3], _mm256_and_si256(h, mc), act.get(0, b, 3));
}

inline __m256i tq_combine_vnni(const __m256i* s) {
  return _mm256_add_epi32(_mm256_add_epi32(s[0], s[2]), _mm256_srai_epi32(_mm256_add_epi32(s[1], s[3]), 2));
}

template <bool kU8>
struct tq_dot_vnni {
  // One token: even and odd blocks feed separate accumulators, so each vpdpbusd chain waits on its
  // own result only every other block (latency 4–5 cycles vs ~2.5 cycles of issue per block).
  // 64- and 128-wide rows (4 and 8 blocks, the output layer) get a fully unrolled copy: measured
  // 74 → 96 GMAC/s on 50,257×128.
  template <int NB, typename Act>
  static __m256i dot1_fixed(const uint8_t* blk, const Act& act) {
    __m256i s[8];
    for (auto& v : s) v = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int b = 0; b < NB; b++) tq_block_vnni<kU8>(blk, act, b, s + 4 * (b & 1));
    return _mm256_add_epi32(tq_combine_vnni(s), tq_combine_vnni(s + 4));
  }
  template <typename Act>
  static __m256i dot1(const uint8_t* blk, int nblocks, const Act& act) {
    if (nblocks == 8) return dot1_fixed<8>(blk, act);
    if (nblocks == 4) return dot1_fixed<4>(blk, act);
    __m256i s[8];
    for (auto& v : s) v = _mm256_setzero_si256();
    int b = 0;
    for (; b + 2 <= nblocks; b += 2) {
      tq_block_vnni<kU8>(blk, act, b, s);
      tq_block_vnni<kU8>(blk, act, b + 1, s + 4);
    }
    if (b < nblocks) tq_block_vnni<kU8>(blk, act, b, s);
    return _mm256_add_epi32(tq_combine_vnni(s), tq_combine_vnni(s + 4));
  }
  // kMt tokens share each decoded block.
  template <int kMt, typename Act>
  static void dotn(const uint8_t* blk, int nblocks, const Act& act, __m256i* out) {
    const __m256i m3 = _mm256_set1_epi8(3), mc = _mm256_set1_epi8(12);
    __m256i s[kMt][4];
    for (int t = 0; t < kMt; t++)
      for (auto& v : s[t]) v = _mm256_setzero_si256();
    for (int b = 0; b < nblocks; b++) {
      const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + b * kTqBlockBytes));
      const __m256i h = _mm256_srli_epi16(x, 4);
      const __m256i g0 = _mm256_and_si256(x, m3), g1 = _mm256_and_si256(x, mc);
      const __m256i g2 = _mm256_and_si256(h, m3), g3 = _mm256_and_si256(h, mc);
      for (int t = 0; t < kMt; t++) {
        s[t][0] = tq_dpbusd<kU8>(s[t][0], g0, act.get(t, b, 0));
        s[t][1] = tq_dpbusd<kU8>(s[t][1], g1, act.get(t, b, 1));
        s[t][2] = tq_dpbusd<kU8>(s[t][2], g2, act.get(t, b, 2));
        s[t][3] = tq_dpbusd<kU8>(s[t][3], g3, act.get(t, b, 3));
      }
    }
    for (int t = 0; t < kMt; t++) out[t] = tq_combine_vnni(s[t]);
  }
};

void tq_gemm_i8_avx512vnni(const tq_matrix& w, const tq_acts_i8& a, int m, const float* bias, float* y) {
  auto correct = [&](int t, int, __m256i s) { return _mm256_sub_epi32(s, _mm256_set1_epi32(a.qsum[t])); };
  auto scale = [&](int t) { return a.scale[t]; };
  tq_gemm_x86<tq_dot_vnni<false>>(w, reinterpret_cast<const uint8_t*>(a.q), m, bias, y, tq_acc_exact_f32(w.cols, 127), correct, scale);
}

void tq_gemm_u8_avx512vnni(const tq_matrix& w, const tq_acts_u8& a, int m, const float* bias, float* y) {
  const __m256i zp = _mm256_set1_epi32(a.zp);
  auto correct = [&](int t, int g, __m256i s) {
    const __m256i tsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.row_tsum + g * kTqGroupRows));
    return _mm256_sub_epi32(_mm256_sub_epi32(s, _mm256_set1_epi32(a.qsum[t])), _mm256_mullo_epi32(zp, tsum));
  };
  auto scale = [&](int) { return a.scale; };
  tq_gemm_x86<tq_dot_vnni<true>>(w, a.q, m, bias, y, tq_acc_exact_f32(w.cols, 255), correct, scale);
}

}  // namespace

extern const tq_kernel_table tq_table_avx512vnni = {
    "avx512-vnni",
    nullptr,  // quantisers: AVX2's
    nullptr,
    nullptr,
    tq_gemm_i8_avx512vnni,
    tq_gemm_u8_avx512vnni,
    nullptr,  // matmul_f32: AVX2's
};

}  // namespace bitmar
