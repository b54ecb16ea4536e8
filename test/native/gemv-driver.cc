// Driver for callgrind (bench/callgrind.ts, test/bench/callgrind-guard.test.ts): packs one random
// ternary matrix and runs the int8 BitLinear of one ISA `iters` times on M tokens. Links
// native/dispatch.cc and the kernel families; no Node-API.
//   gemv-driver ISA ROWS COLS M ITERS
// callgrind counts instructions inside tq_bitlinear_i8 (quantise + kernel) and the ISA's gemm_i8
// (--toggle-collect); instructions per MAC = that count / (ROWS·COLS·M·ITERS).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dispatch.h"
#include "ternary/bitlinear.h"
#include "ternary/format.h"

using namespace bitmar;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s ISA ROWS COLS M ITERS\n", argv[0]);
    return 2;
  }
  const int isa = dispatch_find(argv[1]);
  const int rows = std::atoi(argv[2]), cols = std::atoi(argv[3]), m = std::atoi(argv[4]), iters = std::atoi(argv[5]);
  if (isa < 0 || rows < 1 || cols < 1 || m < 1 || iters < 1) {
    std::fprintf(stderr, "bad arguments (ISA %s available: %s)\n", argv[1], isa < 0 ? "no" : "yes");
    return 2;
  }
  const int rb = (cols + 3) / 4;
  std::vector<uint8_t> codes(static_cast<size_t>(rows) * rb);
  uint32_t s = 12345;
  for (size_t i = 0; i < codes.size(); i++) {
    uint8_t b = 0;
    for (int k = 0; k < 4; k++) {
      s = s * 1103515245u + 12345u;
      b |= static_cast<uint8_t>(((s >> 16) % 3) << (2 * k));
    }
    codes[i] = b;
  }
  tq_matrix w{};
  long long bad;
  if (!tq_pack_t2row(codes.data(), rows, cols, &w, &bad)) return 1;
  std::vector<float> x(static_cast<size_t>(m) * cols), y(static_cast<size_t>(m) * rows);
  for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>((static_cast<int>(i * 37 % 101) - 50) * 0.06);
  const isa_kernels& t = *dispatch_table(isa);
  double sink = 0;
  for (int it = 0; it < iters; it++) {
    tq_bitlinear_i8(t.tq, w, 0.01f, x.data(), m, nullptr, y.data());
    sink += y[it % y.size()];
  }
  std::printf("isa=%s rows=%d cols=%d m=%d iters=%d checksum=%g\n", t.isa, rows, cols, m, iters, sink);
  tq_free(&w);
  return 0;
}
