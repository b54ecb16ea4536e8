// The fused decoder step of bitmar-stream (docs/bitmar-stream.md §3, "Decoder"): one token through
// every decoder block, the final LayerNorm, the output layer and the greedy arg-max, in one call, so
// a generated token costs one crossing between JavaScript and native code. ISA-agnostic
// orchestration (like ternary/bitlinear.cc): the arithmetic comes from one isa_kernels table, and the
// result equals src/model/engine/forward.ts decodeRows (m = 1) on the TypeScript kernels bit for bit.
// No Node-API here: native/addon.cc builds a dec_model from the engine's arrays and keeps them alive.
#pragma once
#include <cstdint>
#include <vector>

#include "dispatch.h"
#include "ternary/bitlinear.h"

namespace bitmar {

// A BitLinear of the stream scheme (int8 per token): packed ternary W, s_w, optional bias [rows].
struct dec_linear {
  const tq_matrix* w;
  float scale;
  const float* bias;
};

struct dec_norm {
  const float* w;  // (d)
  const float* b;  // (d)
};

// One layer's sink + window KV cache: the arrays of src/model/engine/kv-cache.ts, shared (the step
// appends and re-rotates exactly as SinkWindowKvCache.append/rotate do).
struct dec_cache {
  float* keys;      // (S+W, d) pre-RoPE keys by physical row
  float* values;    // (S+W, d) values by physical row
  float* rotated;   // (S+W, d) RoPE'd keys in logical order
  int32_t* order;   // (S+W) logical row → physical row
  double* meta;     // [fed, head, rotated_valid]
};

struct dec_layer {
  dec_norm ln1, ln2, ln3;
  dec_linear q, k, v, o, xq, xo, up, down;
  const float* cond;  // (d) BL_cond(c) of the session's conditioning
  const float* xk;    // (x_capacity, d) BL_xattn_k(X)
  const float* xv;    // (x_capacity, d) BL_xattn_v(X)
  dec_cache cache;
};

struct dec_model {
  int d = 0, heads = 0, head_dim = 0, ffn = 0, vocab = 0, sinks = 0, window = 0, x_capacity = 0;
  double eps = 0;            // LayerNorm eps as JavaScript holds it (an fp64 number)
  const float* tok_emb = nullptr;  // (vocab, d) d.tok_emb
  dec_norm lnf{};
  dec_linear lm_head{};
  const float* rope_cos = nullptr;  // (S+W, hd/2) RopeTable.cos
  const float* rope_sin = nullptr;  // (S+W, hd/2)
  std::vector<dec_layer> layers;
  // scratch, sized by dec_model_init
  std::vector<float> h, xn, q, k, v, att, proj, hidden;
  tq_token_i8 token;  // one quantised activation row, reused
};

// Sizes the scratch buffers once (after the dimensions are set).
void dec_model_init(dec_model* m);

// Feeds `token` (< vocab) through a conditioned session whose X holds x_rows rows (≤ x_capacity):
// appends its key and value to every layer's cache, writes logits[vocab], returns their arg-max.
int dec_step(const isa_kernels& t, dec_model& m, int token, int x_rows, float* logits);

}  // namespace bitmar
