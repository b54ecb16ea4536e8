// The attention family: multi-head scaled dot-product attention of query rows over a key/value
// sequence (optionally through row-index tables, as the sink + window cache stores its rows), and
// NeoX half-split RoPE of one row. Bit-exact twins of src/model/kernels-ts.ts attention and
// RopeTable.apply (docs/bitmar-stream.md §2–§3). No Node-API here.
#pragma once
#include <cstdint>

namespace bitmar {

// One attention call: each of mq query rows attends over the same n_keys keys.
struct attn_rows {
  const float* q;          // (mq, d) query rows, d = heads·head_dim
  int mq;
  const float* k;          // key i is row k_rows[i] of k (row i when k_rows is null), width d
  const int32_t* k_rows;
  const float* v;          // value i is row v_rows[i] of v (row i when null), width d
  const int32_t* v_rows;
  int n_keys;              // ≥ 1
  int heads;
  int head_dim;
  float* out;              // (mq, d); must not overlap q, k or v
};

struct attn_kernel_table {
  // Per row and head h: s_i = fp32(fp32(q_h·k_ih) / √hd) with the dot in fp64 as four lane sums
  // (lane j mod 4, tail into lane 0, then (s0 + s1) + (s2 + s3)); p = softmax(s) (activation.h);
  // out_h = fp32(Σ_i p_i·v_ih) in fp64, keys in order.
  void (*attend_f32)(const attn_rows& a);
  // One row of `heads` heads at one position: cos/sin hold the hd/2 table values of that position;
  // out_i = fp32(x_i·c_i) − fp32(x_{i+hd/2}·s_i), out_{i+hd/2} = fp32(x_{i+hd/2}·c_i) + fp32(x_i·s_i).
  // out may alias x.
  void (*rope_f32)(const float* x, int heads, int head_dim, const float* cos, const float* sin, float* out);
};

extern const attn_kernel_table attn_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const attn_kernel_table attn_table_avx2;
extern const attn_kernel_table attn_table_avx512vnni;
#endif

}  // namespace bitmar
