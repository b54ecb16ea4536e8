// BitLinear orchestration (bitlinear.h). Scratch buffers are thread_local: each worker_thread (and
// each OS thread) gets its own, reused across calls, so nothing is allocated per call once warm.
#include "bitlinear.h"

#include <algorithm>
#include <vector>

#include "quant-common.h"

namespace bitmar {

namespace {

struct tq_scratch {
  std::vector<uint8_t> q;      // [m][cols_padded] int8 or uint8 codes
  std::vector<int32_t> qsum;   // [m]
  std::vector<float> scale;    // [m]
};

tq_scratch& tq_thread_scratch(size_t qbytes, int m) {
  thread_local tq_scratch s;
  if (s.q.size() < qbytes) s.q.resize(qbytes);
  if (s.qsum.size() < static_cast<size_t>(m)) {
    s.qsum.resize(m);
    s.scale.resize(m);
  }
  return s;
}

// max − min < 1e-8: the input passes through unquantised. Mirrors kernels-ts.ts: acc = Σ t·x in fp32,
// left to right, skipping zero weights; y = fp32(fp32(acc·s_w) + b). Rare (a constant tensor), so scalar.
void tq_passthrough(const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y) {
  for (int i = 0; i < m; i++) {
    const float* xr = x + static_cast<size_t>(i) * w.cols;
    for (int r = 0; r < w.rows; r++) {
      float acc = 0.0f;
      for (int j = 0; j < w.cols; j++) {
        const int t = tq_code_at(w, r, j) - 1;
        if (t != 0) acc = acc + static_cast<float>(t) * tq_clamp_x(xr[j]);
      }
      y[static_cast<size_t>(i) * w.rows + r] = acc * sw + (bias ? bias[r] : 0.0f);
    }
  }
}

}  // namespace

void tq_bitlinear_i8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y) {
  const int cp = tq_cols_padded(w);
  tq_scratch& s = tq_thread_scratch(static_cast<size_t>(m) * cp, m);
  int8_t* q = reinterpret_cast<int8_t*>(s.q.data());
  for (int i = 0; i < m; i++) {
    const float sx = t.quant_row_i8(x + static_cast<size_t>(i) * w.cols, w.cols, cp, q + static_cast<size_t>(i) * cp, &s.qsum[i]);
    s.scale[i] = sx * sw;  // fp32(s_x·s_w), rounded before the multiply by acc (§2)
  }
  const tq_acts_i8 a{q, s.qsum.data(), s.scale.data()};
  t.gemm_i8(w, a, m, bias, y);
}

void tq_quantize_i8(const tq_kernel_table& t, const float* x, int cols, int cols_padded, tq_token_i8* out) {
  if (out->q.size() < static_cast<size_t>(cols_padded)) out->q.resize(cols_padded);
  out->sx = t.quant_row_i8(x, cols, cols_padded, out->q.data(), &out->qsum);
  out->cols = cols;
}

void tq_gemv_i8_groups(const tq_kernel_table& t, const tq_matrix& w, float sw, const tq_token_i8& a, int g0, int g1, const float* bias, float* y) {
  // A view of row groups g0..g1−1: the same blocks and row sums, so the kernel sees a smaller matrix.
  tq_matrix v = w;
  const int r0 = g0 * kTqGroupRows;
  v.rows = std::min(g1 * kTqGroupRows, w.rows) - r0;
  v.groups = g1 - g0;
  v.data = w.data + static_cast<size_t>(g0) * w.nblocks * kTqBlockBytes;
  v.row_tsum = w.row_tsum + r0;
  const float scale = a.sx * sw;  // fp32(s_x·s_w), as tq_bitlinear_i8
  const tq_acts_i8 acts{a.q.data(), &a.qsum, &scale};
  t.gemm_i8(v, acts, 1, bias ? bias + r0 : nullptr, y + r0);
}

void tq_bitlinear_u8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y) {
  float lo, hi;
  t.minmax_f32(x, static_cast<size_t>(m) * w.cols, &lo, &hi);
  const double range = static_cast<double>(hi) - static_cast<double>(lo);  // fp64, as JS computes hi − lo
  if (range < 1e-8) {
    tq_passthrough(w, sw, x, m, bias, y);
    return;
  }
  const float sc = static_cast<float>(range / 255.0);
  // zp = clamp(rhe(fp32(−min/s)), 0, 255), clamps included (§12.11).
  const int zp = tq_round_clamp(-lo / sc, 0.0f, 255.0f);
  const int cp = tq_cols_padded(w);
  tq_scratch& s = tq_thread_scratch(static_cast<size_t>(m) * cp, m);
  for (int i = 0; i < m; i++) {
    t.quant_row_u8(x + static_cast<size_t>(i) * w.cols, w.cols, cp, sc, zp, s.q.data() + static_cast<size_t>(i) * cp, &s.qsum[i]);
  }
  const tq_acts_u8 a{s.q.data(), s.qsum.data(), zp, sc * sw};
  t.gemm_u8(w, a, m, bias, y);
}

}  // namespace bitmar
