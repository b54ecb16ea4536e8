// Scalar pieces of the activation quantisers shared by every ISA file (so the scale and rounding
// steps are written once). Each mirrors one line of src/model/kernels-ts.ts; where JavaScript
// computes in fp64 and rounds once (Math.fround of a double expression), so does this code.
#pragma once
#include <algorithm>
#include <cmath>

namespace bitmar {

// s_x = fp32(max(a, 1e-5) / 127): 1e-5 is the fp64 constant and the division is fp64, as in JS.
inline float tq_scale_i8(float absmax) {
  return static_cast<float>(std::max(static_cast<double>(absmax), 1e-5) / 127.0);
}

// R1 clamps activations to ±1e6 before taking min/max (bitmar-reference-spec.md §4); 1e6 is exact in fp32.
inline float tq_clamp_x(float v) { return v > 1e6f ? 1e6f : (v < -1e6f ? -1e6f : v); }

// clamp(round_half_even(v), lo, hi) for integer bounds; clamping first is equivalent and keeps the
// conversion in range. nearbyint rounds half to even in the default FP environment (Node never changes it).
// NaN maps to 0 (non-finite input is outside the contract; this only keeps it well defined).
inline int tq_round_clamp(float v, float lo, float hi) {
  if (!(v == v)) return 0;
  v = v > hi ? hi : (v < lo ? lo : v);
  return static_cast<int>(std::nearbyint(v));
}

}  // namespace bitmar
