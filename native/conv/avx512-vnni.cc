// AVX-512 convolution kernel of the avx512-vnni ISA (it uses AVX-512F/VL only; built with that ISA's
// flags and -ffp-contract=off), bit-exact twin of scalar.cc: avx2.cc with 16 output channels per zmm
// register for a group of 16 channels (wider groups run block-avx2.h's ymm block) and a GELU on eight
// fp64 lanes. The convolution's order and the GELU's exactness argument are avx2.cc's (see there); exp
// here uses a 16-entry table (vpermt2pd) and a degree-6 polynomial instead of degree 12.
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*() and trip a false
// -Wmaybe-uninitialized / -Wuninitialized (GCC PR 105593); nothing here reads an undefined value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation/activation.h"
#include "activation/v8-math.h"
#include "conv.h"
#include "block-avx2.h"
#include "plan.h"

namespace bitmar {

namespace {

inline float cnv_gelu_v8(float y) {
  const double v = y;
  return static_cast<float>(0.5 * v * (1.0 + v8_tanh(kActGeluC * (v + 0.044715 * v * v * v))));
}

// 2^(j/16), j = 0..15, correctly rounded.
alignas(64) constexpr double kCnvExp2Sixteenths[16] = {
    1.0,                1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721,  1.241857812073484,
    1.2968395546510096, 1.3542555469368927, 1.4142135623730951, 1.4768261459394993, 1.5422108254079407, 1.6104903319492543,
    1.681792830507429,  1.7562521603732995, 1.8340080864093424, 1.9152065613971474};

// exp(x) for −44 ≤ x ≤ 44 within ~8e-16 relative: x = (16k + j)·ln2/16 + r, |r| ≤ ln2/32 (+ rounding),
// e^r by its degree-6 Taylor polynomial (remainder < 5e-16), times 2^(j/16) from a 16-entry table
// (one two-register permute) with k added to its exponent field.
inline __m512d cnv_exp_avx512(__m512d x) {
  const __m512d magic = _mm512_set1_pd(6755399441055744.0);                        // 1.5·2^52: adds round to integers
  const __m512d m = _mm512_fmadd_pd(x, _mm512_set1_pd(23.083120654223414), magic);  // magic + round(16·x/ln2)
  const __m512d n = _mm512_sub_pd(m, magic);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0.04332169878499658), x);          // x − n·(ln2/16)_hi
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.4494042586539372e-18), r);              // − n·(ln2/16)_lo
  __m512d p = _mm512_set1_pd(1.0 / 720.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  // the low bits of m hold n = 16k + j (two's complement): the permute reads j from bits 0–3
  const __m512i mi = _mm512_castpd_si512(m);
  const __m512d t = _mm512_permutex2var_pd(_mm512_load_pd(kCnvExp2Sixteenths), mi, _mm512_load_pd(kCnvExp2Sixteenths + 8));
  const __m512i k52 = _mm512_slli_epi64(_mm512_srai_epi64(_mm512_sub_epi64(mi, _mm512_castpd_si512(magic)), 4), 52);
  return _mm512_mul_pd(p, _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(t), k52)));
}

inline __m512d cnv_abs_pd(__m512d a) { return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(0x7FFFFFFFFFFFFFFF))); }

#define CNV_U for (int i = 0; i < U; i++)

// GELU of 8·U fp32 values y[0..8U) into dst (avx2.cc cnv_gelu_fast_avx2 with eight lanes). Returns a
// bit per value whose result is proven equal to cnv_gelu_v8's; q and h get 2/(1 + e) and 0.5·v
// (for cnv_gelu_tail_avx512).
template <int U>
inline uint32_t cnv_gelu_fast_avx512(const float* y, float* dst, double* q, double* h) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d v[U], u[U], t[U], r[U], err[U];
  __mmask8 big[U];
  CNV_U v[i] = _mm512_cvtps_pd(_mm256_loadu_ps(y + 8 * i));
  CNV_U u[i] = _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(0.044715), v[i]), v[i]), v[i]);
  CNV_U u[i] = _mm512_mul_pd(_mm512_set1_pd(kActGeluC), _mm512_add_pd(v[i], u[i]));
  CNV_U big[i] = _mm512_cmp_pd_mask(cnv_abs_pd(u[i]), _mm512_set1_pd(22.0), _CMP_GE_OQ);
  CNV_U t[i] = _mm512_min_pd(_mm512_max_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), u[i]), _mm512_set1_pd(-44.0)), _mm512_set1_pd(44.0));
  CNV_U t[i] = cnv_exp_avx512(t[i]);
  CNV_U t[i] = _mm512_div_pd(_mm512_set1_pd(2.0), _mm512_add_pd(one, t[i]));  // q = 2/(1 + e)
  CNV_U _mm512_store_pd(q + 8 * i, t[i]);
  CNV_U t[i] = _mm512_sub_pd(t[i], one);                                       // tanh(u) = q − 1
  CNV_U v[i] = _mm512_mul_pd(_mm512_set1_pd(0.5), v[i]);
  CNV_U _mm512_store_pd(h + 8 * i, v[i]);
  CNV_U r[i] = _mm512_mul_pd(v[i], _mm512_add_pd(one, t[i]));
  CNV_U err[i] = _mm512_mul_pd(cnv_abs_pd(v[i]), _mm512_set1_pd(0x1p-46));
  uint32_t ok = 0;
  CNV_U {
    const __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(r[i], err[i])), hi = _mm512_cvtpd_ps(_mm512_add_pd(r[i], err[i]));
    const __mmask8 same = static_cast<__mmask8>(_mm256_cmpeq_epi32_mask(_mm256_castps_si256(lo), _mm256_castps_si256(hi)) &
                                                _mm256_cmp_ps_mask(lo, hi, _CMP_EQ_OQ));
    ok |= static_cast<uint32_t>(same | big[i]) << (8 * i);
    _mm256_storeu_ps(dst + 8 * i, _mm512_cvtpd_ps(r[i]));
  }
  return ok;
}

#undef CNV_U

// The negative tail (avx2.cc cnv_gelu_tail_avx2, see there): lanes of 8 values starting at q, h whose
// bits in `*ok` are clear get V8's exact result where it can be rebuilt; their bits are set.
inline void cnv_gelu_tail_avx512(const double* q, const double* h, float* dst, uint32_t* ok, int shift) {
  const __mmask8 todo = static_cast<__mmask8>(~(*ok >> shift));
  const __m512d qv = _mm512_load_pd(q), hv = _mm512_load_pd(h), one = _mm512_set1_pd(1.0);
  const __mmask8 tail = _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(hv, _mm512_setzero_pd(), _CMP_LT_OQ), qv, _mm512_set1_pd(0.2), _CMP_LT_OQ);
  const __m512d za = _mm512_fnmadd_pd(qv, _mm512_set1_pd(1.0 + 0x1p-46), one), zb = _mm512_fnmadd_pd(qv, _mm512_set1_pd(1.0 - 0x1p-46), one);
  const __mmask8 good = _mm512_mask_cmp_pd_mask(static_cast<__mmask8>(todo & tail), za, zb, _CMP_EQ_OQ);
  if (!good) return;
  _mm256_mask_storeu_ps(dst, good, _mm512_cvtpd_ps(_mm512_mul_pd(hv, _mm512_sub_pd(one, za))));  // V8's (0.5·v)·(1 + −z)
  *ok |= static_cast<uint32_t>(good) << shift;
}

// a[0..n) ← GELU(a[0..n)), kGeluU·8 values at a time.
constexpr int kGeluU = 4;
void cnv_gelu_avx512(float* a, size_t n) {
  constexpr size_t kN = 8 * kGeluU;
  constexpr uint32_t kAll = kN == 32 ? 0xFFFFFFFFu : (1u << kN) - 1;
  alignas(64) float y[kN], r[kN];
  alignas(64) double q[kN], h[kN];
  for (size_t i = 0; i < n; i += kN) {
    const size_t m = n - i < kN ? n - i : kN;
    const float* src = a + i;
    if (m < kN) {
      std::memcpy(y, a + i, m * sizeof(float));
      std::memset(y + m, 0, (kN - m) * sizeof(float));
      src = y;
    }
    uint32_t ok = cnv_gelu_fast_avx512<kGeluU>(src, r, q, h);
    if (ok != kAll) {
      for (int g = 0; g < kGeluU; g++)
        if (((ok >> (8 * g)) & 0xFF) != 0xFF) cnv_gelu_tail_avx512(q + 8 * g, h + 8 * g, r + 8 * g, &ok, 8 * g);
      if (ok != kAll) {
        for (size_t k = 0; k < m; k++)
          if (!((ok >> k) & 1)) r[k] = cnv_gelu_v8(src[k]);
      }
    }
    std::memcpy(a + i, r, m * sizeof(float));
  }
}

template <int NV, int P>
inline void cnv_block_avx512(const float* const* base, const int32_t* off, int k, const float* wt, int coutp, const float* bias,
                             float* const* dst, int nout) {
  alignas(64) float lanes[8][P][NV][16];
  for (int l = 0; l < 8; l++) {
    __m512 acc[P][NV];
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();
    for (int j = l; j < k; j += 8) {
      const float* wj = wt + static_cast<size_t>(j) * coutp;
      const int o = off[j];
      __m512 wv[NV];
      for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(wj + 16 * v);
      for (int p = 0; p < P; p++) {
        const __m512 xb = _mm512_set1_ps(base[p][o]);
        for (int v = 0; v < NV; v++) acc[p][v] = _mm512_add_ps(acc[p][v], _mm512_mul_ps(xb, wv[v]));
      }
    }
    for (int p = 0; p < P; p++)
      for (int v = 0; v < NV; v++) _mm512_store_ps(lanes[l][p][v], acc[p][v]);
  }
  for (int p = 0; p < P; p++) {
    for (int v = 0; v < NV; v++) {
      auto L = [&](int l) { return _mm512_load_ps(lanes[l][p][v]); };
      const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(L(0), L(4)), _mm512_add_ps(L(2), L(6))),
                                     _mm512_add_ps(_mm512_add_ps(L(1), L(5)), _mm512_add_ps(L(3), L(7))));
      const int n = nout - 16 * v;
      if (n <= 0) break;
      const __mmask16 keep = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
      _mm512_mask_storeu_ps(dst[p] + 16 * v, keep, _mm512_add_ps(s, _mm512_loadu_ps(bias + 16 * v)));
    }
  }
}

template <int NV, int P>
void cnv_row_avx512(const cnv_plan& pl, int oy, int g0) {
  const float* wt = pl.wt + g0;
  const float* bias = pl.bias + g0;
  const int nout = std::min(16 * NV, pl.cout - g0);
  cnv_row_pixels<P>(pl, oy, [&](const float* const* b, const int32_t* off, float* const* d, int n) {
    float* dg[P];
    for (int p = 0; p < n; p++) dg[p] = d[p] + g0;
    if (n == P) {
      cnv_block_avx512<NV, P>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    } else {
      cnv_block_avx512<NV, 1>(b, off, pl.k, wt, pl.coutp, bias, dg, nout);
    }
  });
}

bool cnv_conv3x3_gelu_f32_avx512(const float* x, int h, int w, int cin, const float* weight, const float* bias, int cout, int stride, float* out) {
  cnv_plan pl;
  if (!pl.init(x, h, w, cin, weight, bias, cout, stride, out, 16)) return false;
  for (int oy = 0; oy < pl.oh; oy++) {
    for (int g0 = 0; g0 < pl.coutp; g0 += 32) {  // groups of 32 channels, the last one 16 or 32
      if (pl.coutp - g0 >= 32) {
        cnv_row_avx2<4, 3>(pl, oy, g0);  // ymm: faster than any zmm block on Zen 4 (block-avx2.h)
      } else {
        cnv_row_avx512<1, 12>(pl, oy, g0);
      }
    }
    cnv_gelu_avx512(out + static_cast<size_t>(oy) * pl.ow * pl.cout, static_cast<size_t>(pl.ow) * pl.cout);
  }
  return true;
}

}  // namespace

extern const cnv_kernel_table cnv_table_avx512vnni = {
    cnv_conv3x3_gelu_f32_avx512,
};

}  // namespace bitmar
