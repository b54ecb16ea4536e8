/**
 * The pure TypeScript kernels: the portable fallback and the executable definition of the numerics in
 * docs/bitmar-stream.md §2 (stream scheme, int8 per token) and bitmar-reference-spec.md §4/§12.11
 * (R1 scheme, uint8 per tensor). The native addon matches these bit for bit; every step below that
 * rounds to fp32 says so with Math.fround, and every step without it is exact (or done in fp64 on
 * purpose, where the native code does the same fp64 operation).
 */
import type { Kernels, TernaryMatrix } from './kernels.js';

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

/** The TypeScript backend (name "typescript"). */
export const tsKernels: Kernels = {
  name: 'typescript',
  packTernary,
  bitlinearI8,
  bitlinearU8,
  matmulF32,
};
