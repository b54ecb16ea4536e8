// BitLinear on a tq2x8 matrix with one ISA's table: quantise the activations, run the integer kernel,
// apply the epilogue. ISA-agnostic orchestration; the arithmetic lives in the table's functions.
#pragma once
#include <vector>

#include "format.h"

namespace bitmar {

class thread_pool;  // thread-pool.h

// Stream scheme (docs/bitmar-stream.md §2): int8 per token. x [m][cols], y [m][rows], bias [rows] or null.
// With a multi-threaded pool, calls of at least kTqParallelMacs multiply-adds split the tokens (in
// tiles of 4) or, when there are too few, the row groups across threads: the same bits for any count.
void tq_bitlinear_i8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y,
                     thread_pool* pool = nullptr);
// R1 scheme (bitmar-reference-spec.md §4, §12.11): uint8 per tensor over all m rows, zero point, pass-through.
void tq_bitlinear_u8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y,
                     thread_pool* pool = nullptr);
// t.matmul_f32, split over tokens (or, for m = 1, output rows) across the pool's threads when large.
void tq_matmul_f32(const tq_kernel_table& t, const float* w, int n, int k, const float* x, int m, const float* bias, float* y,
                   thread_pool* pool = nullptr);
// Below this many multiply-adds per call the work stays on the calling thread (a hand-off costs µs).
constexpr long long kTqParallelMacs = 1LL << 20;

// One token's int8 activations (stream scheme), quantised once for several matrices with `cols`
// columns (the decoder step: Q, K and V of one LayerNorm output; the output layer in row chunks).
struct tq_token_i8 {
  std::vector<int8_t> q;  // cols_padded, zero padded
  int32_t qsum = 0;
  float sx = 0;
  int cols = 0;
};
void tq_quantize_i8(const tq_kernel_table& t, const float* x, int cols, int cols_padded, tq_token_i8* out);
// y[r] for rows r in [8·g0, min(8·g1, rows)) of the BitLinear of a token from tq_quantize_i8 (whose
// cols must be w.cols); y and bias are indexed by the full row number. Same bits as tq_bitlinear_i8.
void tq_gemv_i8_groups(const tq_kernel_table& t, const tq_matrix& w, float sw, const tq_token_i8& a, int g0, int g1, const float* bias, float* y);

}  // namespace bitmar
