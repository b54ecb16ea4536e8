// The fused decoder step (decoder-step.h). Each block below is one line of decoderBlock in
// src/model/engine/forward.ts; the comments name the step as docs/bitmar-stream.md §3 writes it.
#include "decoder-step.h"

#include <algorithm>
#include <cstring>

#include "ternary/bitlinear.h"

namespace bitmar {

namespace {

void dec_bl(const isa_kernels& t, const dec_linear& p, const float* x, float* y) {
  tq_bitlinear_i8(t.tq, *p.w, p.scale, x, 1, p.bias, y);
}

// A BitLinear of an already quantised token (Q, K and V share LN1's output).
void dec_bl_q(const isa_kernels& t, const dec_linear& p, const tq_token_i8& a, float* y) {
  tq_gemv_i8_groups(t.tq, *p.w, p.scale, a, 0, p.w->groups, p.bias, y);
}

// Rows of the output layer per chunk: 16 KB of logits, still in L1 when the arg-max reads them.
constexpr int kDecHeadChunkGroups = 512;

// logits = BL_lm_head(x) in chunks of rows, each followed by its arg-max; returns the arg-max of all
// (the first index of the max, NaN skipped, as sample.h — a chunk that starts with NaN is rescanned).
int dec_head_argmax(const isa_kernels& t, const dec_linear& p, const float* x, float* logits, tq_token_i8* a) {
  const tq_matrix& w = *p.w;
  tq_quantize_i8(t.tq, x, w.cols, tq_cols_padded(w), a);
  int best = 0;
  float bv = 0.0f;
  for (int g0 = 0; g0 < w.groups; g0 += kDecHeadChunkGroups) {
    const int g1 = std::min(w.groups, g0 + kDecHeadChunkGroups);
    tq_gemv_i8_groups(t.tq, w, p.scale, *a, g0, g1, p.bias, logits);
    const int r0 = g0 * kTqGroupRows, n = std::min(g1 * kTqGroupRows, w.rows) - r0;
    if (g0 == 0) {
      best = t.smp.argmax_f32(logits, n);
      bv = logits[best];
      continue;
    }
    const int i = t.smp.argmax_f32(logits + r0, n);
    if (logits[r0 + i] > bv) {
      best = r0 + i;
      bv = logits[best];
    } else if (!(logits[r0 + i] == logits[r0 + i])) {  // NaN first in the chunk: scan it as the reference does
      for (int j = r0; j < r0 + n; j++) {
        if (logits[j] > bv) {
          bv = logits[j];
          best = j;
        }
      }
    }
  }
  return best;
}

void dec_add(float* h, const float* y, int n) {
  for (int i = 0; i < n; i++) h[i] = h[i] + y[i];
}

// SinkWindowKvCache.append: store the token's pre-RoPE key and value, evicting the oldest window
// entry when full; returns the token's position (its logical row).
int dec_cache_append(const dec_model& m, dec_cache& c, const float* k, const float* v) {
  const int cap = m.sinks + m.window;
  const double fed = c.meta[0];
  int row, pos;
  if (fed < cap) {
    row = static_cast<int>(fed);
    pos = row;
    c.order[pos] = row;
  } else {
    // Evict: the oldest window entry's row takes the new token; every window position shifts by one.
    const int head = static_cast<int>(c.meta[1]);
    row = m.sinks + head;
    const int next = (head + 1) % m.window;
    c.meta[1] = next;
    pos = cap - 1;
    for (int i = 0; i < m.window; i++) c.order[m.sinks + i] = m.sinks + (next + i) % m.window;
    c.meta[2] = std::min(c.meta[2], static_cast<double>(m.sinks));
  }
  std::memcpy(c.keys + static_cast<size_t>(row) * m.d, k, sizeof(float) * m.d);
  std::memcpy(c.values + static_cast<size_t>(row) * m.d, v, sizeof(float) * m.d);
  c.meta[0] = fed + 1;
  return pos;
}

// SinkWindowKvCache.rotate: RoPE every logical row from rotated_valid on at its current position.
void dec_cache_rotate(const isa_kernels& t, const dec_model& m, dec_cache& c) {
  const int n = static_cast<int>(std::min(c.meta[0], static_cast<double>(m.sinks + m.window)));
  const int half = m.head_dim / 2;
  for (int i = static_cast<int>(c.meta[2]); i < n; i++) {
    t.attn.rope_f32(c.keys + static_cast<size_t>(c.order[i]) * m.d, m.heads, m.head_dim, m.rope_cos + static_cast<size_t>(i) * half,
                    m.rope_sin + static_cast<size_t>(i) * half, c.rotated + static_cast<size_t>(i) * m.d);
  }
  c.meta[2] = n;
}

void dec_block(const isa_kernels& t, dec_model& m, dec_layer& L, int x_rows) {
  const int d = m.d, half = m.head_dim / 2;
  float* h = m.h.data();
  // h += BL_cond_l(c)
  dec_add(h, L.cond, d);
  // h += SelfAttn_RoPE(LN1 h): keys cached before RoPE, positions = cache slot order
  t.nrm.layer_norm_f32(h, 1, d, L.ln1.w, L.ln1.b, m.eps, m.xn.data());
  tq_quantize_i8(t.tq, m.xn.data(), d, tq_cols_padded(*L.q.w), &m.token);
  dec_bl_q(t, L.q, m.token, m.q.data());
  dec_bl_q(t, L.k, m.token, m.k.data());
  dec_bl_q(t, L.v, m.token, m.v.data());
  const int pos = dec_cache_append(m, L.cache, m.k.data(), m.v.data());
  dec_cache_rotate(t, m, L.cache);
  t.attn.rope_f32(m.q.data(), m.heads, m.head_dim, m.rope_cos + static_cast<size_t>(pos) * half, m.rope_sin + static_cast<size_t>(pos) * half,
                  m.q.data());
  t.attn.attend_f32({m.q.data(), 1, L.cache.rotated, nullptr, L.cache.values, L.cache.order, pos + 1, m.heads, m.head_dim, m.att.data()});
  dec_bl(t, L.o, m.att.data(), m.proj.data());
  dec_add(h, m.proj.data(), d);
  // h += Attn(LN2 h, X): cross-attention over the K/V of X computed at conditioning
  t.nrm.layer_norm_f32(h, 1, d, L.ln2.w, L.ln2.b, m.eps, m.xn.data());
  dec_bl(t, L.xq, m.xn.data(), m.q.data());
  t.attn.attend_f32({m.q.data(), 1, L.xk, nullptr, L.xv, nullptr, x_rows, m.heads, m.head_dim, m.att.data()});
  dec_bl(t, L.xo, m.att.data(), m.proj.data());
  dec_add(h, m.proj.data(), d);
  // h += FFN(LN3 h) = BL_down(GELU(BL_up(LN3 h)))
  t.nrm.layer_norm_f32(h, 1, d, L.ln3.w, L.ln3.b, m.eps, m.xn.data());
  dec_bl(t, L.up, m.xn.data(), m.hidden.data());
  t.act.gelu_f32(m.hidden.data(), m.ffn);
  dec_bl(t, L.down, m.hidden.data(), m.proj.data());
  dec_add(h, m.proj.data(), d);
}

}  // namespace

void dec_model_init(dec_model* m) {
  for (auto* b : {&m->h, &m->xn, &m->q, &m->k, &m->v, &m->att, &m->proj}) b->assign(m->d, 0.0f);
  m->hidden.assign(m->ffn, 0.0f);
}

int dec_step(const isa_kernels& t, dec_model& m, int token, int x_rows, float* logits) {
  // h = d.tok_emb[y]
  std::memcpy(m.h.data(), m.tok_emb + static_cast<size_t>(token) * m.d, sizeof(float) * m.d);
  for (dec_layer& L : m.layers) dec_block(t, m, L, x_rows);
  // logits = BL_lm_head(LN_f(h)), no bias; the greedy pick
  t.nrm.layer_norm_f32(m.h.data(), 1, m.d, m.lnf.w, m.lnf.b, m.eps, m.xn.data());
  return dec_head_argmax(t, m.lm_head, m.xn.data(), logits, &m.token);
}

}  // namespace bitmar
