// The resize plan shared by the image family's ISA files: per-axis coverage weights of the exact area
// resize of src/model/preprocess.ts (axisWeights), the inverse map of the column pass, and the scratch
// buffers. Everything here has internal linkage (anonymous namespace): each ISA file compiles its own
// copy with its own -m flags (see ternary/x86-common.h for why). No Node-API here.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace bitmar {
namespace {

// Largest number of distinct horizontal weights that gets product tables (256 doubles, 2 KiB each).
constexpr int kImgMaxTables = 64;

// One axis mapping `src` pixels onto `dst`: output o reads source [start[o], start[o] + count[o])
// with weights w[off[o] + t] = overlap / src, overlap being the integer overlap in units of 1/dst.
// tab[off[o] + t] indexes the product table of that weight (−1: no tables).
struct img_axis {
  int* start = nullptr;
  int* count = nullptr;
  int* off = nullptr;
  double* w = nullptr;
  int* tab = nullptr;
  int ntab = 0;        // distinct weights with a table (0: multiply instead)
  int* tab_ov = nullptr;  // overlap of table k
};

// A bump allocator over one malloc'd block (freed by the caller).
struct img_arena {
  unsigned char* base = nullptr;
  size_t used = 0, cap = 0;
  template <typename T>
  T* take(size_t n) {
    used = (used + 63) & ~static_cast<size_t>(63);
    T* p = reinterpret_cast<T*>(base + used);
    used += n * sizeof(T);
    return p;
  }
};

// Coverage entries of one axis: Σ_o count[o] (each ≤ ceil(src/dst) + 1).
inline long long img_axis_entries(long long src, long long dst) {
  long long n = 0;
  for (long long o = 0; o < dst; o++) {
    const long long lo = o * src, hi = (o + 1) * src;
    n += (hi + dst - 1) / dst - lo / dst;
  }
  return n;
}

// Fills `a` from the arena, in the order of axisWeights: for output o, source pixel i spans
// [i·dst, (i+1)·dst) and output o spans [o·src, (o+1)·src) (units of 1/dst); the weight is
// overlap / src in fp64 (one correctly rounded division, as in TypeScript). With `tables`, distinct
// overlaps get a table index when there are at most kImgMaxTables of them.
inline void img_axis_build(long long src, long long dst, bool tables, img_arena* arena, img_axis* a) {
  const long long entries = img_axis_entries(src, dst);
  a->start = arena->take<int>(dst);
  a->count = arena->take<int>(dst);
  a->off = arena->take<int>(dst);
  a->w = arena->take<double>(entries);
  a->tab = arena->take<int>(entries);
  a->tab_ov = arena->take<int>(kImgMaxTables);
  a->ntab = 0;
  bool use_tables = tables;
  long long k = 0;
  for (long long o = 0; o < dst; o++) {
    const long long lo = o * src, hi = (o + 1) * src;
    const long long i0 = lo / dst, i1 = (hi + dst - 1) / dst;
    a->start[o] = static_cast<int>(i0);
    a->count[o] = static_cast<int>(i1 - i0);
    a->off[o] = static_cast<int>(k);
    for (long long i = i0; i < i1; i++, k++) {
      const long long e = (i + 1) * dst < hi ? (i + 1) * dst : hi;
      const long long b = i * dst > lo ? i * dst : lo;
      const long long ov = e - b;
      a->w[k] = static_cast<double>(ov) / static_cast<double>(src);
      a->tab[k] = -1;
      if (!use_tables) continue;
      int t = 0;
      while (t < a->ntab && a->tab_ov[t] != ov) t++;
      if (t == a->ntab) {
        if (a->ntab == kImgMaxTables) {
          use_tables = false;
          continue;
        }
        a->tab_ov[a->ntab++] = static_cast<int>(ov);
      }
      a->tab[k] = t;
    }
  }
  if (!use_tables) a->ntab = 0;
}

// Bytes the arena needs for a plan of width×height → size×size with `rows` rows of the row pass
// held at once, plus `extra` bytes.
inline size_t img_plan_bytes(long long width, long long height, long long size, int rows) {
  const long long ex = img_axis_entries(width, size), ey = img_axis_entries(height, size);
  size_t b = 0;
  auto add = [&b](size_t n) { b = ((b + 63) & ~static_cast<size_t>(63)) + n; };
  for (long long e : {ex, ey}) {
    add(size * sizeof(int)); add(size * sizeof(int)); add(size * sizeof(int));
    add(e * sizeof(double)); add(e * sizeof(int)); add(kImgMaxTables * sizeof(int));
  }
  add(static_cast<size_t>(kImgMaxTables) * 256 * sizeof(double));  // product tables
  add(static_cast<size_t>(rows) * size * 3 * sizeof(double));      // row pass output
  add(static_cast<size_t>(size) * size * 3 * sizeof(double));      // column pass accumulators
  add(static_cast<size_t>(rows) * width * 3);                       // row pass scratch
  return b + 64;
}

// out[k] = floor(acc[k] + 0.5) (round halves up, as Math.floor(v + 0.5) into a Uint8Array; the
// values are in [0, 255 + a few ulp], so the byte is the integer).
inline void img_round_u8(const double* acc, long long n, uint8_t* out) {
  for (long long k = 0; k < n; k++) {
    const double v = acc[k] + 0.5;
    // floor for non-negative v: truncation.
    out[k] = static_cast<uint8_t>(static_cast<long long>(v));
  }
}

// The whole resize (preprocess.ts resizeArea then the rounding of resizeAreaU8), fused so that the
// row pass's output for the whole frame (height × size × 3 doubles, 1.1 MB at 720p) never exists:
// source rows are taken kImgRows at a time through `row_pass` (the ISA-specific part, given
// kImgRows·width·3 bytes of scratch; it writes
// tmp[r·size·3 + o·3 + c] = Σ_t w[off[o] + t] · row_r[(start[o] + t)·3 + c], summed in t order from
// 0.0, exactly TypeScript's pass 1), then each finished row is added into every output row that
// covers it. Output row o sees source rows in increasing j, i.e. in TypeScript's t order, starting
// from 0.0, so every accumulator gets the same fp64 operations in the same order as pass 2.
// Returns false when the scratch memory cannot be allocated.
constexpr int kImgRows = 4;

using img_row_pass_fn = void (*)(const uint8_t* const* rows, int nrows, const img_axis& ax, const double* tables, int width,
                                 int size, uint8_t* scratch, double* tmp);

inline bool img_resize_area(const uint8_t* rgb, int width, int height, int size, uint8_t* out, img_row_pass_fn row_pass) {
  const size_t bytes = img_plan_bytes(width, height, size, kImgRows);
  img_arena ar;
  ar.base = static_cast<unsigned char*>(std::malloc(bytes));
  if (!ar.base) return false;
  ar.cap = bytes;
  img_axis ax, ay;
  img_axis_build(width, size, true, &ar, &ax);
  img_axis_build(height, size, false, &ar, &ay);
  // Product tables: tables[k·256 + v] = w_k · v, the same fp64 product the row pass would compute.
  double* tables = ar.take<double>(static_cast<size_t>(kImgMaxTables) * 256);
  for (int k = 0; k < ax.ntab; k++) {
    const double w = static_cast<double>(ax.tab_ov[k]) / static_cast<double>(width);
    for (int v = 0; v < 256; v++) tables[k * 256 + v] = w * static_cast<double>(v);
  }
  const long long stride = static_cast<long long>(size) * 3;
  double* tmp = ar.take<double>(static_cast<size_t>(kImgRows) * stride);
  double* acc = ar.take<double>(static_cast<size_t>(size) * stride);
  std::memset(acc, 0, sizeof(double) * static_cast<size_t>(size) * stride);
  uint8_t* scratch = ar.take<uint8_t>(static_cast<size_t>(kImgRows) * width * 3);
  const long long row_bytes = static_cast<long long>(width) * 3;
  int o0 = 0;  // first output row whose source range has not ended
  for (int j = 0; j < height; j += kImgRows) {
    const int n = height - j < kImgRows ? height - j : kImgRows;
    const uint8_t* rows[kImgRows];
    for (int r = 0; r < kImgRows; r++) rows[r] = rgb + static_cast<long long>(j + (r < n ? r : n - 1)) * row_bytes;
    row_pass(rows, n, ax, ax.ntab > 0 ? tables : nullptr, width, size, scratch, tmp);
    for (int r = 0; r < n; r++) {
      const int jj = j + r;
      while (o0 < size && ay.start[o0] + ay.count[o0] <= jj) o0++;
      const double* s = tmp + r * stride;
      for (int o = o0; o < size && ay.start[o] <= jj; o++) {
        const double w = ay.w[ay.off[o] + jj - ay.start[o]];
        double* a = acc + o * stride;
        for (long long x = 0; x < stride; x++) a[x] += w * s[x];
      }
    }
  }
  img_round_u8(acc, size * stride, out);
  std::free(ar.base);
  return true;
}

}  // namespace
}  // namespace bitmar
