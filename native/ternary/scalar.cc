// The reference ternary kernels: plain loops over the tq2x8 layout (format.h). Every other ISA file
// must match these bit for bit, and these match src/model/kernels-ts.ts bit for bit. Built without
// FMA contraction (-ffp-contract=off, binding.gyp): each fp32 operation below rounds once.
#include <algorithm>
#include <cmath>

#include "format.h"
#include "quant-common.h"

namespace bitmar {

namespace {

float tq_quant_row_i8_scalar(const float* x, int cols, int cols_padded, int8_t* q, int32_t* qsum) {
  float a = 0.0f;
  for (int j = 0; j < cols; j++) a = std::max(a, std::fabs(x[j]));
  const float sx = tq_scale_i8(a);
  int32_t s = 0;
  for (int j = 0; j < cols; j++) {
    const int v = tq_round_clamp(x[j] / sx, -127.0f, 127.0f);
    q[j] = static_cast<int8_t>(v);
    s += v;
  }
  for (int j = cols; j < cols_padded; j++) q[j] = 0;
  *qsum = s;
  return sx;
}

void tq_minmax_f32_scalar(const float* x, size_t n, float* lo, float* hi) {
  float l = INFINITY, h = -INFINITY;
  for (size_t j = 0; j < n; j++) {
    const float v = tq_clamp_x(x[j]);
    l = std::min(l, v);
    h = std::max(h, v);
  }
  *lo = l;
  *hi = h;
}

void tq_quant_row_u8_scalar(const float* x, int cols, int cols_padded, float s, int zp, uint8_t* q, int32_t* qsum) {
  const float zpf = static_cast<float>(zp);
  int32_t sum = 0;
  for (int j = 0; j < cols; j++) {
    const int v = tq_round_clamp(tq_clamp_x(x[j]) / s + zpf, 0.0f, 255.0f);
    q[j] = static_cast<uint8_t>(v);
    sum += v;
  }
  for (int j = cols; j < cols_padded; j++) q[j] = 0;
  *qsum = sum;
}

// Σ_j c_rj · q_j over the padded row (padding contributes 0: codes and activations are both 0 there).
template <typename Q>
int32_t tq_dot_codes_scalar(const tq_matrix& w, int g, int rr, const Q* q) {
  int32_t acc = 0;
  const uint8_t* blk = w.data + static_cast<size_t>(g) * w.nblocks * kTqBlockBytes;
  for (int b = 0; b < w.nblocks; b++, blk += kTqBlockBytes) {
    for (int k = 0; k < 4; k++) {
      for (int e = 0; e < 4; e++) {
        const int c = (blk[4 * rr + e] >> (2 * k)) & 3;
        acc += c * static_cast<int32_t>(q[b * kTqBlockCols + 4 * k + e]);
      }
    }
  }
  return acc;
}

void tq_gemm_i8_scalar(const tq_matrix& w, const tq_acts_i8& a, int m, const float* bias, float* y) {
  const int cp = tq_cols_padded(w);
  for (int i = 0; i < m; i++) {
    for (int r = 0; r < w.rows; r++) {
      const int32_t acc = tq_dot_codes_scalar(w, r / kTqGroupRows, r % kTqGroupRows, a.q + static_cast<size_t>(i) * cp) - a.qsum[i];
      y[static_cast<size_t>(i) * w.rows + r] = tq_epilogue(acc, a.scale[i], bias ? bias[r] : 0.0f);
    }
  }
}

void tq_gemm_u8_scalar(const tq_matrix& w, const tq_acts_u8& a, int m, const float* bias, float* y) {
  const int cp = tq_cols_padded(w);
  for (int i = 0; i < m; i++) {
    for (int r = 0; r < w.rows; r++) {
      const int32_t acc = tq_dot_codes_scalar(w, r / kTqGroupRows, r % kTqGroupRows, a.q + static_cast<size_t>(i) * cp) -
                          a.qsum[i] - a.zp * w.row_tsum[r];
      y[static_cast<size_t>(i) * w.rows + r] = tq_epilogue(acc, a.scale, bias ? bias[r] : 0.0f);
    }
  }
}

// Lane sums p_l = Σ_{j ≡ l mod 8} x_j·w_j, then ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)) (kernels-ts.ts).
void tq_matmul_f32_scalar(const float* w, int n, int k, const float* x, int m, const float* bias, float* y) {
  for (int i = 0; i < m; i++) {
    const float* xr = x + static_cast<size_t>(i) * k;
    for (int r = 0; r < n; r++) {
      const float* wr = w + static_cast<size_t>(r) * k;
      float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int j = 0; j < k; j++) p[j & 7] = p[j & 7] + xr[j] * wr[j];
      const float s = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
      y[static_cast<size_t>(i) * n + r] = s + (bias ? bias[r] : 0.0f);
    }
  }
}

}  // namespace

extern const tq_kernel_table tq_table_scalar = {
    "scalar",
    tq_quant_row_i8_scalar,
    tq_minmax_f32_scalar,
    tq_quant_row_u8_scalar,
    tq_gemm_i8_scalar,
    tq_gemm_u8_scalar,
    tq_matmul_f32_scalar,
};

}  // namespace bitmar
