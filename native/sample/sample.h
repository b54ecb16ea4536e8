// The sampling family: greedy arg-max over logits, the twin of src/model/kernels-ts.ts argmax
// (torch.argmax: the first index of the largest value; NaN is skipped, a NaN at index 0 wins).
// No Node-API here.
#pragma once

namespace bitmar {

struct smp_kernel_table {
  // First i < n with x[i] equal to the max of the non-NaN values (0 when x[0] is NaN); n ≥ 1.
  int (*argmax_f32)(const float* x, int n);
};

extern const smp_kernel_table smp_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const smp_kernel_table smp_table_avx2;
#endif

}  // namespace bitmar
