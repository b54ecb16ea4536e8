// Repacking t2-row-v1 (docs/bitmar-stream.md §5) into the tq2x8 runtime layout (format.h), once at load.
#include <cstdlib>
#include <cstring>

#include "format.h"

namespace bitmar {

namespace {
// Byte offset and bit shift of code (r, j) inside the tq2x8 buffer (format.h).
inline void tq_locate(const tq_matrix& w, int r, int j, size_t* byte, int* shift) {
  const int g = r / kTqGroupRows, rr = r % kTqGroupRows;
  const int b = j / kTqBlockCols, jj = j % kTqBlockCols;
  const int k = jj / 4, e = jj % 4;
  *byte = (static_cast<size_t>(g) * w.nblocks + b) * kTqBlockBytes + 4 * rr + e;
  *shift = 2 * k;
}
}  // namespace

bool tq_pack_t2row(const uint8_t* codes, int rows, int cols, tq_matrix* out, long long* bad_index) {
  *bad_index = -1;  // stays -1 on an allocation failure
  tq_matrix w{};
  w.rows = rows;
  w.cols = cols;
  w.groups = (rows + kTqGroupRows - 1) / kTqGroupRows;
  w.nblocks = (cols + kTqBlockCols - 1) / kTqBlockCols;
  const size_t bytes = static_cast<size_t>(w.groups) * w.nblocks * kTqBlockBytes;
  w.data = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  w.row_tsum = static_cast<int32_t*>(std::calloc(static_cast<size_t>(w.groups) * kTqGroupRows, sizeof(int32_t)));
  if (!w.data || !w.row_tsum) {
    tq_free(&w);
    return false;
  }
  std::memset(w.data, 0, bytes);  // padding codes are 0 (see format.h)
  const size_t row_bytes = (static_cast<size_t>(cols) + 3) / 4;
  for (int r = 0; r < rows; r++) {
    const uint8_t* src = codes + static_cast<size_t>(r) * row_bytes;
    int32_t tsum = 0;
    for (int j = 0; j < cols; j++) {
      const int c = (src[j >> 2] >> (2 * (j & 3))) & 3;
      if (c == 3) {
        *bad_index = static_cast<long long>(r) * cols + j;
        tq_free(&w);
        return false;
      }
      size_t byte;
      int shift;
      tq_locate(w, r, j, &byte, &shift);
      w.data[byte] |= static_cast<uint8_t>(c << shift);
      tsum += c - 1;
    }
    w.row_tsum[r] = tsum;
  }
  *out = w;
  return true;
}

void tq_free(tq_matrix* w) {
  std::free(w->data);
  std::free(w->row_tsum);
  w->data = nullptr;
  w->row_tsum = nullptr;
}

int tq_code_at(const tq_matrix& w, int r, int j) {
  size_t byte;
  int shift;
  tq_locate(w, r, j, &byte, &shift);
  return (w.data[byte] >> shift) & 3;
}

}  // namespace bitmar
