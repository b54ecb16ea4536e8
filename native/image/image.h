// The image family: the exact area (box-filter) resize of an RGB8 frame to the model's square input,
// the twin of src/model/preprocess.ts resizeAreaU8 (docs/bitmar-stream.md §3 "Preprocess", steps 1–2):
// every ISA gives the TypeScript bytes exactly (same fp64 products and sums in the same order,
// -ffp-contract=off, then floor(v + 0.5)). No Node-API here.
#pragma once
#include <cstdint>

namespace bitmar {

struct img_kernel_table {
  // out[size·size·3] = resizeAreaU8(rgb, width, height, size): rgb is width×height RGB8, tightly
  // packed; width, height, size ≥ 1. Returns false (out untouched) when scratch memory runs out.
  bool (*resize_area_u8)(const uint8_t* rgb, int width, int height, int size, uint8_t* out);
};

extern const img_kernel_table img_table_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const img_kernel_table img_table_avx2;
#endif

}  // namespace bitmar
