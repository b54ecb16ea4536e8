// The ISA-free part of the row softmax that softmax-avx2.h and softmax-avx512.h share: per row the
// ISA's max+exp (Exp), then the sums as left-to-right fp64 chains (four rows at a time, so four
// independent chains share the adder instead of waiting on one), then the ISA's division (Div).
#pragma once

namespace bitmar {
namespace {

template <void (*Exp)(float*, int), void (*Div)(float*, int, double)>
inline void act_softmax_rows(float* x, int rows, int n) {
  for (int r = 0; r < rows; r++) Exp(x + static_cast<long>(r) * n, n);
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    float* x0 = x + static_cast<long>(r) * n;
    float *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int i = 0; i < n; i++) {
      s0 += x0[i];
      s1 += x1[i];
      s2 += x2[i];
      s3 += x3[i];
    }
    Div(x0, n, s0);
    Div(x1, n, s1);
    Div(x2, n, s2);
    Div(x3, n, s3);
  }
  for (; r < rows; r++) {
    float* xr = x + static_cast<long>(r) * n;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += xr[i];
    Div(xr, n, sum);
  }
}

}  // namespace
}  // namespace bitmar
