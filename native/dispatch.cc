// CPU feature detection (cpuid through __builtin_cpu_supports, which also checks that the OS saves
// the AVX/AVX-512 state; getauxval on aarch64) and the resolved ISA tables (dispatch.h).
#include "dispatch.h"

#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace bitmar {

namespace {

struct tq_isa_set {
  std::vector<isa_kernels> tables;  // available, best first, null entries resolved
};

// Every ISA built for this architecture, best first, with whether this CPU runs it. Families an ISA
// does not implement stay null here (value-initialised) and are filled from the ISA below.
struct tq_candidate {
  isa_kernels table;
  bool supported;
};

std::vector<tq_candidate> tq_candidates() {
  std::vector<tq_candidate> c;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool vnni = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  isa_kernels k512{};
  k512.isa = "avx512-vnni";
  k512.tq = tq_table_avx512vnni;
  k512.act = act_table_avx512vnni;
  k512.attn = attn_table_avx512vnni;  // the other entries and families: AVX2's
  k512.cnv = cnv_table_avx512vnni;
  c.push_back({k512, vnni});
  c.push_back({{"avx2", tq_table_avx2, act_table_avx2, nrm_table_avx2, attn_table_avx2, smp_table_avx2, img_table_avx2, cnv_table_avx2}, avx2});
#endif
#if defined(__aarch64__)
#if defined(__linux__)
  const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  const bool dotprod = false;
#endif
  isa_kernels neon{};
  neon.isa = "neon-dotprod";
  neon.tq = tq_table_neon_dotprod;  // the other families: scalar, but conv (plain NEON)
  neon.cnv = cnv_table_neon;
  c.push_back({neon, dotprod});
#endif
  c.push_back({{"scalar", tq_table_scalar, act_table_scalar, nrm_table_scalar, attn_table_scalar, smp_table_scalar, img_table_scalar, cnv_table_scalar}, true});
  return c;
}

template <typename F>
void tq_fill(F*& entry, F* lower) {
  if (!entry) entry = lower;
}

// Fills every null entry of `t` from `lower` (the next resolved ISA down).
void tq_fill_from(isa_kernels* t, const isa_kernels& lower) {
  tq_fill(t->tq.quant_row_i8, lower.tq.quant_row_i8);
  tq_fill(t->tq.minmax_f32, lower.tq.minmax_f32);
  tq_fill(t->tq.quant_row_u8, lower.tq.quant_row_u8);
  tq_fill(t->tq.gemm_i8, lower.tq.gemm_i8);
  tq_fill(t->tq.gemm_u8, lower.tq.gemm_u8);
  tq_fill(t->tq.matmul_f32, lower.tq.matmul_f32);
  tq_fill(t->act.gelu_f32, lower.act.gelu_f32);
  tq_fill(t->act.softmax_f32, lower.act.softmax_f32);
  tq_fill(t->act.exp_f64, lower.act.exp_f64);
  tq_fill(t->act.tanh_f64, lower.act.tanh_f64);
  tq_fill(t->nrm.layer_norm_f32, lower.nrm.layer_norm_f32);
  tq_fill(t->attn.attend_f32, lower.attn.attend_f32);
  tq_fill(t->attn.rope_f32, lower.attn.rope_f32);
  tq_fill(t->smp.argmax_f32, lower.smp.argmax_f32);
  tq_fill(t->img.resize_area_u8, lower.img.resize_area_u8);
  tq_fill(t->cnv.conv3x3_gelu_f32, lower.cnv.conv3x3_gelu_f32);
}

const tq_isa_set& tq_isas() {
  static const tq_isa_set set = [] {
    tq_isa_set s;
    std::vector<tq_candidate> c = tq_candidates();
    std::vector<isa_kernels> resolved(c.size());
    for (size_t i = c.size(); i-- > 0;) {
      resolved[i] = c[i].table;
      if (i + 1 < c.size()) tq_fill_from(&resolved[i], resolved[i + 1]);
    }
    for (size_t i = 0; i < c.size(); i++) {
      if (c[i].supported) s.tables.push_back(resolved[i]);
    }
    return s;
  }();
  return set;
}

}  // namespace

int dispatch_isa_count() { return static_cast<int>(tq_isas().tables.size()); }

const isa_kernels* dispatch_table(int index) {
  const tq_isa_set& s = tq_isas();
  return index >= 0 && index < static_cast<int>(s.tables.size()) ? &s.tables[index] : nullptr;
}

int dispatch_find(const std::string& name) {
  const std::string n = name == "neon" ? "neon-dotprod" : name;
  const tq_isa_set& s = tq_isas();
  for (size_t i = 0; i < s.tables.size(); i++) {
    if (n == s.tables[i].isa) return static_cast<int>(i);
  }
  return -1;
}

int dispatch_default(std::string* error) {
  const char* env = std::getenv("BITMAR_KERNELS");
  if (!env || !*env) return 0;
  const int i = dispatch_find(env);
  if (i < 0) {
    std::string avail;
    for (int k = 0; k < dispatch_isa_count(); k++) avail += (k ? ", " : "") + std::string(dispatch_table(k)->isa);
    *error = "BITMAR_KERNELS=" + std::string(env) + " is not supported by this build or CPU (available: " + avail +
             "); unset it or pick one of those";
  }
  return i;
}

const char* dispatch_arch() {
#if defined(__x86_64__) || defined(_M_X64)
  return "x64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "other";
#endif
}

double dispatch_clock_ghz(long iters) {
  // Thread CPU time, not wall time: on a shared machine the thread is often descheduled.
  auto now = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  uint64_t x = 0;
  const double t0 = now();
  for (long i = 0; i < iters; i++) {
    // Four adds, each waiting on the previous one: 4 cycles per iteration on any out-of-order core
    // (the loop counter runs alongside on other ALUs).
#if defined(__x86_64__)
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
#elif defined(__aarch64__)
    asm volatile("add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1" : "+r"(x));
#else
    return 0.0;
#endif
  }
  const double s = now() - t0;
  return s > 0 ? 4.0 * static_cast<double>(iters) / s / 1e9 : 0.0;
}

}  // namespace bitmar
