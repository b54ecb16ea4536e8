// Native cross-check of every ISA this CPU has against the scalar reference, bit for bit (memcmp of
// the fp32 outputs). Built by test/model/kernels.test.ts for aarch64 (neon-dotprod, run under
// qemu-aarch64); builds natively as well. No Node-API: links native/dispatch.cc and native/ternary/*.cc.
// Prints "PASS isas=… cases=N" and exits 0, or the first mismatch and exits 1.
#include <cstdio>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "ternary/bitlinear.h"
#include "ternary/format.h"

using namespace bitmar;

namespace {

uint32_t g_state = 0x12345678u;
uint32_t rnd() {  // xorshift32
  g_state ^= g_state << 13;
  g_state ^= g_state >> 17;
  g_state ^= g_state << 5;
  return g_state;
}
float rndf() { return static_cast<float>(static_cast<int32_t>(rnd())) / 2147483648.0f; }  // [−1, 1)

std::vector<uint8_t> random_codes(int rows, int cols) {
  const int rb = (cols + 3) / 4;
  std::vector<uint8_t> c(static_cast<size_t>(rows) * rb, 0);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < rb * 4; j++) {
      const int code = j < cols ? static_cast<int>(rnd() % 3) : 1;  // trailing codes are 1 (t = 0)
      c[static_cast<size_t>(r) * rb + j / 4] |= static_cast<uint8_t>(code << (2 * (j % 4)));
    }
  return c;
}

int g_cases = 0;

bool same(const std::vector<float>& a, const std::vector<float>& b, const char* what, const char* isa, int rows, int cols, int m) {
  g_cases++;
  if (std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0) return true;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      std::printf("FAIL %s isa=%s rows=%d cols=%d m=%d at %zu: scalar %.9g, %s %.9g\n", what, isa, rows, cols, m, i, a[i], isa, b[i]);
      break;
    }
  }
  return false;
}

// kind: 0 random, 1 all zero, 2 constant (u8 pass-through), 3 all positive (zp clamp), 4 wide range.
std::vector<float> make_x(int n, int kind) {
  std::vector<float> x(n);
  for (int i = 0; i < n; i++) {
    switch (kind) {
      case 1: x[i] = 0.0f; break;
      case 2: x[i] = 0.75f; break;
      case 3: x[i] = 2.0f + rndf(); break;
      case 4: x[i] = rndf() * (rnd() % 8 == 0 ? 3000.0f : 1.0f); break;
      default: x[i] = rndf() * 4.0f; break;
    }
  }
  return x;
}

bool run_case(int rows, int cols, int m, int kind) {
  std::vector<uint8_t> codes = random_codes(rows, cols);
  tq_matrix w{};
  long long bad;
  if (!tq_pack_t2row(codes.data(), rows, cols, &w, &bad)) {
    std::printf("FAIL pack rows=%d cols=%d\n", rows, cols);
    return false;
  }
  std::vector<float> x = make_x(m * cols, kind), bias(rows);
  for (float& b : bias) b = rndf();
  const float sw = 0.0123f;
  bool ok = true;
  const tq_kernel_table& ref = dispatch_table(dispatch_isa_count() - 1)->tq;
  for (int isa = 0; isa + 1 < dispatch_isa_count() && ok; isa++) {
    const tq_kernel_table& t = dispatch_table(isa)->tq;
    for (int with_bias = 0; with_bias < 2 && ok; with_bias++) {
      const float* bp = with_bias ? bias.data() : nullptr;
      std::vector<float> ya(static_cast<size_t>(m) * rows), yb(ya.size());
      tq_bitlinear_i8(ref, w, sw, x.data(), m, bp, ya.data());
      tq_bitlinear_i8(t, w, sw, x.data(), m, bp, yb.data());
      ok = ok && same(ya, yb, "bitlinear_i8", t.isa, rows, cols, m);
      tq_bitlinear_u8(ref, w, sw, x.data(), m, bp, ya.data());
      tq_bitlinear_u8(t, w, sw, x.data(), m, bp, yb.data());
      ok = ok && same(ya, yb, "bitlinear_u8", t.isa, rows, cols, m);
    }
  }
  tq_free(&w);
  return ok;
}

bool run_matmul(int n, int k, int m) {
  std::vector<float> w(static_cast<size_t>(n) * k), x(static_cast<size_t>(m) * k), b(n);
  for (float& v : w) v = rndf();
  for (float& v : x) v = rndf();
  for (float& v : b) v = rndf();
  const tq_kernel_table& ref = dispatch_table(dispatch_isa_count() - 1)->tq;
  for (int isa = 0; isa + 1 < dispatch_isa_count(); isa++) {
    const tq_kernel_table& t = dispatch_table(isa)->tq;
    std::vector<float> ya(static_cast<size_t>(m) * n), yb(ya.size());
    ref.matmul_f32(w.data(), n, k, x.data(), m, b.data(), ya.data());
    t.matmul_f32(w.data(), n, k, x.data(), m, b.data(), yb.data());
    if (!same(ya, yb, "matmul_f32", t.isa, n, k, m)) return false;
  }
  return true;
}

}  // namespace

int main() {
  if (dispatch_isa_count() < 2) {
    std::printf("SKIP only the scalar ISA is available on this CPU\n");
    return 0;
  }
  const int shapes[][2] = {{1, 1}, {3, 5}, {8, 16}, {7, 17}, {64, 64}, {128, 128}, {130, 64}, {33, 127}, {16, 129}, {12, 300}, {9, 1031}, {5, 70001}};
  const int ms[] = {1, 2, 3, 5, 16};
  bool ok = true;
  for (const auto& s : shapes)
    for (int m : ms)
      for (int kind = 0; kind < 5 && ok; kind++) {
        if (s[1] > 10000 && m > 1) continue;
        ok = run_case(s[0], s[1], m, kind);
      }
  const int mm[][3] = {{1, 1, 1}, {5, 7, 3}, {16, 192, 4}, {9, 17, 2}, {33, 64, 5}};
  for (const auto& s : mm) ok = ok && run_matmul(s[0], s[1], s[2]);
  if (!ok) return 1;
  std::printf("PASS isas=");
  for (int i = 0; i < dispatch_isa_count(); i++) std::printf("%s%s", i ? "," : "", dispatch_table(i)->isa);
  std::printf(" cases=%d\n", g_cases);
  return 0;
}
