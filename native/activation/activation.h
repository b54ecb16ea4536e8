// The activation family: GELU (tanh form) and softmax on fp32 data, computed with the fp64 steps of
// src/model/kernels-ts.ts (gelu, softmax), so every ISA gives the TypeScript bits. exp and tanh are
// the twins of V8's Math.exp / Math.tanh (v8-math.h). No Node-API here.
#pragma once
#include <cstddef>

namespace bitmar {

struct act_kernel_table {
  // x[i] ← fp32(0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))) for i < n, all in fp64 (kernels-ts.ts gelu).
  void (*gelu_f32)(float* x, size_t n);
  // x[0..n) ← softmax: max, e_i = fp32(exp(x_i − max)), s = Σ e_i in fp64 left to right, x_i = fp32(e_i / s).
  void (*softmax_f32)(float* x, int n);
  // y[i] = Math.exp(x[i]) and Math.tanh(x[i]) bit for bit (exposed for the tests).
  void (*exp_f64)(const double* x, size_t n, double* y);
  void (*tanh_f64)(const double* x, size_t n, double* y);
};

extern const act_kernel_table act_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const act_kernel_table act_table_avx2;
extern const act_kernel_table act_table_avx512vnni;
#endif

// √(2/π) as JavaScript computes Math.sqrt(2 / Math.PI) (M_PI is the same double as Math.PI).
constexpr double kActGeluC = 0.7978845608028654;

}  // namespace bitmar
