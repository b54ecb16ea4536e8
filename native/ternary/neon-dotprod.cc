// NEON + dotprod ternary kernels (aarch64, -march=armv8.2-a+dotprod; used only when HWCAP_ASIMDDP is
// set). Bit-exact twins of scalar.cc. A tq2x8 block (format.h) is two 16-byte halves (rows 0–3 and
// 4–7); sdot/udot add the four byte products a row owns in a 32-bit lane, so each half yields four
// row sums with no horizontal step. Codes c ∈ {0,1,2} against s8 q (i8 scheme, sdot) or u8 q (u8
// scheme, udot); |Σ| ≤ 2·255·cols < 2^31 (cols ≤ kTqMaxCols), so int32 lanes never overflow.
// Quantisers and the fp32 matmul come from the scalar table (null entries, dispatch.cc).
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "format.h"

namespace bitmar {

namespace {

inline uint8x16_t tq_bcast4_neon(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_u8_u32(vdupq_n_u32(v));
}

template <bool kU8>
inline int32x4_t tq_dot_neon(int32x4_t acc, uint8x16_t codes, uint8x16_t act) {
  if (kU8) return vreinterpretq_s32_u32(vdotq_u32(vreinterpretq_u32_s32(acc), codes, act));
  return vdotq_s32(acc, vreinterpretq_s8_u8(codes), vreinterpretq_s8_u8(act));
}

// One half-block (4 rows × 16 columns) into four accumulators, one per activation quad k.
template <bool kU8>
inline void tq_half_neon(uint8x16_t x, const uint8x16_t* a, int32x4_t* s) {
  const uint8x16_t m3 = vdupq_n_u8(3);
  s[0] = tq_dot_neon<kU8>(s[0], vandq_u8(x, m3), a[0]);
  s[1] = tq_dot_neon<kU8>(s[1], vandq_u8(vshrq_n_u8(x, 2), m3), a[1]);
  s[2] = tq_dot_neon<kU8>(s[2], vandq_u8(vshrq_n_u8(x, 4), m3), a[2]);
  s[3] = tq_dot_neon<kU8>(s[3], vshrq_n_u8(x, 6), a[3]);
}

// Σ c·q of the 8 rows of group `blk` for one token: rows 0–3 in lo, 4–7 in hi.
template <bool kU8>
inline void tq_group_dot_neon(const uint8_t* blk, int nblocks, const uint8_t* q, int32x4_t* lo, int32x4_t* hi) {
  int32x4_t sl[4], sh[4];
  for (int k = 0; k < 4; k++) sl[k] = sh[k] = vdupq_n_s32(0);
  for (int b = 0; b < nblocks; b++) {
    const uint8_t* qb = q + b * kTqBlockCols;
    const uint8x16_t a[4] = {tq_bcast4_neon(qb), tq_bcast4_neon(qb + 4), tq_bcast4_neon(qb + 8), tq_bcast4_neon(qb + 12)};
    tq_half_neon<kU8>(vld1q_u8(blk + b * kTqBlockBytes), a, sl);
    tq_half_neon<kU8>(vld1q_u8(blk + b * kTqBlockBytes + 16), a, sh);
  }
  *lo = vaddq_s32(vaddq_s32(sl[0], sl[1]), vaddq_s32(sl[2], sl[3]));
  *hi = vaddq_s32(vaddq_s32(sh[0], sh[1]), vaddq_s32(sh[2], sh[3]));
}

// fp32(fp32(acc·scale) + b) for n ≤ 4 rows; vector form only when int32 → fp32 is exact and all 4 rows are real.
inline void tq_store_neon(int32x4_t acc, float scale, const float* bias, float* y, int n, bool exact) {
  if (n == 4 && exact) {
    float32x4_t f = vmulq_n_f32(vcvtq_f32_s32(acc), scale);  // -ffp-contract=off: no fmla
    f = vaddq_f32(f, bias ? vld1q_f32(bias) : vdupq_n_f32(0.0f));
    vst1q_f32(y, f);
    return;
  }
  int32_t a[4];
  vst1q_s32(a, acc);
  for (int r = 0; r < n; r++) y[r] = tq_epilogue(a[r], scale, bias ? bias[r] : 0.0f);
}

template <bool kU8, typename Correct, typename Scale>
void tq_gemm_neon(const tq_matrix& w, const uint8_t* q, int m, const float* bias, float* y, bool exact, Correct correct, Scale scale) {
  const int cp = tq_cols_padded(w);
  const size_t gbytes = static_cast<size_t>(w.nblocks) * kTqBlockBytes;
  for (int g = 0; g < w.groups; g++) {
    const int r0 = g * kTqGroupRows, n = std::min(kTqGroupRows, w.rows - r0);
    for (int t = 0; t < m; t++) {
      int32x4_t lo, hi;
      tq_group_dot_neon<kU8>(w.data + g * gbytes, w.nblocks, q + static_cast<size_t>(t) * cp, &lo, &hi);
      float* yr = y + static_cast<size_t>(t) * w.rows + r0;
      const float* br = bias ? bias + r0 : nullptr;
      tq_store_neon(correct(t, r0, lo), scale(t), br, yr, std::min(n, 4), exact);
      if (n > 4) tq_store_neon(correct(t, r0 + 4, hi), scale(t), br ? br + 4 : nullptr, yr + 4, n - 4, exact);
    }
  }
}

void tq_gemm_i8_neon_dotprod(const tq_matrix& w, const tq_acts_i8& a, int m, const float* bias, float* y) {
  auto correct = [&](int t, int, int32x4_t s) { return vsubq_s32(s, vdupq_n_s32(a.qsum[t])); };
  auto scale = [&](int t) { return a.scale[t]; };
  tq_gemm_neon<false>(w, reinterpret_cast<const uint8_t*>(a.q), m, bias, y, tq_acc_exact_f32(w.cols, 127), correct, scale);
}

void tq_gemm_u8_neon_dotprod(const tq_matrix& w, const tq_acts_u8& a, int m, const float* bias, float* y) {
  auto correct = [&](int t, int r, int32x4_t s) {
    const int32x4_t zt = vmulq_n_s32(vld1q_s32(w.row_tsum + r), a.zp);  // row_tsum is padded to groups·8
    return vsubq_s32(vsubq_s32(s, vdupq_n_s32(a.qsum[t])), zt);
  };
  auto scale = [&](int) { return a.scale; };
  tq_gemm_neon<true>(w, a.q, m, bias, y, tq_acc_exact_f32(w.cols, 255), correct, scale);
}

}  // namespace

extern const tq_kernel_table tq_table_neon_dotprod = {
    "neon-dotprod",
    nullptr,  // quantisers: scalar
    nullptr,
    nullptr,
    tq_gemm_i8_neon_dotprod,
    tq_gemm_u8_neon_dotprod,
    nullptr,  // matmul_f32: scalar
};

}  // namespace bitmar
