// Runtime layout of a ternary matrix and the kernel signatures of the ternary family.
// No Node-API here: this header and native/ternary/*.cc also build into the NEON test driver.
//
// Layout "tq2x8" (2 bits per weight, repacked once at load from t2-row-v1, docs/bitmar-stream.md §5):
//   rows are padded to a multiple of 8 (a "row group"), cols to a multiple of 16 (a "column block");
//   a block is 32 bytes = 8 rows × 16 columns = 128 codes c = t + 1 ∈ {0, 1, 2};
//   byte lane L = 4·r + e (r = row in group 0..7, e = 0..3), bit pair k (bits 2k, 2k+1) holds the code
//   of row 8·g + r, column 16·b + 4·k + e;
//   block (g, b) lies at byte offset (g · nblocks + b) · 32; the buffer is 64-byte aligned.
//   Padding codes are 0 (not 1): with activations padded with 0 they add nothing to Σ c·q.
// Why this shape: the four bytes a row owns in a lane line up with one broadcast 32-bit activation
// quad, so vpmaddubsw+vpmaddwd (AVX2), vpdpbusd (VNNI) and sdot/udot (NEON dotprod) produce the 8
// row sums of a group in the 8 int32 lanes of one register: no horizontal sums, and 64- and 128-wide
// rows are 4 and 8 blocks (no padding to 256). Kernels compute Σ c·q and correct with
//   Σ t·q = Σ c·q − Σ q              (int8 per-token scheme)
//   Σ (q − zp)·t = Σ c·q − Σ q − zp·Σ t   (uint8 per-tensor scheme; Σ t per row is precomputed).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitmar {

constexpr int kTqGroupRows = 8;      // rows per row group
constexpr int kTqBlockCols = 16;     // columns per block
constexpr int kTqBlockBytes = 32;    // 8 × 16 codes × 2 bits / 8
static_assert(kTqGroupRows * kTqBlockCols * 2 / 8 == kTqBlockBytes, "2 bits per weight");
constexpr int kTqMaxCols = 1 << 20;  // keeps |Σ c·q| ≤ 2·255·2^20 < 2^31 (exact int32)

struct tq_matrix {
  int32_t rows;
  int32_t cols;
  int32_t groups;       // ceil(rows / 8)
  int32_t nblocks;      // ceil(cols / 16)
  uint8_t* data;        // groups · nblocks · 32 bytes, 64-byte aligned
  int32_t* row_tsum;    // [groups · 8] Σ_j t_rj (0 for padding rows)
};

inline int tq_cols_padded(const tq_matrix& w) { return w.nblocks * kTqBlockCols; }

// Repacks canonical t2-row-v1 codes (rows × ceil(cols/4) bytes). Returns false (and leaves `out`
// empty) on a code of 3 or an allocation failure; *bad_index receives the flat weight index of the bad code.
bool tq_pack_t2row(const uint8_t* codes, int rows, int cols, tq_matrix* out, long long* bad_index);
void tq_free(tq_matrix* w);
// Code c = t + 1 of weight (r, j): used by the rare pass-through path and the tests.
int tq_code_at(const tq_matrix& w, int r, int j);

// Activations of one call, quantised. q rows are cols_padded long, zero padded (q ≥ 0 padding for u8 too).
struct tq_acts_i8 {
  const int8_t* q;       // [m][cols_padded]
  const int32_t* qsum;   // [m] Σ q over the real columns
  const float* scale;    // [m] fp32(s_x · s_w)
};
struct tq_acts_u8 {
  const uint8_t* q;      // [m][cols_padded]
  const int32_t* qsum;   // [m]
  int32_t zp;            // per-tensor zero point
  float scale;           // fp32(s · s_w)
};

// One ISA's kernels. A null entry falls back to the next ISA down, then scalar (dispatch.cc).
struct tq_kernel_table {
  const char* isa;
  // Quantises one row: s_x from the row's absmax (§2), q = clamp(rhe(x / s_x), ±127); returns s_x.
  float (*quant_row_i8)(const float* x, int cols, int cols_padded, int8_t* q, int32_t* qsum);
  // Min and max of clamp(x, ±1e6) over n values.
  void (*minmax_f32)(const float* x, size_t n, float* lo, float* hi);
  // q = clamp(rhe(fp32(fp32(x / s) + zp)), 0, 255) for one row.
  void (*quant_row_u8)(const float* x, int cols, int cols_padded, float s, int zp, uint8_t* q, int32_t* qsum);
  // y[i][r] = fp32(fp32(acc · scale_i) + bias_r) for m tokens; bias may be null (adds +0).
  void (*gemm_i8)(const tq_matrix& w, const tq_acts_i8& a, int m, const float* bias, float* y);
  void (*gemm_u8)(const tq_matrix& w, const tq_acts_u8& a, int m, const float* bias, float* y);
  // fp32 y[m][n] = x[m][k] · w[n][k]ᵀ + bias, in the summation order of kernels-ts.ts matmulF32.
  void (*matmul_f32)(const float* w, int n, int k, const float* x, int m, const float* bias, float* y);
};

// The per-ISA tables (each defined in its own file; only those built for this arch exist).
extern const tq_kernel_table tq_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const tq_kernel_table tq_table_avx2;
extern const tq_kernel_table tq_table_avx512vnni;
#endif
#if defined(__aarch64__)
extern const tq_kernel_table tq_table_neon_dotprod;
#endif

// The epilogue shared by all ISAs, in scalar form: fp32(fp32(acc · scale) + b). acc · scale is done in
// fp64 first (as JavaScript does) because |acc| may exceed 2^24; for |acc| ≤ 2^24 it equals the fp32
// product, which is what the SIMD epilogues use when cols · max|q| ≤ 2^24.
inline float tq_epilogue(int32_t acc, float scale, float b) {
  return static_cast<float>(static_cast<double>(acc) * static_cast<double>(scale)) + b;
}
// True when every |acc| of a matrix with these columns fits in 24 bits, so int → fp32 is exact.
// (|Σ t·q| ≤ cols·max|q| for i8; |Σ (q−zp)·t| ≤ cols·255 for u8.)
inline bool tq_acc_exact_f32(int cols, int max_abs_q) {
  return static_cast<long long>(cols) * max_abs_q <= (1LL << 24);
}

}  // namespace bitmar
