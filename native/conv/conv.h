// The convolution family: the convolutional stem's 3×3 convolution with its GELU fused
// (docs/bitmar-stream.md §3 "Convolutional stem"), the twin of kernels-ts.ts conv3x3Gelu, which is
// im2col + matmulF32 + gelu. Direct convolution (no im2col buffer), but every output is summed in
// matmulF32's order over its im2col row j = (ky·3 + kx)·cin + c: eight lane sums p_l over j ≡ l mod 8
// in increasing j, each product and add rounded to fp32 (no fused multiply-add), then
// ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)), then + bias; pixels outside the image contribute +0
// products exactly as im2col's zeros do. GELU: activation.h's fp64 tanh form, one rounding. So every
// ISA gives the TypeScript bits. No Node-API here.
#pragma once

namespace bitmar {

struct cnv_kernel_table {
  // out[OH][OW][cout] = GELU(conv3x3(x [h][w][cin] HWC; wt [cout][9·cin] rows in (ky, kx, c) order,
  // bias [cout] or null (+0), stride, zero padding 1)), OH = ⌊(h−1)/stride⌋ + 1, OW likewise.
  // h, w, cin, cout, stride ≥ 1; out must not overlap x. Returns false (out untouched) when scratch
  // memory runs out.
  bool (*conv3x3_gelu_f32)(const float* x, int h, int w, int cin, const float* wt, const float* bias, int cout, int stride, float* out);
};

extern const cnv_kernel_table cnv_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const cnv_kernel_table cnv_table_avx2;
extern const cnv_kernel_table cnv_table_avx512vnni;
#endif
#if defined(__aarch64__)
extern const cnv_kernel_table cnv_table_neon;
#endif

// Output side of a 3×3, padding-1 convolution with this stride over n pixels (conv.ts conv3x3OutSize).
inline int cnv_out_size(int n, int stride) { return (n - 1) / stride + 1; }

}  // namespace bitmar
