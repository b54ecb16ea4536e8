// AVX2 activation kernels (built with -mavx2 -mfma -ffp-contract=off): four fp64 lanes per step, each
// lane the exact operation sequence of scalar.cc, so the results are the same bits.
#include <immintrin.h>

#include "activation.h"
#include "gelu-fast.h"
#include "softmax-avx2.h"
#include "v8-math-avx2.h"

namespace bitmar {

namespace {

void act_gelu_f32_avx2(float* x, size_t n) { act_gelu_fast_avx2(x, n); }

void act_softmax_f32_avx2(float* x, int n) { act_softmax_avx2(x, n); }

void act_exp_f64_avx2(const double* x, size_t n, double* y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, v8_exp_pd(_mm256_loadu_pd(x + i)));
  for (; i < n; i++) y[i] = v8_exp(x[i]);
}

void act_tanh_f64_avx2(const double* x, size_t n, double* y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, v8_tanh_pd(_mm256_loadu_pd(x + i)));
  for (; i < n; i++) y[i] = v8_tanh(x[i]);
}

}  // namespace

extern const act_kernel_table act_table_avx2 = {
    act_gelu_f32_avx2,
    act_softmax_f32_avx2,
    act_exp_f64_avx2,
    act_tanh_f64_avx2,
};

}  // namespace bitmar
