/**
 * The bitmar-r1 forward pass, step for step as bitmar-reference-spec.md §1–§4 writes it (§12 wins):
 * text encoder (bidirectional, key padding), vision MLP on a feature vector, fusion with the one-key
 * shortcut, episode, memory read, decoder driven by inputs_embeds, LayerNorm, lm_head.
 *
 * Every BitLinear goes through `kernels.bitlinearU8`, whose per-tensor activation range is taken over
 * everything the call is given: each call below passes the whole input tensor of the authors' call
 * (all batch rows and positions, padding included). LayerNorm, GELU, softmax and attention are fp32
 * TypeScript ops (ops.ts). Row-major layout: a batch of B sequences of T positions is N = B·T rows.
 */
import type { Kernels } from '../kernels.js';
import type { R1Config } from './config.js';
import type { R1Memory } from './memory.js';
import { attendRowMasked, geluExactInPlace, layerNorm, softmaxInPlace, valueRange } from './ops.js';
import type { R1BitLinear, R1Block, R1MemoryNet, R1Weights } from './weights.js';

/** What a forward step needs: hyperparameters, weights, kernels, scratch and the live memory. */
export interface R1Model {
  readonly config: R1Config;
  readonly weights: R1Weights;
  readonly kernels: Kernels;
  readonly scratch: R1Scratch;
  readonly mem: R1Memory;
}

/** Optional observer (parity tests): the named intermediate, its rows and width. */
export type R1Trace = (name: string, data: Float32Array, rows: number, width: number) => void;

/** Receives each decoder layer's K and V rows (the streaming mode's prefill). */
export type KvCapture = (layer: number, k: Float32Array, v: Float32Array, rows: number) => void;

const F = Math.fround;
const EPS8 = F(1e-8);
const F09 = F(0.9);
const F01 = F(0.1);

/** Grow-only scratch buffers for N rows. */
export class R1Scratch {
  capacity = 0;
  h = new Float32Array(0);
  xn = new Float32Array(0);
  q = new Float32Array(0);
  k = new Float32Array(0);
  v = new Float32Array(0);
  att = new Float32Array(0);
  proj = new Float32Array(0);
  u = new Float32Array(0);
  ffn = new Float32Array(0);
  readonly scores: Float32Array;
  readonly acc: Float64Array;

  constructor(private readonly c: R1Config) {
    this.scores = new Float32Array(Math.max(c.contextLength, c.memorySlots) + 1);
    this.acc = new Float64Array(c.dim);
  }

  ensure(rows: number): void {
    if (rows <= this.capacity) return;
    const n = Math.max(rows, this.capacity * 2, 8);
    const d = this.c.dim;
    const f = Math.max(this.c.encoderFfn, this.c.decoderFfn);
    for (const key of ['h', 'xn', 'q', 'k', 'v', 'att', 'proj', 'u'] as const) this[key] = new Float32Array(n * d);
    this.ffn = new Float32Array(n * f);
    this.capacity = n;
  }

  /** Attention scores for up to n keys. */
  scoresFor(n: number): Float32Array {
    return n <= this.scores.length ? this.scores : new Float32Array(n);
  }
}

/** y[m, out] = BitLinear(x[m, in]) with R1's per-tensor uint8 activations over all m rows. */
export function bl(M: R1Model, p: R1BitLinear, x: Float32Array, m: number, y: Float32Array): void {
  const nx = m * p.w.cols;
  const ny = m * p.w.rows;
  M.kernels.bitlinearU8(p.w, x.length === nx ? x : x.subarray(0, nx), m, y.length === ny ? y : y.subarray(0, ny), p.bias);
}

/** h[i] = fp32(h[i] + y[i]). */
function addInto(h: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) h[i] = h[i]! + y[i]!;
}

/**
 * One transformer block (spec §3.2) on h [B·T, d], in place: h += MHA(LN1 h) with the key-padding
 * mask (and causal when `causal`); u = LN2 h; h += LN_mlp(FC2(GELU(FC1 u)) + u).
 * `mask` is [B·T] (1 = token; null = all tokens).
 */
export function transformerBlock(
  M: R1Model,
  b: R1Block,
  h: Float32Array,
  B: number,
  T: number,
  mask: Uint8Array | null,
  causal: boolean,
  heads: number,
  ffnDim: number,
  kv?: { layer: number; capture: KvCapture },
): void {
  const d = M.config.dim;
  const eps = M.config.lnEps;
  const N = B * T;
  const s = M.scratch;
  s.ensure(N);
  const hd = d / heads;
  const scale = F(hd ** -0.5);
  layerNorm(h, N, d, b.norm1.weight, b.norm1.bias, eps, s.xn);
  bl(M, b.attn.q, s.xn, N, s.q);
  bl(M, b.attn.k, s.xn, N, s.k);
  bl(M, b.attn.v, s.xn, N, s.v);
  kv?.capture(kv.layer, s.k, s.v, N);
  const scores = s.scoresFor(T);
  for (let bi = 0; bi < B; bi++) {
    for (let t = 0; t < T; t++) {
      const r = bi * T + t;
      attendRowMasked(s.q, r * d, s.k, s.v, bi * T, causal ? t + 1 : T, mask, bi * T, heads, hd, scale, scores, s.acc, s.att, r * d);
    }
  }
  bl(M, b.attn.o, s.att, N, s.proj);
  addInto(h, s.proj, N * d);
  layerNorm(h, N, d, b.norm2.weight, b.norm2.bias, eps, s.u);
  bl(M, b.fc1, s.u, N, s.ffn);
  geluExactInPlace(s.ffn, N * ffnDim);
  bl(M, b.fc2, s.ffn, N, s.proj);
  addInto(s.proj, s.u, N * d);
  layerNorm(s.proj, N, d, b.mlpNorm.weight, b.mlpNorm.bias, eps, s.xn);
  addInto(h, s.xn, N * d);
}

/** A batch: B right-padded sequences of T positions. */
export interface R1Batch {
  readonly B: number;
  readonly T: number;
  /** [B·T] token ids. */
  readonly ids: Int32Array;
  /** [B·T] 1 = token, 0 = padding (right padding only); null = no padding. */
  readonly mask: Uint8Array | null;
  /** [B·visionInput] feature vectors (zeros where a row has none). */
  readonly vision: Float32Array;
  /** [B] 1 = the row has an image (vis kept and the BL_ve term added), 0 = text only (vis := 0). */
  readonly hasVision: Uint8Array;
}

/** Text encoder: Z [B·T, d] = LN_f(blocks(tok_emb[ids] + pos_emb[t])), bidirectional with key padding. */
export function encodeTextBatch(M: R1Model, batch: R1Batch, Z: Float32Array, trace?: R1Trace): void {
  const { dim: d, encoderHeads, encoderFfn, lnEps } = M.config;
  const w = M.weights;
  const { B, T, ids } = batch;
  const N = B * T;
  M.scratch.ensure(N);
  const h = new Float32Array(N * d);
  for (let r = 0; r < N; r++) {
    const eo = ids[r]! * d;
    const po = (r % T) * d;
    for (let j = 0; j < d; j++) h[r * d + j] = w.encTokEmb[eo + j]! + w.encPos[po + j]!;
  }
  w.encoder.forEach((blk) => {
    transformerBlock(M, blk, h, B, T, batch.mask, false, encoderHeads, encoderFfn);
    trace?.(blk.name, h, N, d);
  });
  layerNorm(h, N, d, w.encNorm.weight, w.encNorm.bias, lnEps, Z);
  trace?.('Z', Z, N, d);
}

/** Vision MLP on B feature vectors: vis [B, d]; rows without an image are then set to 0 (spec §3.4). */
export function encodeVisionBatch(M: R1Model, vision: Float32Array, hasVision: Uint8Array, B: number, vis: Float32Array, trace?: R1Trace): void {
  const { visionHidden: H, lnEps, dim: d } = M.config;
  const w = M.weights;
  let x = vision;
  const y = new Float32Array(B * H);
  for (const stage of w.vision) {
    bl(M, stage.lin, x, B, y);
    const out = new Float32Array(B * H);
    layerNorm(y, B, H, stage.ln.weight, stage.ln.bias, lnEps, out);
    geluExactInPlace(out, B * H);
    x = out;
  }
  bl(M, w.visionOut, x, B, vis);
  for (let b = 0; b < B; b++) if (hasVision[b] === 0) vis.fill(0, b * d, (b + 1) * d);
  trace?.('vis', vis, B, d);
}

/**
 * Fusion (spec §3.5) with the one-key shortcut: F = BL_tp(Z); per layer j
 * F ← LN_j(F + BL_out_j(BL_v_j(BL_vp(vis)))) (softmax over the single vision key is exactly 1, and
 * every row of the out-projection's input is the same, so its per-tensor range is unchanged);
 * Fused = BL_fo(F) [B·T, d].
 */
export function fuseBatch(M: R1Model, Z: Float32Array, vis: Float32Array, B: number, T: number, fused: Float32Array, trace?: R1Trace): void {
  const { dim: d, lnEps } = M.config;
  const w = M.weights;
  const N = B * T;
  const f = new Float32Array(N * d);
  bl(M, w.fusionTextProj, Z, N, f);
  const p = new Float32Array(B * d);
  bl(M, w.fusionVisionProj, vis, B, p);
  const pv = new Float32Array(B * d);
  const a = new Float32Array(B * d);
  for (const layer of w.fusion) {
    bl(M, layer.attn.v, p, B, pv);
    bl(M, layer.attn.o, pv, B, a);
    for (let r = 0; r < N; r++) {
      const ao = Math.floor(r / T) * d;
      for (let j = 0; j < d; j++) f[r * d + j] = f[r * d + j]! + a[ao + j]!;
    }
    layerNorm(f, N, d, layer.ln.weight, layer.ln.bias, lnEps, f);
  }
  bl(M, w.fusionOut, f, N, fused);
  trace?.('fused', fused, N, d);
}

/**
 * Episode (spec §3.6, §12.8): e = BL_te(mean_T Z) (+ BL_ve(vis) on rows with an image; BL_ve runs
 * on the whole batch with text-only rows' vis zeroed). The mean includes padded positions.
 */
export function episodeBatch(M: R1Model, Z: Float32Array, vis: Float32Array, hasVision: Uint8Array, B: number, T: number, e: Float32Array, trace?: R1Trace): void {
  const d = M.config.dim;
  const w = M.weights;
  const mz = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let t = 0; t < T; t++) sum += Z[(b * T + t) * d + j]!;
      mz[b * d + j] = sum / T;
    }
  }
  bl(M, w.textToEpisode, mz, B, e);
  if (hasVision.some((v) => v !== 0)) {
    const ve = new Float32Array(B * d);
    bl(M, w.visionToEpisode, vis, B, ve);
    for (let b = 0; b < B; b++) if (hasVision[b] !== 0) for (let j = 0; j < d; j++) e[b * d + j] = e[b * d + j]! + ve[b * d + j]!;
  }
  trace?.('episode', e, B, d);
}

/** out = net(x) + x for m rows: BL0 → LN → GELU → BL3, then the residual. */
function memoryNet(M: R1Model, net: R1MemoryNet, x: Float32Array, m: number, out: Float32Array): void {
  const d = M.config.dim;
  const t = new Float32Array(m * d);
  bl(M, net.l0, x, m, t);
  layerNorm(t, m, d, net.ln.weight, net.ln.bias, M.config.lnEps, t);
  geluExactInPlace(t, m * d);
  bl(M, net.l3, t, m, out);
  addInto(out, x, m * d);
}

/** Kᴹ = KN(M) + M and Vᴹ = VN(M) + M [K, d], computed once per memory content. */
export function memoryKeysValues(M: R1Model): { keys: Float32Array; values: Float32Array } {
  const mem = M.mem;
  if (mem.keys === null || mem.values === null) {
    const K = mem.slots;
    const d = M.config.dim;
    const keys = new Float32Array(K * d);
    const values = new Float32Array(K * d);
    memoryNet(M, M.weights.memKey, mem.memory, K, keys);
    memoryNet(M, M.weights.memValue, mem.memory, K, values);
    mem.keys = keys;
    mem.values = values;
  }
  return { keys: mem.keys, values: mem.values! };
}

/**
 * Memory read (spec §3.7 mode "read", §12.9) for B episodes e [B, d]: r [B, d] and the weights
 * w [B, K]. With `update`, usage += Σ_b w and importance ← 0.9·importance + 0.1·(Σ_b w + 1e-8),
 * after r is computed (every row sees the pre-update importance).
 */
export function memoryRead(M: R1Model, e: Float32Array, B: number, r: Float32Array, w: Float32Array, update: boolean, trace?: R1Trace): void {
  const d = M.config.dim;
  const mem = M.mem;
  const K = mem.slots;
  const eh = new Float32Array(B * d);
  if (mem.updateCount > 10) {
    for (let b = 0; b < B; b++) for (let j = 0; j < d; j++) eh[b * d + j] = F(e[b * d + j]! - mem.mean[j]!) / F(mem.std[j]! + EPS8);
  } else {
    eh.set(e.subarray(0, B * d));
  }
  const q = new Float32Array(B * d);
  memoryNet(M, M.weights.memQuery, eh, B, q);
  const { keys, values } = memoryKeysValues(M);
  const tau = Math.min(Math.max(mem.temperature, F(0.1)), 10);
  const denom = F(F(Math.sqrt(d)) * tau);
  const logImp = new Float32Array(K);
  for (let k = 0; k < K; k++) logImp[k] = Math.log(F(mem.importance[k]! + EPS8));
  for (let b = 0; b < B; b++) {
    const wo = b * K;
    for (let k = 0; k < K; k++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += q[b * d + j]! * keys[k * d + j]!;
      w[wo + k] = F(F(dot) / denom) + logImp[k]!;
    }
    softmaxInPlace(w, wo, K);
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += w[wo + k]! * values[k * d + j]!;
      r[b * d + j] = acc;
    }
  }
  trace?.('w', w, B, K);
  trace?.('r', r, B, d);
  if (update) {
    for (let k = 0; k < K; k++) {
      let ws = 0;
      for (let b = 0; b < B; b++) ws = F(ws + w[b * K + k]!);
      mem.usage[k] = mem.usage[k]! + ws;
      mem.importance[k] = F(F09 * mem.importance[k]!) + F(F01 * F(ws + EPS8));
    }
  }
}

/** Which logits a forward computes: every position, the last of each row, or none (memory only). */
export type LogitRows = 'all' | 'last' | 'none';

/** Everything a forward produced (rows are B·T unless noted). */
export interface R1ForwardResult {
  readonly B: number;
  readonly T: number;
  /** 'all': [B·T, V]; 'last': [B, V] (position T−1 of each row); 'none': empty. */
  readonly logits: Float32Array;
  readonly Z: Float32Array;
  /** [B, d] */
  readonly vis: Float32Array;
  readonly fused: Float32Array;
  /** [B, d] episodes and [B, d] memory reads, [B, K] read weights. */
  readonly episode: Float32Array;
  readonly r: Float32Array;
  readonly w: Float32Array;
}

/**
 * Decoder (spec §3.8): c = BL_m2d(r); X = BL_dip(Fused + c); h = X + dec_pos; causal × key-padding
 * blocks; LN_f; lm_head. For 'last', the lm_head's activation range still spans all B·T rows: the
 * kernel is given the B last rows plus one synthetic row holding that range's min and max, which
 * quantises the B rows exactly as the full call would (spec §4).
 */
export function decodeBatch(
  M: R1Model,
  fused: Float32Array,
  r: Float32Array,
  mask: Uint8Array | null,
  B: number,
  T: number,
  rows: 'all' | 'last',
  trace?: R1Trace,
  kv?: KvCapture,
): Float32Array {
  const { dim: d, decoderHeads, decoderFfn, lnEps, vocabSize: V } = M.config;
  const w = M.weights;
  const N = B * T;
  M.scratch.ensure(N);
  const c = new Float32Array(B * d);
  bl(M, w.memoryToDecoder, r, B, c);
  trace?.('c', c, B, d);
  const x = new Float32Array(N * d);
  for (let i = 0; i < N; i++) {
    const co = Math.floor(i / T) * d;
    for (let j = 0; j < d; j++) x[i * d + j] = fused[i * d + j]! + c[co + j]!;
  }
  const h = new Float32Array(N * d);
  bl(M, w.decoderInputProj, x, N, h);
  trace?.('dec_in', h, N, d);
  for (let i = 0; i < N; i++) {
    const po = (i % T) * d;
    for (let j = 0; j < d; j++) h[i * d + j] = h[i * d + j]! + w.decPos[po + j]!;
  }
  w.decoder.forEach((blk, l) => {
    transformerBlock(M, blk, h, B, T, mask, true, decoderHeads, decoderFfn, kv ? { layer: l, capture: kv } : undefined);
    trace?.(blk.name, h, N, d);
  });
  const xn = new Float32Array(N * d);
  layerNorm(h, N, d, w.decNorm.weight, w.decNorm.bias, lnEps, xn);
  if (rows === 'all' || N <= B + 1) {
    const logits = new Float32Array(N * V);
    bl(M, w.lmHead, xn, N, logits);
    if (rows === 'all') return logits;
    const last = new Float32Array(B * V);
    for (let b = 0; b < B; b++) last.set(logits.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
    return last;
  }
  const [lo, hi] = valueRange(xn, N * d);
  const sel = new Float32Array((B + 1) * d);
  for (let b = 0; b < B; b++) sel.set(xn.subarray((b * T + T - 1) * d, (b * T + T) * d), b * d);
  sel.fill(lo, B * d, (B + 1) * d);
  sel[B * d] = hi;
  const out = new Float32Array((B + 1) * V);
  bl(M, w.lmHead, sel, B + 1, out);
  return out.subarray(0, B * V);
}

/** The whole forward of one batch (memory read with side effects when `updateMemory`). */
export function forwardBatch(M: R1Model, batch: R1Batch, rows: LogitRows, updateMemory: boolean, trace?: R1Trace, kv?: KvCapture): R1ForwardResult {
  const { dim: d } = M.config;
  const { B, T } = batch;
  const N = B * T;
  const Z = new Float32Array(N * d);
  encodeTextBatch(M, batch, Z, trace);
  const vis = new Float32Array(B * d);
  encodeVisionBatch(M, batch.vision, batch.hasVision, B, vis, trace);
  const episode = new Float32Array(B * d);
  episodeBatch(M, Z, vis, batch.hasVision, B, T, episode, trace);
  const r = new Float32Array(B * d);
  const w = new Float32Array(B * M.mem.slots);
  memoryRead(M, episode, B, r, w, updateMemory, trace);
  if (rows === 'none') return { B, T, logits: new Float32Array(0), Z, vis, fused: new Float32Array(0), episode, r, w };
  const fused = new Float32Array(N * d);
  fuseBatch(M, Z, vis, B, T, fused, trace);
  const logits = decodeBatch(M, fused, r, batch.mask, B, T, rows, trace, kv);
  trace?.('logits', logits, rows === 'all' ? N : B, M.config.vocabSize);
  return { B, T, logits, Z, vis, fused, episode, r, w };
}
