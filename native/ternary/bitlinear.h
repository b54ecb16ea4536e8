// BitLinear on a tq2x8 matrix with one ISA's table: quantise the activations, run the integer kernel,
// apply the epilogue. ISA-agnostic orchestration; the arithmetic lives in the table's functions.
#pragma once
#include "format.h"

namespace bitmar {

// Stream scheme (docs/bitmar-stream.md §2): int8 per token. x [m][cols], y [m][rows], bias [rows] or null.
void tq_bitlinear_i8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y);
// R1 scheme (bitmar-reference-spec.md §4, §12.11): uint8 per tensor over all m rows, zero point, pass-through.
void tq_bitlinear_u8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y);

}  // namespace bitmar
