// The reference LayerNorm: plain loops in the order of src/model/kernels-ts.ts layerNorm.
#include <cmath>

#include "norm.h"

namespace bitmar {

namespace {

void nrm_layer_norm_f32_scalar(const float* x, int m, int d, const float* w, const float* b, double eps, float* out) {
  for (int r = 0; r < m; r++) {
    const float* xr = x + static_cast<long>(r) * d;
    float* o = out + static_cast<long>(r) * d;
    double sum = 0.0;
    for (int j = 0; j < d; j++) sum += xr[j];
    const double mean = sum / d;
    double ss = 0.0;
    for (int j = 0; j < d; j++) {
      const double t = xr[j] - mean;
      ss += t * t;
    }
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int j = 0; j < d; j++) {
      const float t = static_cast<float>((xr[j] - mean) * inv);
      o[j] = static_cast<float>(static_cast<double>(t) * w[j] + b[j]);
    }
  }
}

}  // namespace

extern const nrm_kernel_table nrm_table_scalar = {nrm_layer_norm_f32_scalar};

}  // namespace bitmar
