// The reference activation kernels: plain loops, the definition the other ISA files match bit for bit,
// each line the fp64 expression of src/model/kernels-ts.ts evaluated in the same order.
#include "activation.h"
#include "v8-math.h"

namespace bitmar {

namespace {

void act_gelu_f32_scalar(float* x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
  }
}

void act_softmax_f32_scalar(float* x, int n) {
  float max = -__builtin_inff();
  for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = static_cast<float>(v8_exp(static_cast<double>(x[i]) - static_cast<double>(max)));
    sum += x[i];
  }
  for (int i = 0; i < n; i++) x[i] = static_cast<float>(x[i] / sum);
}

void act_exp_f64_scalar(const double* x, size_t n, double* y) {
  for (size_t i = 0; i < n; i++) y[i] = v8_exp(x[i]);
}

void act_tanh_f64_scalar(const double* x, size_t n, double* y) {
  for (size_t i = 0; i < n; i++) y[i] = v8_tanh(x[i]);
}

}  // namespace

extern const act_kernel_table act_table_scalar = {
    act_gelu_f32_scalar,
    act_softmax_f32_scalar,
    act_exp_f64_scalar,
    act_tanh_f64_scalar,
};

}  // namespace bitmar
