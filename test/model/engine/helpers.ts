/**
 * Test helpers: tiny random bitmar-stream models, and an independent, cache-free reference of the
 * decoder (full causal recompute over an explicit token list with explicit positions). The
 * reference shares only the weights and the BitLinear kernel with the engine; its elementwise
 * formulas round at the same points as src/model/engine/ops.ts so the two agree to the bit.
 */
import assert from 'node:assert/strict';
import { BitmarError } from '../../../src/errors.js';
import { StreamEngine, type Conditioning } from '../../../src/model/engine/engine.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import type { GgufValue } from '../../../src/model/gguf/types.js';
import { writeGguf, type GgufTensorInput } from '../../../src/model/gguf/writer.js';
import type { Kernels } from '../../../src/model/kernels.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import type { BitLinearWeights, LayerNormWeights } from '../../../src/model/engine/weights.js';
import { makeRandomStreamModel, type RandomModelOptions } from '../../../tools/make-random-model.js';

/** Small and fast: 16×16 input, 4 patches, d=32, 2 heads, f=64. */
export const TINY_HPARAMS = {
  image_size: 16,
  patch_size: 8,
  embedding_length: 32,
  head_count: 2,
  feed_forward_length: 64,
  'vision.block_count': 1,
  'text.block_count': 1,
  'fusion.block_count': 1,
  'decoder.block_count': 2,
  'text.context_length': 8,
  'decoder.max_caption_tokens': 12,
  'attention.sink_count': 2,
  'attention.window_length': 6,
} as const;

export function tinyModelBytes(opts: RandomModelOptions = {}): Uint8Array {
  return makeRandomStreamModel({ seed: 7, ...opts, hparams: { ...TINY_HPARAMS, ...opts.hparams } });
}

export function tinyEngine(opts: RandomModelOptions = {}, kernels: Kernels = tsKernels): StreamEngine {
  return StreamEngine.fromReader(GgufReader.fromBytes(tinyModelBytes(opts), 'tiny.gguf'), kernels);
}

/** A deterministic RGB8 test image. */
export function testImage(width: number, height: number, seed: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

// ---- reference decoder -------------------------------------------------------------------------

function bl(k: Kernels, p: BitLinearWeights, x: Float32Array, m: number): Float32Array {
  const y = new Float32Array(m * p.w.rows);
  k.bitlinearI8(p.w, x, m, y, p.bias);
  return y;
}

function ln(x: Float32Array, m: number, d: number, p: LayerNormWeights, eps: number): Float32Array {
  const out = new Float32Array(m * d);
  for (let r = 0; r < m; r++) {
    const row = x.subarray(r * d, r * d + d);
    const mean = row.reduce((a, b) => a + b, 0) / d;
    const v = row.reduce((a, b) => a + (b - mean) * (b - mean), 0) / d;
    const inv = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < d; j++) out[r * d + j] = Math.fround((row[j]! - mean) * inv) * p.weight[j]! + p.bias[j]!;
  }
  return out;
}

/** NeoX RoPE of one row (heads × hd) at position pos, from freshly computed angles. */
function rope(x: Float32Array, off: number, heads: number, hd: number, pos: number, base: number): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const theta = Math.fround(pos * base ** ((-2 * i) / hd));
      const c = Math.fround(Math.cos(theta));
      const s = Math.fround(Math.sin(theta));
      const a = off + h * hd + i;
      const x1 = x[a]!;
      const x2 = x[a + half]!;
      x[a] = Math.fround(x1 * c) - Math.fround(x2 * s);
      x[a + half] = Math.fround(x2 * c) + Math.fround(x1 * s);
    }
  }
}

/** softmax(q·Kᵀ/√hd)·V for one query row over the given key rows (all heads). */
function attend(q: Float32Array, qr: number, K: Float32Array, Vv: Float32Array, keyRows: readonly number[], heads: number, hd: number, out: Float32Array): void {
  const d = heads * hd;
  for (let h = 0; h < heads; h++) {
    const sc = new Float32Array(keyRows.length);
    keyRows.forEach((kr, i) => {
      // the engine's summation order: four fp64 lanes, ((s0 + s1) + (s2 + s3)) — hd is a multiple of 4 here
      const s = [0, 0, 0, 0];
      for (let j = 0; j < hd; j++) s[j & 3] += q[qr * d + h * hd + j]! * K[kr * d + h * hd + j]!;
      sc[i] = Math.fround(s[0]! + s[1]! + (s[2]! + s[3]!)) / Math.sqrt(hd);
    });
    const max = Math.max(...sc);
    let sum = 0;
    for (let i = 0; i < sc.length; i++) {
      sc[i] = Math.exp(sc[i]! - max);
      sum += sc[i]!;
    }
    for (let i = 0; i < sc.length; i++) sc[i] = sc[i]! / sum;
    for (let j = 0; j < hd; j++) {
      let acc = 0;
      keyRows.forEach((kr, i) => (acc += sc[i]! * Vv[kr * d + h * hd + j]!));
      out[qr * d + h * hd + j] = acc;
    }
  }
}

/**
 * Cache-free decoder: feeds `tokens` with positions 0..n−1 and plain causal attention, conditioned
 * on `cond` (newest image + fused prompt + c). Returns logits [n, V].
 */
export function referenceDecoderLogits(engine: StreamEngine, cond: Conditioning, tokens: readonly number[]): Float32Array {
  const { dim: d, heads, headDim: hd, ropeBase, lnEps, patches: N, vocabSize: V } = engine.config;
  const k = engine.kernels;
  const w = engine.weights;
  const n = tokens.length;
  const T = cond.text.ids.length;
  const X = new Float32Array((N + 1 + T) * d);
  X.set(cond.images[cond.images.length - 1]!.V.subarray(0, (N + 1) * d));
  X.set(cond.fused, (N + 1) * d);
  const h = new Float32Array(n * d);
  tokens.forEach((id, r) => h.set(w.decTokEmb.subarray(id * d, id * d + d), r * d));
  const add = (y: Float32Array): void => {
    for (let i = 0; i < h.length; i++) h[i] = h[i]! + y[i]!;
  };
  for (const b of w.decoder) {
    const c = bl(k, b.cond, cond.c, 1);
    for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) h[r * d + j] = h[r * d + j]! + c[j]!;
    let xn = ln(h, n, d, b.ln1, lnEps);
    const q = bl(k, b.attn.q, xn, n);
    const kk = bl(k, b.attn.k, xn, n);
    const vv = bl(k, b.attn.v, xn, n);
    for (let r = 0; r < n; r++) {
      rope(q, r * d, heads, hd, r, ropeBase);
      rope(kk, r * d, heads, hd, r, ropeBase);
    }
    let att = new Float32Array(n * d);
    for (let r = 0; r < n; r++) attend(q, r, kk, vv, Array.from({ length: r + 1 }, (_, i) => i), heads, hd, att);
    add(bl(k, b.attn.o, att, n));
    xn = ln(h, n, d, b.ln2, lnEps);
    const xq = bl(k, b.xattn.q, xn, n);
    const xk = bl(k, b.xattn.k, X, N + 1 + T);
    const xv = bl(k, b.xattn.v, X, N + 1 + T);
    att = new Float32Array(n * d);
    for (let r = 0; r < n; r++) attend(xq, r, xk, xv, Array.from({ length: N + 1 + T }, (_, i) => i), heads, hd, att);
    add(bl(k, b.xattn.o, att, n));
    xn = ln(h, n, d, b.ln3, lnEps);
    const up = bl(k, b.ffn.up, xn, n);
    for (let i = 0; i < up.length; i++) {
      const x = up[i]!;
      up[i] = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }
    add(bl(k, b.ffn.down, up, n));
  }
  const out = bl(k, w.lmHead, ln(h, n, d, w.decLnF, lnEps), n);
  if (out.length !== n * V) throw new Error('bad logits size');
  return out;
}

/** max |a−b| / max(1, max|b|) */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let s = 1;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

export function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** A copy of a model whose lm_head row for <eos> is all zeros, so greedy decoding never stops early. */
export { withoutEos } from '../../../bench/model.js';

// ---- GGUF edits and load errors ----------------------------------------------------------------

/** Re-write a GGUF with edited metadata/tensors. */
export function rewrite(bytes: Uint8Array, edit: (meta: [string, GgufValue][], tensors: GgufTensorInput[]) => void): Uint8Array {
  const r = GgufReader.fromBytes(bytes);
  const meta = [...r.metadata.entries()];
  const tensors: GgufTensorInput[] = [...r.tensors.values()].map((t) => ({
    name: t.name,
    type: t.type,
    dims: t.dims,
    data: t.type === 'I8' ? r.tensorBytes(t.name).slice() : t.type === 'I32' ? r.tensorI32(t.name).slice() : r.tensorF32(t.name).slice(),
  }));
  edit(meta, tensors);
  return writeGguf(meta, tensors);
}

export function expectLoadError(bytes: Uint8Array, code: string, pattern: RegExp): void {
  assert.throws(
    () => StreamEngine.fromReader(GgufReader.fromBytes(bytes, 'm.gguf'), tsKernels),
    (e: unknown) => {
      assert.ok(e instanceof BitmarError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, pattern);
      return true;
    },
  );
}
