// The normalisation family: LayerNorm over rows (docs/bitmar-stream.md §2: biased variance, eps,
// affine), computed with the fp64 steps of src/model/kernels-ts.ts layerNorm so every ISA gives the
// TypeScript bits. No Node-API here.
#pragma once

namespace bitmar {

struct nrm_kernel_table {
  // For each of m rows of width d: mean = (Σ x in fp64, left to right) / d; var = (Σ (x − mean)² in
  // fp64, left to right) / d; inv = 1 / √(var + eps); out = fp32(fp32((x − mean)·inv)·w + b).
  // out may alias x.
  void (*layer_norm_f32)(const float* x, int m, int d, const float* w, const float* b, double eps, float* out);
};

extern const nrm_kernel_table nrm_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const nrm_kernel_table nrm_table_avx2;
#endif

}  // namespace bitmar
