// The reference convolution kernel: plain loops, the definition the other ISA files match bit for bit.
// Each output pixel's im2col row (zeros outside the image) is gathered into a small buffer, then every
// output channel is summed exactly as ternary/scalar.cc tq_matmul_f32_scalar sums a row, and the GELU
// is activation/scalar.cc's.
#include <cstddef>
#include <new>

#include "activation/activation.h"
#include "activation/v8-math.h"
#include "conv.h"

namespace bitmar {

namespace {

bool cnv_conv3x3_gelu_f32_scalar(const float* x, int h, int w, int cin, const float* wt, const float* bias, int cout, int stride, float* out) {
  const int oh = cnv_out_size(h, stride), ow = cnv_out_size(w, stride), k = 9 * cin;
  float* col = new (std::nothrow) float[static_cast<size_t>(k)];
  if (!col) return false;
  for (int oy = 0; oy < oh; oy++) {
    for (int ox = 0; ox < ow; ox++) {
      int j = 0;
      for (int ky = 0; ky < 3; ky++) {
        const int iy = oy * stride + ky - 1;
        for (int kx = 0; kx < 3; kx++) {
          const int ix = ox * stride + kx - 1;
          const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
          const float* src = inside ? x + (static_cast<size_t>(iy) * w + ix) * cin : nullptr;
          for (int c = 0; c < cin; c++) col[j++] = inside ? src[c] : 0.0f;
        }
      }
      float* y = out + (static_cast<size_t>(oy) * ow + ox) * cout;
      for (int o = 0; o < cout; o++) {
        const float* wr = wt + static_cast<size_t>(o) * k;
        float p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0;  // lane sums, j ≡ l mod 8
        int i = 0;
        for (; i + 8 <= k; i += 8) {
          p0 = p0 + col[i] * wr[i], p1 = p1 + col[i + 1] * wr[i + 1], p2 = p2 + col[i + 2] * wr[i + 2], p3 = p3 + col[i + 3] * wr[i + 3];
          p4 = p4 + col[i + 4] * wr[i + 4], p5 = p5 + col[i + 5] * wr[i + 5], p6 = p6 + col[i + 6] * wr[i + 6], p7 = p7 + col[i + 7] * wr[i + 7];
        }
        float* const lane[8] = {&p0, &p1, &p2, &p3, &p4, &p5, &p6, &p7};
        for (int l = 0; i < k; i++, l++) *lane[l] = *lane[l] + col[i] * wr[i];
        const float s = ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7));
        const double v = s + (bias ? bias[o] : 0.0f);
        y[o] = static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
      }
    }
  }
  delete[] col;
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_scalar = {
    cnv_conv3x3_gelu_f32_scalar,
};

}  // namespace bitmar
