/**
 * The pure TypeScript kernels: the portable fallback and the executable definition of the numerics in
 * docs/bitmar-stream.md §2 (stream scheme, int8 per token) and bitmar-reference-spec.md §4/§12.11
 * (R1 scheme, uint8 per tensor). The native addon matches these bit for bit; every step below that
 * rounds to fp32 says so with Math.fround (or a store into a Float32Array), and every step without it
 * is exact (or done in fp64 on purpose, where the native code does the same fp64 operation; Math.exp
 * and Math.tanh have native twins in native/activation/v8-math.h).
 */
import type { Kernels, TernaryMatrix } from './kernels.js';
import { conv3x3OutSize, im2col3x3, im2col3x3Size } from './engine/conv.js';
import { resizeAreaU8 } from './preprocess.js';

/** The TypeScript backend's private layout: one int8 per weight (t ∈ {−1,0,1}), row-major. */
interface TsPacked {
  readonly kind: 'ts-ternary';
  /** (rows, cols) ternary values. */
  readonly t: Int8Array;
}

/** Round to nearest, ties to even (torch.round, C nearbyint in the default mode). Finite input. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +∞
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Bytes of one `t2-row-v1` row: 4 codes per byte (docs/bitmar-stream.md §5). */
export function t2RowBytes(cols: number): number {
  return (cols + 3) >> 2;
}

function checkDims(rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1 || !Number.isSafeInteger(cols) || cols < 1) {
    throw new RangeError(`ternary matrix dims must be positive integers, got rows=${rows} cols=${cols}`);
  }
}

/** Decodes canonical t2-row-v1 codes to int8 t; throws RangeError on a wrong length or a code of 3. */
export function unpackT2Row(codes: Uint8Array, rows: number, cols: number): Int8Array {
  checkDims(rows, cols);
  const rb = t2RowBytes(cols);
  if (codes.length !== rows * rb) {
    throw new RangeError(`t2-row-v1 codes: expected ${rows}×${rb} = ${rows * rb} bytes, got ${codes.length}`);
  }
  const t = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const c = (codes[r * rb + (j >> 2)]! >> (2 * (j & 3))) & 3;
      if (c === 3) throw new RangeError(`t2-row-v1 code 3 (invalid) at row ${r}, column ${j}`);
      t[r * cols + j] = c - 1;
    }
  }
  return t;
}

function tsPacked(w: TernaryMatrix): TsPacked {
  const p = w.packed as Partial<TsPacked> | null;
  if (p === null || typeof p !== 'object' || p.kind !== 'ts-ternary' || !(p.t instanceof Int8Array)) {
    throw new TypeError('this TernaryMatrix was not packed by the TypeScript kernels');
  }
  return p as TsPacked;
}

function checkIo(w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array, bias: Float32Array | null | undefined): void {
  if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`m must be a positive integer, got ${m}`);
  if (x.length < m * w.cols) throw new RangeError(`x holds ${x.length} floats, need m·cols = ${m * w.cols}`);
  if (y.length < m * w.rows) throw new RangeError(`y holds ${y.length} floats, need m·rows = ${m * w.rows}`);
  if (bias && bias.length < w.rows) throw new RangeError(`bias holds ${bias.length} floats, need rows = ${w.rows}`);
}

/** y[r] = fround(fround(acc·sc) + b) for one output row of token i, the shared epilogue of both schemes. */
function ternaryRows(t: Int8Array, rows: number, cols: number, q: Int16Array, sc: number, bias: Float32Array | null | undefined, y: Float32Array, yOff: number): void {
  for (let r = 0; r < rows; r++) {
    let acc = 0; // exact: |acc| ≤ 255·cols < 2^31
    const o = r * cols;
    for (let j = 0; j < cols; j++) acc += q[j]! * t[o + j]!;
    y[yOff + r] = Math.fround(Math.fround(acc * sc) + (bias ? bias[r]! : 0));
  }
}

function packTernary(codes: Uint8Array, rows: number, cols: number, scale: number): TernaryMatrix {
  if (!Number.isFinite(scale)) throw new RangeError(`ternary scale must be finite, got ${scale}`);
  const packed: TsPacked = { kind: 'ts-ternary', t: unpackT2Row(codes, rows, cols) };
  return { rows, cols, scale: Math.fround(scale), packed };
}

function bitlinearI8(w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void {
  checkIo(w, x, m, y, bias);
  const { t } = tsPacked(w);
  const { rows, cols } = w;
  const q = new Int16Array(cols);
  for (let i = 0; i < m; i++) {
    const xo = i * cols;
    let a = 0;
    for (let j = 0; j < cols; j++) a = Math.max(a, Math.abs(x[xo + j]!));
    const sx = Math.fround(Math.max(a, 1e-5) / 127); // fp64 max and divide, one rounding
    for (let j = 0; j < cols; j++) {
      const v = roundHalfEven(Math.fround(x[xo + j]! / sx));
      q[j] = v > 127 ? 127 : v < -127 ? -127 : v;
    }
    ternaryRows(t, rows, cols, q, Math.fround(sx * w.scale), bias, y, i * rows);
  }
}

function bitlinearU8(w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void {
  checkIo(w, x, m, y, bias);
  const { t } = tsPacked(w);
  const { rows, cols } = w;
  const n = m * cols;
  const clampX = (v: number): number => (v > 1e6 ? 1e6 : v < -1e6 ? -1e6 : v);
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = clampX(x[j]!);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi - lo < 1e-8) {
    // Pass-through (no quantisation): acc = Σ t·x in fp32, left to right, then one multiply by s_w.
    for (let i = 0; i < m; i++) {
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        for (let j = 0; j < cols; j++) {
          const tv = t[r * cols + j]!;
          if (tv !== 0) acc = Math.fround(acc + tv * clampX(x[i * cols + j]!));
        }
        y[i * rows + r] = Math.fround(Math.fround(acc * w.scale) + (bias ? bias[r]! : 0));
      }
    }
    return;
  }
  const s = Math.fround((hi - lo) / 255);
  const zpR = roundHalfEven(Math.fround(-lo / s));
  const zp = zpR < 0 ? 0 : zpR > 255 ? 255 : zpR; // literal clamp (§12.11): clips one-signed tensors
  const sc = Math.fround(s * w.scale);
  const q = new Int16Array(cols); // q − zp ∈ [−255, 255]
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < cols; j++) {
      const v = roundHalfEven(Math.fround(Math.fround(clampX(x[i * cols + j]!) / s) + zp));
      q[j] = (v < 0 ? 0 : v > 255 ? 255 : v) - zp;
    }
    ternaryRows(t, rows, cols, q, sc, bias, y, i * rows);
  }
}

/**
 * fp32 y[m, n] = x[m, k]·wᵀ + bias with a fixed summation order (so every backend agrees bit for bit):
 * eight lane sums p_l = Σ_{i ≡ l mod 8} fround(x_i·w_i), each add rounded, then
 * ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)), then + bias. No fused multiply-add anywhere.
 */
function matmulF32(w: Float32Array, n: number, k: number, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void {
  for (const [name, v] of [['n', n], ['k', k], ['m', m]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (w.length < n * k) throw new RangeError(`w holds ${w.length} floats, need n·k = ${n * k}`);
  if (x.length < m * k) throw new RangeError(`x holds ${x.length} floats, need m·k = ${m * k}`);
  if (y.length < m * n) throw new RangeError(`y holds ${y.length} floats, need m·n = ${m * n}`);
  if (bias && bias.length < n) throw new RangeError(`bias holds ${bias.length} floats, need n = ${n}`);
  const f = Math.fround;
  const p = new Float64Array(8);
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < n; r++) {
      p.fill(0);
      const xo = i * k;
      const wo = r * k;
      for (let j = 0; j < k; j++) p[j & 7] = f(p[j & 7]! + f(x[xo + j]! * w[wo + j]!));
      const s = f(f(f(p[0]! + p[4]!) + f(p[2]! + p[6]!)) + f(f(p[1]! + p[5]!) + f(p[3]! + p[7]!)));
      y[i * n + r] = f(s + (bias ? bias[r]! : 0));
    }
  }
}

// ---- fp32 ops: each reads fp32 inputs, computes in fp64 (JS numbers) in a fixed left-to-right order
// and rounds to fp32 when it stores into a Float32Array, so batched and single-row runs agree bit for bit.

/** out[r] = (x[r] − mean) / √(var + eps) · w + b for m rows of width d (biased variance); out may alias x. */
export function layerNorm(x: Float32Array, m: number, d: number, w: Float32Array, b: Float32Array, eps: number, out: Float32Array): void {
  for (let r = 0; r < m; r++) {
    const o = r * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += x[o + j]!;
    const mean = sum / d;
    let ss = 0;
    for (let j = 0; j < d; j++) {
      const t = x[o + j]! - mean;
      ss += t * t;
    }
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let j = 0; j < d; j++) out[o + j] = Math.fround((x[o + j]! - mean) * inv) * w[j]! + b[j]!;
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** x ← 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) on the first n entries. */
export function geluInPlace(x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    x[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v)));
  }
}

/** x[off..off+n] ← softmax (max-subtracted, fp64 sum). */
export function softmaxInPlace(x: Float32Array, off: number, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[off + i]! > max) max = x[off + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[off + i]! - max);
    x[off + i] = e;
    sum += x[off + i]!;
  }
  for (let i = 0; i < n; i++) x[off + i] = x[off + i]! / sum;
}

/**
 * Multi-head attention of one query row over keys 0..nKeys−1:
 * out[h] = softmax(q_h·K_hᵀ / √hd) · V_h, heads concatenated (width d = heads·hd).
 * Key i is row kRows[i] of k and value i row vRows[i] of v (rows of width d); null means row i. Scratch: `scores` ≥ nKeys floats,
 * `acc` ≥ hd doubles. Sums run over keys in logical order.
 */
export function attendRow(
  q: Float32Array,
  qOff: number,
  k: Float32Array,
  kRows: Int32Array | null,
  v: Float32Array,
  vRows: Int32Array | null,
  nKeys: number,
  heads: number,
  headDim: number,
  scores: Float32Array,
  acc: Float64Array,
  out: Float32Array,
  outOff: number,
): void {
  const d = heads * headDim;
  const scale = Math.sqrt(headDim);
  const hd4 = headDim & ~3; // the hot loops run 4 lanes at a time (1.5× faster in V8), then the tail
  for (let h = 0; h < heads; h++) {
    const ho = h * headDim;
    const qo = qOff + ho;
    // scores_i = fp32(q·k_i) / √hd, the dot in fp64 (4 partial sums, then ((s0+s1)+(s2+s3)))
    for (let i = 0; i < nKeys; i++) {
      const ko = (kRows === null ? i : kRows[i]!) * d + ho;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let j = 0;
      for (; j < hd4; j += 4) {
        s0 += q[qo + j]! * k[ko + j]!;
        s1 += q[qo + j + 1]! * k[ko + j + 1]!;
        s2 += q[qo + j + 2]! * k[ko + j + 2]!;
        s3 += q[qo + j + 3]! * k[ko + j + 3]!;
      }
      for (; j < headDim; j++) s0 += q[qo + j]! * k[ko + j]!;
      scores[i] = Math.fround(s0 + s1 + (s2 + s3)) / scale;
    }
    softmaxInPlace(scores, 0, nKeys);
    // out_h = Σ_i p_i v_i, in key order, fp64
    acc.fill(0, 0, headDim);
    for (let i = 0; i < nKeys; i++) {
      const p = scores[i]!;
      const vo = (vRows === null ? i : vRows[i]!) * d + ho;
      let j = 0;
      for (; j < hd4; j += 4) {
        acc[j] += p * v[vo + j]!;
        acc[j + 1] += p * v[vo + j + 1]!;
        acc[j + 2] += p * v[vo + j + 2]!;
        acc[j + 3] += p * v[vo + j + 3]!;
      }
      for (; j < headDim; j++) acc[j] += p * v[vo + j]!;
    }
    for (let j = 0; j < headDim; j++) out[outOff + ho + j] = acc[j]!;
  }
}

// Scratch of `attention` (grown once, never per call in steady state).
let attnScores = new Float32Array(64);
let attnAcc = new Float64Array(64);

function attention(
  q: Float32Array, mq: number, k: Float32Array, kRows: Int32Array | null, v: Float32Array, vRows: Int32Array | null,
  nKeys: number, heads: number, headDim: number, out: Float32Array,
): void {
  if (attnScores.length < nKeys) attnScores = new Float32Array(nKeys);
  if (attnAcc.length < headDim) attnAcc = new Float64Array(headDim);
  const d = heads * headDim;
  for (let r = 0; r < mq; r++) attendRow(q, r * d, k, kRows, v, vRows, nKeys, heads, headDim, attnScores, attnAcc, out, r * d);
}

/** argmax of x[off..off+n) with ties to the lowest index (torch.argmax); NaN never wins except at off. */
export function argmax(x: Float32Array, off: number, n: number): number {
  let best = 0;
  let bv = x[off]!;
  for (let i = 1; i < n; i++) {
    const v = x[off + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

// im2col scratch of conv3x3Gelu (grown once, never per call in steady state).
let convCol = new Float32Array(0);

/** Whether a[0..na) and b[0..nb) share memory. */
function overlaps(a: Float32Array, na: number, b: Float32Array, nb: number): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + 4 * nb && b.byteOffset < a.byteOffset + 4 * na;
}

/**
 * The contract of Kernels.conv3x3Gelu: conv.ts im2col3x3, one matmulF32 over the columns, GELU in
 * place (docs/bitmar-stream.md §3). out must not overlap x or w.
 */
export function conv3x3Gelu(
  x: Float32Array, height: number, width: number, cin: number, w: Float32Array, bias: Float32Array | null, cout: number, stride: number,
  out: Float32Array,
): void {
  for (const [name, v] of [['height', height], ['width', width], ['cin', cin], ['cout', cout], ['stride', stride]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  const k = 9 * cin;
  const pixels = conv3x3OutSize(height, stride) * conv3x3OutSize(width, stride);
  if (x.length < height * width * cin) throw new RangeError(`x holds ${x.length} floats, need height·width·cin = ${height * width * cin}`);
  if (w.length < cout * k) throw new RangeError(`w holds ${w.length} floats, need cout·9·cin = ${cout * k}`);
  if (bias && bias.length < cout) throw new RangeError(`bias holds ${bias.length} floats, need cout = ${cout}`);
  if (out.length < pixels * cout) throw new RangeError(`out holds ${out.length} floats, need OH·OW·cout = ${pixels * cout}`);
  if (overlaps(out, pixels * cout, x, height * width * cin) || overlaps(out, pixels * cout, w, cout * k)) throw new RangeError('out must not overlap x or w');
  const cols = im2col3x3Size(height, width, cin, stride);
  if (convCol.length < cols) convCol = new Float32Array(cols);
  im2col3x3(x, 0, height, width, cin, stride, convCol);
  matmulF32(w, cout, k, convCol, pixels, out, bias);
  geluInPlace(out, pixels * cout);
}

/** The TypeScript backend (name "typescript"). No fused decoder step: the engine composes the ops. */
export const tsKernels: Kernels = {
  name: 'typescript',
  packTernary,
  bitlinearI8,
  bitlinearU8,
  matmulF32,
  layerNorm,
  gelu: geluInPlace,
  softmax: softmaxInPlace,
  attention,
  argmax,
  resizeAreaU8,
  conv3x3Gelu,
};
