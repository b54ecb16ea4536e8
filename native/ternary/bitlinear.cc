// BitLinear orchestration (bitlinear.h). Scratch buffers are thread_local: each worker_thread (and
// each OS thread) gets its own, reused across calls, so nothing is allocated per call once warm.
#include "bitlinear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant-common.h"
#include "thread-pool.h"

namespace bitmar {

namespace {

struct tq_scratch {
  std::vector<uint8_t> q;      // [m][cols_padded] int8 or uint8 codes
  std::vector<int32_t> qsum;   // [m]
  std::vector<float> scale;    // [m]
};

tq_scratch& tq_thread_scratch(size_t qbytes, int m) {
  thread_local tq_scratch s;
  if (s.q.size() < qbytes) s.q.resize(qbytes);
  if (s.qsum.size() < static_cast<size_t>(m)) {
    s.qsum.resize(m);
    s.scale.resize(m);
  }
  return s;
}

// max − min < 1e-8: the input passes through unquantised. Mirrors kernels-ts.ts: acc = Σ t·x in fp32,
// left to right, skipping zero weights; y = fp32(fp32(acc·s_w) + b). Rare (a constant tensor), so scalar.
void tq_passthrough(const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y) {
  for (int i = 0; i < m; i++) {
    const float* xr = x + static_cast<size_t>(i) * w.cols;
    for (int r = 0; r < w.rows; r++) {
      float acc = 0.0f;
      for (int j = 0; j < w.cols; j++) {
        const int t = tq_code_at(w, r, j) - 1;
        if (t != 0) acc = acc + static_cast<float>(t) * tq_clamp_x(xr[j]);
      }
      y[static_cast<size_t>(i) * w.rows + r] = acc * sw + (bias ? bias[r] : 0.0f);
    }
  }
}


// How a call is split across the pool: tasks ≤ 1 runs on the calling thread exactly as without a pool.
// Tokens are split in whole tiles of 4 when there are at least as many tiles as threads (each thread
// streams the whole matrix but computes its tokens' rows as the single-threaded call would); else the
// row groups are split, each thread computing a view of its groups (as tq_gemv_i8_groups does).
constexpr int kTqTasksPerThread = 4;

struct tq_split {
  int tasks = 1;
  bool by_tokens = false;
};

tq_split tq_plan(thread_pool* pool, const tq_matrix& w, int m) {
  const int th = pool ? pool->threads() : 1;
  if (th <= 1 || static_cast<long long>(m) * w.rows * w.cols < kTqParallelMacs) return {};
  // Several tasks per thread, so a thread the OS preempts holds up only a small share of the call.
  const int tiles = (m + 3) / 4;
  if (tiles >= th) return {std::min(tiles, kTqTasksPerThread * th), true};
  return {std::min(w.groups, kTqTasksPerThread * th), false};
}

// Tokens [*t0, *t1) of task k of `tasks` over m tokens, in whole tiles of 4.
void tq_token_range(int k, int tasks, int m, int* t0, int* t1) {
  const int tiles = (m + 3) / 4;
  *t0 = 4 * static_cast<int>(static_cast<long long>(k) * tiles / tasks);
  *t1 = std::min(m, 4 * static_cast<int>(static_cast<long long>(k + 1) * tiles / tasks));
}

// The row groups of task k split off w as a matrix of their own (same blocks and row sums).
tq_matrix tq_group_view(const tq_matrix& w, int k, int tasks) {
  const int g0 = static_cast<int>(static_cast<long long>(k) * w.groups / tasks);
  const int g1 = static_cast<int>(static_cast<long long>(k + 1) * w.groups / tasks);
  tq_matrix v = w;
  const int r0 = g0 * kTqGroupRows;
  v.rows = std::max(0, std::min(g1 * kTqGroupRows, w.rows) - r0);
  v.groups = g1 - g0;
  v.data = w.data + static_cast<size_t>(g0) * w.nblocks * kTqBlockBytes;
  v.row_tsum = w.row_tsum + r0;
  return v;
}

// Runs gemm(view, bias_of_view, y_of_view) for every task's row groups; for m > 1 the view's rows
// land in a per-thread buffer first (the kernels write rows with the view's stride), then in y.
template <typename Gemm>
void tq_split_rows(thread_pool* pool, const tq_matrix& w, int m, int tasks, const float* bias, float* y, Gemm gemm) {
  pool->for_each(tasks, [&](int k) {
    const tq_matrix v = tq_group_view(w, k, tasks);
    if (v.rows <= 0) return;
    const int r0 = static_cast<int>((v.data - w.data) / (static_cast<size_t>(w.nblocks) * kTqBlockBytes)) * kTqGroupRows;
    const float* bv = bias ? bias + r0 : nullptr;
    if (m == 1) {
      gemm(v, bv, y + r0);
      return;
    }
    thread_local std::vector<float> tmp;
    const size_t need = static_cast<size_t>(m) * v.rows;
    if (tmp.size() < need) tmp.resize(need);
    gemm(v, bv, tmp.data());
    for (int i = 0; i < m; i++) {
      std::memcpy(y + static_cast<size_t>(i) * w.rows + r0, tmp.data() + static_cast<size_t>(i) * v.rows, sizeof(float) * v.rows);
    }
  });
}

}  // namespace

void tq_bitlinear_i8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y,
                     thread_pool* pool) {
  const int cp = tq_cols_padded(w);
  // Quantises tokens [t0, t1) into this thread's scratch; returns their activations.
  auto quantize = [&](int t0, int t1) {
    const int n = t1 - t0;
    tq_scratch& s = tq_thread_scratch(static_cast<size_t>(n) * cp, n);
    int8_t* q = reinterpret_cast<int8_t*>(s.q.data());
    for (int i = 0; i < n; i++) {
      const float sx = t.quant_row_i8(x + static_cast<size_t>(t0 + i) * w.cols, w.cols, cp, q + static_cast<size_t>(i) * cp, &s.qsum[i]);
      s.scale[i] = sx * sw;  // fp32(s_x·s_w), rounded before the multiply by acc (§2)
    }
    return tq_acts_i8{q, s.qsum.data(), s.scale.data()};
  };
  const tq_split sp = tq_plan(pool, w, m);
  if (sp.tasks <= 1) {
    t.gemm_i8(w, quantize(0, m), m, bias, y);
  } else if (sp.by_tokens) {
    pool->for_each(sp.tasks, [&](int k) {
      int t0, t1;
      tq_token_range(k, sp.tasks, m, &t0, &t1);
      if (t0 < t1) t.gemm_i8(w, quantize(t0, t1), t1 - t0, bias, y + static_cast<size_t>(t0) * w.rows);
    });
  } else {
    const tq_acts_i8 a = quantize(0, m);  // the caller's scratch, read by every thread
    tq_split_rows(pool, w, m, sp.tasks, bias, y, [&](const tq_matrix& v, const float* bv, float* yv) { t.gemm_i8(v, a, m, bv, yv); });
  }
}

void tq_quantize_i8(const tq_kernel_table& t, const float* x, int cols, int cols_padded, tq_token_i8* out) {
  if (out->q.size() < static_cast<size_t>(cols_padded)) out->q.resize(cols_padded);
  out->sx = t.quant_row_i8(x, cols, cols_padded, out->q.data(), &out->qsum);
  out->cols = cols;
}

void tq_gemv_i8_groups(const tq_kernel_table& t, const tq_matrix& w, float sw, const tq_token_i8& a, int g0, int g1, const float* bias, float* y) {
  // A view of row groups g0..g1−1: the same blocks and row sums, so the kernel sees a smaller matrix.
  tq_matrix v = w;
  const int r0 = g0 * kTqGroupRows;
  v.rows = std::min(g1 * kTqGroupRows, w.rows) - r0;
  v.groups = g1 - g0;
  v.data = w.data + static_cast<size_t>(g0) * w.nblocks * kTqBlockBytes;
  v.row_tsum = w.row_tsum + r0;
  const float scale = a.sx * sw;  // fp32(s_x·s_w), as tq_bitlinear_i8
  const tq_acts_i8 acts{a.q.data(), &a.qsum, &scale};
  t.gemm_i8(v, acts, 1, bias ? bias + r0 : nullptr, y + r0);
}

void tq_bitlinear_u8(const tq_kernel_table& t, const tq_matrix& w, float sw, const float* x, int m, const float* bias, float* y,
                     thread_pool* pool) {
  float lo, hi;
  t.minmax_f32(x, static_cast<size_t>(m) * w.cols, &lo, &hi);
  const double range = static_cast<double>(hi) - static_cast<double>(lo);  // fp64, as JS computes hi − lo
  if (range < 1e-8) {
    tq_passthrough(w, sw, x, m, bias, y);
    return;
  }
  const float sc = static_cast<float>(range / 255.0);
  // zp = clamp(rhe(fp32(−min/s)), 0, 255), clamps included (§12.11).
  const int zp = tq_round_clamp(-lo / sc, 0.0f, 255.0f);
  const int cp = tq_cols_padded(w);
  auto quantize = [&](int t0, int t1) {
    const int n = t1 - t0;
    tq_scratch& s = tq_thread_scratch(static_cast<size_t>(n) * cp, n);
    for (int i = 0; i < n; i++) {
      t.quant_row_u8(x + static_cast<size_t>(t0 + i) * w.cols, w.cols, cp, sc, zp, s.q.data() + static_cast<size_t>(i) * cp, &s.qsum[i]);
    }
    return tq_acts_u8{s.q.data(), s.qsum.data(), zp, sc * sw};
  };
  const tq_split sp = tq_plan(pool, w, m);
  if (sp.tasks <= 1) {
    t.gemm_u8(w, quantize(0, m), m, bias, y);
  } else if (sp.by_tokens) {
    pool->for_each(sp.tasks, [&](int k) {
      int t0, t1;
      tq_token_range(k, sp.tasks, m, &t0, &t1);
      if (t0 < t1) t.gemm_u8(w, quantize(t0, t1), t1 - t0, bias, y + static_cast<size_t>(t0) * w.rows);
    });
  } else {
    const tq_acts_u8 a = quantize(0, m);
    tq_split_rows(pool, w, m, sp.tasks, bias, y, [&](const tq_matrix& v, const float* bv, float* yv) { t.gemm_u8(v, a, m, bv, yv); });
  }
}

void tq_matmul_f32(const tq_kernel_table& t, const float* w, int n, int k, const float* x, int m, const float* bias, float* y,
                   thread_pool* pool) {
  const int th = pool ? pool->threads() : 1;
  if (th <= 1 || static_cast<long long>(m) * n * k < kTqParallelMacs / 4) {
    t.matmul_f32(w, n, k, x, m, bias, y);
  } else if (m >= th) {
    // Each task computes whole rows of y: tokens [i0, i1).
    const int tasks = std::min(m, kTqTasksPerThread * th);
    pool->for_each(tasks, [&](int p) {
      const int i0 = static_cast<int>(static_cast<long long>(p) * m / tasks), i1 = static_cast<int>(static_cast<long long>(p + 1) * m / tasks);
      if (i0 < i1) t.matmul_f32(w, n, k, x + static_cast<size_t>(i0) * k, i1 - i0, bias, y + static_cast<size_t>(i0) * n);
    });
  } else {
    // Few tokens: each thread computes output columns [r0, r1) of every token (rows of w).
    const int tasks = std::min(n, kTqTasksPerThread * th);
    pool->for_each(tasks, [&](int p) {
      const int r0 = static_cast<int>(static_cast<long long>(p) * n / tasks), r1 = static_cast<int>(static_cast<long long>(p + 1) * n / tasks);
      for (int i = 0; i < m && r0 < r1; i++) {
        t.matmul_f32(w + static_cast<size_t>(r0) * k, r1 - r0, k, x + static_cast<size_t>(i) * k, 1, bias ? bias + r0 : nullptr,
                     y + static_cast<size_t>(i) * n + r0);
      }
    });
  }
}

}  // namespace bitmar
