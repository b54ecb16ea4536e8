// The reference attention kernels: plain loops in the order of src/model/kernels-ts.ts attention
// and RopeTable.apply. Scratch (scores, fp64 accumulators) is thread_local, grown once.
#include <cmath>
#include <vector>

#include "activation/activation.h"
#include "attention.h"

namespace bitmar {

namespace {

void attn_attend_f32_scalar(const attn_rows& a) {
  thread_local std::vector<float> scores;
  thread_local std::vector<double> acc;
  if (scores.size() < static_cast<size_t>(a.n_keys)) scores.resize(a.n_keys);
  if (acc.size() < static_cast<size_t>(a.head_dim)) acc.resize(a.head_dim);
  const int hd = a.head_dim, d = a.heads * hd, hd4 = hd & ~3;
  const double scale = std::sqrt(static_cast<double>(hd));
  for (int r = 0; r < a.mq; r++) {
    for (int h = 0; h < a.heads; h++) {
      const float* q = a.q + static_cast<long>(r) * d + h * hd;
      for (int i = 0; i < a.n_keys; i++) {
        const float* k = a.k + static_cast<long>(a.k_rows ? a.k_rows[i] : i) * d + h * hd;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int j = 0;
        for (; j < hd4; j += 4) {
          s0 += static_cast<double>(q[j]) * k[j];
          s1 += static_cast<double>(q[j + 1]) * k[j + 1];
          s2 += static_cast<double>(q[j + 2]) * k[j + 2];
          s3 += static_cast<double>(q[j + 3]) * k[j + 3];
        }
        for (; j < hd; j++) s0 += static_cast<double>(q[j]) * k[j];
        scores[i] = static_cast<float>(static_cast<float>(s0 + s1 + (s2 + s3)) / scale);
      }
      act_table_scalar.softmax_f32(scores.data(), a.n_keys);
      for (int j = 0; j < hd; j++) acc[j] = 0.0;
      for (int i = 0; i < a.n_keys; i++) {
        const double p = scores[i];
        const float* v = a.v + static_cast<long>(a.v_rows ? a.v_rows[i] : i) * d + h * hd;
        for (int j = 0; j < hd; j++) acc[j] += p * v[j];
      }
      float* o = a.out + static_cast<long>(r) * d + h * hd;
      for (int j = 0; j < hd; j++) o[j] = static_cast<float>(acc[j]);
    }
  }
}

void attn_rope_f32_scalar(const float* x, int heads, int head_dim, const float* cos, const float* sin, float* out) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; h++) {
    const int o = h * head_dim;
    for (int i = 0; i < half; i++) {
      const float x1 = x[o + i], x2 = x[o + i + half];
      out[o + i] = x1 * cos[i] - x2 * sin[i];
      out[o + i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

}  // namespace

extern const attn_kernel_table attn_table_scalar = {attn_attend_f32_scalar, attn_rope_f32_scalar};

}  // namespace bitmar
