/**
 * The bitmar-stream forward pass, step for step as docs/bitmar-stream.md §3 writes it.
 * BitLinears, the fp32 stem, LayerNorm, GELU, softmax and attention go through the Kernels
 * interface; residual adds, RoPE and the small vector ops are the TypeScript ops of ops.ts. A
 * single generated token takes the backend's fused decoder step when it has one (one native call
 * for the whole token, the same bits). Every function works in the RunState buffers; the only
 * outputs that escape are written into arrays the caller passes.
 */
import type { DecoderStep, DecoderStepLinear, DecoderStepSpec, Kernels } from '../kernels.js';
import { cutPatches } from '../preprocess.js';
import type { StreamConfig } from './config.js';
import { conv3x3OutSize } from './conv.js';
import { addInPlace, addRowInPlace, l2Normalize, meanRows } from './ops.js';
import type { RunState } from './run-state.js';
import type { DecoderSession } from './session.js';
import type { AttentionWeights, BitLinearWeights, EncoderBlockWeights, FfnWeights, FusionBlockWeights, StreamWeights } from './weights.js';

/** What a forward step needs: hyperparameters, weights, kernels and scratch. */
export interface Model {
  readonly config: StreamConfig;
  readonly weights: StreamWeights;
  readonly kernels: Kernels;
  readonly state: RunState;
}

/** Optional per-step observer (parity tests): called with the named intermediate, its rows and width. */
export type Trace = (name: string, data: Float32Array, rows: number, width: number) => void;

function bl(M: Model, p: BitLinearWeights, x: Float32Array, m: number, y: Float32Array): void {
  M.kernels.bitlinearI8(p.w, x, m, y, p.bias);
}

/** FFN: out = BL_down(GELU(BL_up(x))), m rows. Uses state.ffn (or dffn) as the hidden buffer. */
function ffn(M: Model, p: FfnWeights, x: Float32Array, m: number, hidden: Float32Array, out: Float32Array): void {
  bl(M, p.up, x, m, hidden);
  M.kernels.gelu(hidden, m * M.config.ffnDim);
  bl(M, p.down, hidden, m, out);
}

/**
 * Bidirectional Attn(xq, xkv) without a mask (encoders, fusion and the decoder's cross-attention
 * over precomputed K/V): out = BL_o(softmax(QKᵀ/√hd)·V). q, k, v hold the projected rows.
 */
function attendAll(M: Model, p: AttentionWeights, q: Float32Array, mq: number, k: Float32Array, v: Float32Array, mkv: number, att: Float32Array, out: Float32Array): void {
  const { heads, headDim } = M.config;
  M.kernels.attention(q, mq, k, null, v, null, mkv, heads, headDim, att);
  bl(M, p.o, att, mq, out);
}

/** One vision/text encoder block on h (n rows, in place): h += Attn(LN1 h, LN1 h); h += FFN(LN2 h). */
export function encoderBlock(M: Model, b: EncoderBlockWeights, h: Float32Array, n: number): void {
  const { dim: d, lnEps } = M.config;
  const s = M.state;
  M.kernels.layerNorm(h, n, d, b.ln1.weight, b.ln1.bias, lnEps, s.xn);
  bl(M, b.attn.q, s.xn, n, s.q);
  bl(M, b.attn.k, s.xn, n, s.k);
  bl(M, b.attn.v, s.xn, n, s.v);
  attendAll(M, b.attn, s.q, n, s.k, s.v, n, s.att, s.proj);
  addInPlace(h, s.proj, n * d);
  M.kernels.layerNorm(h, n, d, b.ln2.weight, b.ln2.bias, lnEps, s.xn);
  ffn(M, b.ffn, s.xn, n, s.ffn, s.proj);
  addInPlace(h, s.proj, n * d);
}

/**
 * The convolutional stem (docs §3) on the normalised image x, HWC [S, S, 3]:
 * C1o = GELU(conv3x3(x; v.stem1, stride 1)) [S, S, C1], C2o = GELU(conv3x3(C1o; v.stem2, stride 2))
 * [S/2, S/2, C2], cut into (P/2)×(P/2) patches → `patches` [N, C2·(P/2)²]. Each layer is one
 * Kernels.conv3x3Gelu call (the native backend: a direct convolution with the GELU fused, the same
 * bits as im2col + matmulF32 + gelu), into the RunState stem buffers. Traces the fixture keys (test/fixtures/
 * stream/random-tiny-conv.json) 'v.stem/conv1' (C1o, S² rows), 'v.stem/conv2' (C2o, (S/2)² rows)
 * and 'v.stem/y' (the patches, N rows).
 */
export function visionStem(M: Model, x: Float32Array, patches: Float32Array, trace?: Trace): void {
  const { imageSize: S, patchSize: P } = M.config;
  const stem = M.weights.stem;
  if (stem === null) throw new Error('visionStem: this model has the linear patch stem');
  const s = M.state;
  const { conv1, conv2 } = stem;
  M.kernels.conv3x3Gelu(x, S, S, conv1.inChannels, conv1.weight, conv1.bias, conv1.outChannels, 1, s.stem1);
  trace?.('v.stem/conv1', s.stem1, S * S, conv1.outChannels);
  const half = conv3x3OutSize(S, 2);
  M.kernels.conv3x3Gelu(s.stem1, S, S, conv2.inChannels, conv2.weight, conv2.bias, conv2.outChannels, 2, s.stem2);
  trace?.('v.stem/conv2', s.stem2, half * half, conv2.outChannels);
  cutPatches(s.stem2, half, P / 2, conv2.outChannels, patches);
  trace?.('v.stem/y', patches, M.config.patches, M.config.patchDim);
}

/**
 * Vision encoder on the patch vectors [N, patchDim] (preprocessed patches, or the stem's):
 * writes V [(N+1), d] and the unit episode vector e [d].
 */
export function encodeVision(M: Model, patches: Float32Array, V: Float32Array, e: Float32Array, trace?: Trace): void {
  const { dim: d, patches: N, patchDim } = M.config;
  const w = M.weights;
  const s = M.state;
  // x = patches @ Wᵀ + b (fp32 patch embedding), into proj rows 0..N−1
  M.kernels.matmulF32(w.patchEmbedWeight, d, patchDim, patches, N, s.proj, w.patchEmbedBias);
  // h = concat(cls, x) + pos_emb
  for (let j = 0; j < d; j++) s.h[j] = w.cls[j]! + w.visionPos[j]!;
  for (let i = 0; i < N * d; i++) s.h[d + i] = s.proj[i]! + w.visionPos[d + i]!;
  trace?.('v.embed', s.h, N + 1, d);
  w.vision.forEach((b, l) => {
    encoderBlock(M, b, s.h, N + 1);
    trace?.(`v.blk.${l}`, s.h, N + 1, d);
  });
  // V = LN_f(h); e = normalize(BL_img_proj(V[0]))
  M.kernels.layerNorm(s.h, N + 1, d, w.visionLnF.weight, w.visionLnF.bias, M.config.lnEps, V);
  bl(M, w.imgProj, V, 1, s.vecA);
  l2Normalize(s.vecA, d, e);
}

/** Text encoder on T ids (1 ≤ T ≤ Tmax, each < V): writes Z [T, d] and the unit text vector u [d]. */
export function encodeText(M: Model, ids: readonly number[], Z: Float32Array, u: Float32Array, trace?: Trace): void {
  const { dim: d } = M.config;
  const w = M.weights;
  const s = M.state;
  const T = ids.length;
  // h = tok_emb[ids] + pos_emb[0..T−1]
  for (let t = 0; t < T; t++) {
    const eo = ids[t]! * d;
    for (let j = 0; j < d; j++) s.h[t * d + j] = w.textTokEmb[eo + j]! + w.textPos[t * d + j]!;
  }
  trace?.('t.embed', s.h, T, d);
  w.text.forEach((b, l) => {
    encoderBlock(M, b, s.h, T);
    trace?.(`t.blk.${l}`, s.h, T, d);
  });
  // Z = LN_f(h); u = normalize(BL_txt_proj(mean_T Z))
  M.kernels.layerNorm(s.h, T, d, w.textLnF.weight, w.textLnF.bias, M.config.lnEps, Z);
  meanRows(Z, T, d, s.vecA);
  bl(M, w.txtProj, s.vecA, 1, s.vecB);
  l2Normalize(s.vecB, d, u);
}

/** One fusion block on F (T rows, in place) over the patch tokens V [(N+1), d]: F += Attn(LN_q F, V); F += FFN(LN2 F). */
export function fusionBlock(M: Model, b: FusionBlockWeights, h: Float32Array, T: number, V: Float32Array): void {
  const { dim: d, patches: N, lnEps } = M.config;
  const s = M.state;
  M.kernels.layerNorm(h, T, d, b.ln1.weight, b.ln1.bias, lnEps, s.xn);
  bl(M, b.xattn.q, s.xn, T, s.q);
  bl(M, b.xattn.k, V, N + 1, s.k);
  bl(M, b.xattn.v, V, N + 1, s.v);
  attendAll(M, b.xattn, s.q, T, s.k, s.v, N + 1, s.att, s.proj);
  addInPlace(h, s.proj, T * d);
  M.kernels.layerNorm(h, T, d, b.ln2.weight, b.ln2.bias, lnEps, s.xn);
  ffn(M, b.ffn, s.xn, T, s.ffn, s.proj);
  addInPlace(h, s.proj, T * d);
}

/** Fusion: F = Z; per block F += Attn(LN_q F, V); F += FFN(LN2 F); Fused = LN_f(F) [T, d]. */
export function fuse(M: Model, Z: Float32Array, T: number, V: Float32Array, fused: Float32Array, trace?: Trace): void {
  const { dim: d, lnEps } = M.config;
  const w = M.weights;
  const s = M.state;
  s.h.set(Z.subarray(0, T * d));
  w.fusion.forEach((b, l) => {
    fusionBlock(M, b, s.h, T, V);
    trace?.(`f.blk.${l}`, s.h, T, d);
  });
  M.kernels.layerNorm(s.h, T, d, w.fusionLnF.weight, w.fusionLnF.bias, lnEps, fused);
}

/**
 * Episodic memory read over K live unit slots M [K, d]: w = softmax(scale·M e),
 * r = Σ w_k M_k (0 when K = 0), m = BL_mem_proj(r) [d].
 */
export function memoryRead(M: Model, e: Float32Array, slots: Float32Array, K: number, m: Float32Array): void {
  const { dim: d } = M.config;
  const s = M.state;
  const r = s.vecA;
  r.fill(0);
  if (K > 0) {
    s.ensureMemScores(K);
    const sc = s.memScores;
    const scale = M.weights.memScale;
    for (let k = 0; k < K; k++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += slots[k * d + j]! * e[j]!;
      sc[k] = scale * Math.fround(dot);
    }
    M.kernels.softmax(sc, 0, K);
    const acc = s.memAcc;
    acc.fill(0);
    for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) acc[j] += sc[k]! * slots[k * d + j]!;
    for (let j = 0; j < d; j++) r[j] = acc[j]!;
  }
  bl(M, M.weights.memProj, r, 1, m);
}

/** Context c = m + mean_T(Fused) [d]. */
export function context(M: Model, m: Float32Array, fused: Float32Array, T: number, c: Float32Array): void {
  const d = M.config.dim;
  meanRows(fused, T, d, c);
  for (let j = 0; j < d; j++) c[j] = m[j]! + c[j]!;
}

/**
 * Condition a decoder session on one frame: X = concat(V, Fused) [N+1+T, d], per layer the
 * cross-attention K/V of X and BL_cond_l(c). Computed once per frame, reused by every token.
 */
export function condition(M: Model, sess: DecoderSession, V: Float32Array, fused: Float32Array, T: number, c: Float32Array): void {
  const { dim: d, patches: N } = M.config;
  const rows = N + 1 + T;
  sess.x.set(V.subarray(0, (N + 1) * d), 0);
  sess.x.set(fused.subarray(0, T * d), (N + 1) * d);
  sess.xLength = rows;
  M.weights.decoder.forEach((b, l) => {
    bl(M, b.xattn.k, sess.x, rows, sess.xk[l]!);
    bl(M, b.xattn.v, sess.x, rows, sess.xv[l]!);
    bl(M, b.cond, c, 1, sess.cond[l]!);
  });
  sess.isConditioned = true;
}

/**
 * Feed m decoder tokens ids[off..off+m) through the conditioned session, appending their keys
 * and values to the caches, and write logits: all m rows to state.logits rows 0..m−1 when
 * allLogits, else only the last token's to row 0. When the m tokens do not fit in the caches
 * without eviction they are fed one at a time (each sees exactly its own sinks + window).
 * state.logitsArgmax is the arg-max of row 0 when the fused step computed it, else −1.
 */
export function decode(M: Model, sess: DecoderSession, ids: ArrayLike<number>, off: number, m: number, allLogits: boolean, trace?: Trace): void {
  const cache0 = sess.caches[0]!;
  M.state.ensureDecoderRows(m);
  M.state.logitsArgmax = -1;
  if (m > 1 && cache0.length + m > cache0.capacity) {
    for (let r = 0; r < m; r++) decodeRows(M, sess, ids, off + r, 1, allLogits || r === m - 1, allLogits ? r : 0, trace);
    return;
  }
  decodeRows(M, sess, ids, off, m, allLogits, 0, trace);
}

/** decode() without the eviction split; logits go to state.logits from row outRow on. */
function decodeRows(M: Model, sess: DecoderSession, ids: ArrayLike<number>, off: number, m: number, allLogits: boolean, outRow: number, trace?: Trace): void {
  const { dim: d, vocabSize: V, lnEps } = M.config;
  const w = M.weights;
  const s = M.state;
  if (!sess.isConditioned) throw new Error('decoder session used before condition()');
  for (let r = 0; r < m; r++) {
    const id = ids[off + r]!;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`token id ${id} is outside the vocabulary (size ${V})`);
  }
  // One untraced token: the backend's fused step when it has one (the same bits as the ops below).
  const step = m === 1 && trace === undefined ? fusedStep(M, sess) : null;
  if (step !== null) {
    const best = step.step(ids[off]!, sess.xLength, outRow === 0 ? s.logits : s.logits.subarray(outRow * V));
    if (outRow === 0) s.logitsArgmax = best;
    return;
  }
  const h = s.dh;
  // h = d.tok_emb[y]
  for (let r = 0; r < m; r++) {
    const eo = ids[off + r]! * d;
    for (let j = 0; j < d; j++) h[r * d + j] = w.decTokEmb[eo + j]!;
  }
  for (let l = 0; l < w.decoder.length; l++) {
    decoderBlock(M, sess, l, h, m);
    trace?.(`d.blk.${l}`, h, m, d);
  }
  // logits = BL_lm_head(LN_f(h)), no bias; all rows, or only the last
  const first = allLogits ? 0 : m - 1;
  const rows = m - first;
  M.kernels.layerNorm(first === 0 ? h : h.subarray(first * d), rows, d, w.decLnF.weight, w.decLnF.bias, lnEps, s.dxn);
  bl(M, w.lmHead, s.dxn, rows, outRow === 0 ? s.logits : s.logits.subarray(outRow * V));
}

/** The session's fused decoder step for these kernels (built once per session), or null when the backend has none. */
function fusedStep(M: Model, sess: DecoderSession): DecoderStep | null {
  const k = M.kernels;
  if (k.createDecoderStep === undefined) return null;
  if (sess.fused === null || sess.fused.kernels !== k) sess.fused = { kernels: k, step: k.createDecoderStep(decoderStepSpec(M, sess)) };
  return sess.fused.step;
}

/** What the fused step reads and writes: the decoder weights and this session's buffers, in place. */
export function decoderStepSpec(M: Model, sess: DecoderSession): DecoderStepSpec {
  const c = M.config;
  const w = M.weights;
  const lin = (p: BitLinearWeights): DecoderStepLinear => ({ w: p.w, bias: p.bias });
  return {
    dim: c.dim, heads: c.heads, headDim: c.headDim, ffnDim: c.ffnDim, vocab: c.vocabSize,
    sinks: sess.sinks, window: sess.window, xCapacity: sess.x.length / c.dim, eps: c.lnEps,
    tokEmb: w.decTokEmb, lnF: w.decLnF, lmHead: lin(w.lmHead), ropeCos: sess.rope.cos, ropeSin: sess.rope.sin,
    layers: w.decoder.map((b, l) => {
      const cache = sess.caches[l]!;
      return {
        ln1: b.ln1, ln2: b.ln2, ln3: b.ln3,
        q: lin(b.attn.q), k: lin(b.attn.k), v: lin(b.attn.v), o: lin(b.attn.o), xq: lin(b.xattn.q), xo: lin(b.xattn.o),
        up: lin(b.ffn.up), down: lin(b.ffn.down),
        cond: sess.cond[l]!, xk: sess.xk[l]!, xv: sess.xv[l]!,
        keys: cache.keys, values: cache.values, rotated: cache.rotated, order: cache.order, meta: cache.meta,
      };
    }),
  };
}

/**
 * Decoder block l on h (m rows, in place, the tokens that follow the ones already in the layer's
 * cache): conditioning, causal RoPE self-attention through the sink + window cache, cross-attention
 * over the session's X, FFN. The m rows must fit in the cache without eviction when m > 1.
 */
export function decoderBlock(M: Model, sess: DecoderSession, l: number, h: Float32Array, m: number): void {
  const { dim: d, heads, headDim, lnEps } = M.config;
  const s = M.state;
  const b = M.weights.decoder[l]!;
  const cache = sess.caches[l]!;
  if (m > 1 && cache.length + m > cache.capacity) {
    throw new RangeError(`${m} rows do not fit in the cache (${cache.length} of ${cache.capacity} used): feed them one at a time`);
  }
  s.ensureDecoderRows(m);
  // h += BL_cond_l(c): per-layer conditioning on memory + fused context
  addRowInPlace(h, m, d, sess.cond[l]!);
  // h += SelfAttn_RoPE(LN1 h): keys cached before RoPE, positions = cache slot order, causal
  M.kernels.layerNorm(h, m, d, b.ln1.weight, b.ln1.bias, lnEps, s.dxn);
  bl(M, b.attn.q, s.dxn, m, s.dq);
  bl(M, b.attn.k, s.dxn, m, s.dk);
  bl(M, b.attn.v, s.dxn, m, s.dv);
  for (let r = 0; r < m; r++) s.dpos[r] = cache.append(s.dk, r * d, s.dv, r * d);
  cache.rotate(sess.rope, heads);
  for (let r = 0; r < m; r++) {
    const pos = s.dpos[r]!;
    sess.rope.apply(s.dq, r * d, heads, pos, s.dq, r * d);
    const q = m === 1 ? s.dq : s.dq.subarray(r * d, r * d + d);
    const att = m === 1 ? s.datt : s.datt.subarray(r * d, r * d + d);
    M.kernels.attention(q, 1, cache.rotated, null, cache.values, cache.order, pos + 1, heads, headDim, att);
  }
  bl(M, b.attn.o, s.datt, m, s.dproj);
  addInPlace(h, s.dproj, m * d);
  // h += Attn(LN2 h, X): cross-attention over the K/V of X computed at conditioning
  M.kernels.layerNorm(h, m, d, b.ln2.weight, b.ln2.bias, lnEps, s.dxn);
  bl(M, b.xattn.q, s.dxn, m, s.dq);
  attendAll(M, b.xattn, s.dq, m, sess.xk[l]!, sess.xv[l]!, sess.xLength, s.datt, s.dproj);
  addInPlace(h, s.dproj, m * d);
  // h += FFN(LN3 h)
  M.kernels.layerNorm(h, m, d, b.ln3.weight, b.ln3.bias, lnEps, s.dxn);
  ffn(M, b.ffn, s.dxn, m, s.dffn, s.dproj);
  addInPlace(h, s.dproj, m * d);
}
