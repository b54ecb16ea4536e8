// The reference arg-max: one pass, strictly-greater updates (ties keep the lowest index).
#include "sample.h"

namespace bitmar {

namespace {

int smp_argmax_f32_scalar(const float* x, int n) {
  int best = 0;
  float bv = x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] > bv) {
      bv = x[i];
      best = i;
    }
  }
  return best;
}

}  // namespace

extern const smp_kernel_table smp_table_scalar = {smp_argmax_f32_scalar};

}  // namespace bitmar
