// Runtime ISA dispatch for the kernel families (ternary, activation, norm, attention, sample, image, conv): CPU features are read once, and every ISA this build
// and this CPU support gets one resolved table of function pointers (null entries filled from the next
// ISA down, then scalar). Tables are immutable after the first call; no Node-API here.
#pragma once
#include <string>

#include "activation/activation.h"
#include "attention/attention.h"
#include "conv/conv.h"
#include "image/image.h"
#include "norm/norm.h"
#include "sample/sample.h"
#include "ternary/format.h"

namespace bitmar {

// One ISA's kernels, every family (a null entry of a family table is filled from the next ISA down).
struct isa_kernels {
  const char* isa;
  tq_kernel_table tq;      // ternary/
  act_kernel_table act;    // activation/
  nrm_kernel_table nrm;    // norm/
  attn_kernel_table attn;  // attention/
  smp_kernel_table smp;    // sample/
  img_kernel_table img;    // image/
  cnv_kernel_table cnv;    // conv/
};

// Number of available ISAs (≥ 1: scalar is always last).
int dispatch_isa_count();
// Resolved table of available ISA `index` (0 = best); null when out of range.
const isa_kernels* dispatch_table(int index);
// Index of the available ISA called `name` ("neon" is accepted for "neon-dotprod"); −1 when absent.
int dispatch_find(const std::string& name);
// The ISA to use by default: BITMAR_KERNELS when set, else 0 (the best). When BITMAR_KERNELS names an
// ISA that this build or CPU lacks, returns −1 and puts a one-line explanation in *error.
int dispatch_default(std::string* error);
// The CPU architecture this was built for: "x64", "arm64" or "other".
const char* dispatch_arch();
// Core clock in GHz: a dependent chain of 1-cycle integer adds (`iters`·4 cycles) over thread CPU time.
// For benchmarks: % of peak = GMAC/s ÷ (GHz · int8 MACs per cycle). 0 where no chain is written.
double dispatch_clock_ghz(long iters);

}  // namespace bitmar
