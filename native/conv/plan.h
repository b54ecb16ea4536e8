// The per-call setup shared by the vector convolution kernels (avx2.cc, avx512.cc, neon.cc): the
// weights transposed to [k][coutp] (output channels contiguous, so one vector load gives one im2col
// element's weight for a run of output channels), the bias padded to coutp, where each im2col element
// of an interior pixel sits in the input, and the walk over the output pixels. Internal linkage
// (anonymous namespace): each ISA file compiles its own copy with its own flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "conv.h"

namespace bitmar {
namespace {

struct cnv_plan {
  const float* x = nullptr;
  float* out = nullptr;
  int h = 0, w = 0, cin = 0, cout = 0, stride = 0, oh = 0, ow = 0;
  int k = 0;      // 9·cin, the im2col row length
  int coutp = 0;  // cout rounded up to the vector width
  int ox_end = 0; // pixels 1 ≤ ox < ox_end of a row have all three input columns inside the image
  float* wt = nullptr;       // [k][coutp]: wt[j·coutp + o] = weight[o][j], 0 for o ≥ cout
  float* bias = nullptr;     // [coutp]: bias, 0 beyond cout and without a bias (matmulF32's + 0)
  float* patch = nullptr;    // [k]: the im2col row of one border pixel (zeros outside the image)
  int32_t* off = nullptr;    // [k]: element j of an interior pixel's im2col row is base[off[j]]
  int32_t* ident = nullptr;  // [k]: j (for `patch`)
  char* mem = nullptr;

  cnv_plan() = default;
  cnv_plan(const cnv_plan&) = delete;
  cnv_plan& operator=(const cnv_plan&) = delete;
  ~cnv_plan() { delete[] mem; }

  // False when out of memory.
  bool init(const float* x_, int h_, int w_, int cin_, const float* weight, const float* bias_, int cout_, int stride_, float* out_, int vec) {
    x = x_, out = out_, h = h_, w = w_, cin = cin_, cout = cout_, stride = stride_;
    oh = cnv_out_size(h, stride), ow = cnv_out_size(w, stride), k = 9 * cin;
    coutp = (cout + vec - 1) / vec * vec;
    ox_end = w >= 2 ? (w - 2) / stride + 1 : 0;
    const size_t nf = static_cast<size_t>(k) * coutp + coutp + k, ni = 2 * static_cast<size_t>(k);
    mem = new (std::nothrow) char[nf * sizeof(float) + ni * sizeof(int32_t) + 64];
    if (!mem) return false;
    wt = reinterpret_cast<float*>(mem);
    bias = wt + static_cast<size_t>(k) * coutp;
    patch = bias + coutp;
    off = reinterpret_cast<int32_t*>(patch + k);
    ident = off + k;
    for (int j = 0; j < k; j++) {
      float* row = wt + static_cast<size_t>(j) * coutp;
      for (int o = 0; o < cout; o++) row[o] = weight[static_cast<size_t>(o) * k + j];
      for (int o = cout; o < coutp; o++) row[o] = 0.0f;
    }
    for (int o = 0; o < coutp; o++) bias[o] = bias_ && o < cout ? bias_[o] : 0.0f;
    for (int j = 0; j < k; j++) {
      const int tap = j / cin, c = j % cin;
      off[j] = ((tap / 3) * w + tap % 3) * cin + c;
      ident[j] = j;
    }
    return true;
  }

  // patch ← the im2col row of output pixel (oy, ox), zeros outside the image (conv.ts im2col3x3).
  void gather(int oy, int ox) const {
    float* d = patch;
    for (int ky = 0; ky < 3; ky++) {
      const int iy = oy * stride + ky - 1;
      for (int kx = 0; kx < 3; kx++, d += cin) {
        const int ix = ox * stride + kx - 1;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
          std::memset(d, 0, sizeof(float) * cin);
        } else {
          std::memcpy(d, x + (static_cast<size_t>(iy) * w + ix) * cin, sizeof(float) * cin);
        }
      }
    }
  }
};

// Calls blk(base, off, dst, n) for every pixel of output row oy, n = P pixels at a time where it can
// (interior pixels of an interior row, consecutive in x: pixel p's im2col element j is base[p][off[j]]
// and its output goes to dst[p]) and n = 1 otherwise (border pixels read their gathered `patch` with
// `ident`). dst points at the pixel's output channel 0.
template <int P, typename Blk>
void cnv_row_pixels(const cnv_plan& pl, int oy, Blk&& blk) {
  const size_t cinS = static_cast<size_t>(pl.cin);
  float* orow = pl.out + static_cast<size_t>(oy) * pl.ow * pl.cout;
  const int iy0 = oy * pl.stride - 1;
  auto border = [&](int ox) {
    pl.gather(oy, ox);
    const float* b[1] = {pl.patch};
    float* d[1] = {orow + static_cast<size_t>(ox) * pl.cout};
    blk(b, pl.ident, d, 1);
  };
  if (!(iy0 >= 0 && iy0 + 2 < pl.h)) {
    for (int ox = 0; ox < pl.ow; ox++) border(ox);
    return;
  }
  border(0);
  // pixel ox's top-left input (ox ≥ 1, so the column ox·stride − 1 is ≥ 0)
  auto top_left = [&](int ox) { return pl.x + (static_cast<size_t>(iy0) * pl.w + static_cast<size_t>(ox) * pl.stride - 1) * cinS; };
  int ox = 1;
  for (; ox + P <= pl.ox_end; ox += P) {
    const float* b[P];
    float* d[P];
    for (int p = 0; p < P; p++) {
      b[p] = top_left(ox + p);
      d[p] = orow + static_cast<size_t>(ox + p) * pl.cout;
    }
    blk(b, pl.off, d, P);
  }
  for (; ox < pl.ox_end; ox++) {
    const float* b[1] = {top_left(ox)};
    float* d[1] = {orow + static_cast<size_t>(ox) * pl.cout};
    blk(b, pl.off, d, 1);
  }
  for (; ox < pl.ow; ox++) border(ox);
}

}  // namespace
}  // namespace bitmar
