/**
 * The small fp32 operations of docs/bitmar-stream.md §2 the engine keeps in TypeScript: residual adds,
 * RoPE tables (NeoX half-split), L2 normalisation and row means. LayerNorm, GELU, softmax and
 * attention are kernels (src/model/kernels.ts; their TypeScript definitions live in kernels-ts.ts and
 * are re-exported here).
 *
 * Numerics: each op reads fp32 inputs, computes in fp64 (JS numbers) in a fixed left-to-right
 * order, and rounds once to fp32 when it stores into a Float32Array. That is within 1 ulp-ish of
 * PyTorch's fp32 result and identical across calls, so batched and single-row runs agree bit for bit.
 * No op allocates.
 */
export { attendRow, geluInPlace, layerNorm, softmaxInPlace } from '../kernels-ts.js';

/** h[i] += y[i] for the first n entries (one fp32 rounding per add, through the store). */
export function addInPlace(h: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) h[i] = h[i]! + y[i]!;
}

/** h[r, :] += v[:] for m rows of width d (broadcast one vector over rows). */
export function addRowInPlace(h: Float32Array, m: number, d: number, v: Float32Array): void {
  for (let r = 0; r < m; r++) {
    const o = r * d;
    for (let j = 0; j < d; j++) h[o + j] = h[o + j]! + v[j]!;
  }
}

/** out = x / max(‖x‖₂, 1e-12) (F.normalize), d entries; the norm in fp64, one rounding per entry. */
export function l2Normalize(x: Float32Array, d: number, out: Float32Array): void {
  let ss = 0;
  for (let j = 0; j < d; j++) ss += x[j]! * x[j]!;
  const n = Math.max(Math.sqrt(ss), 1e-12);
  for (let j = 0; j < d; j++) out[j] = x[j]! / n;
}

/** out[j] = mean over m rows of x[r, j]. */
export function meanRows(x: Float32Array, m: number, d: number, out: Float32Array): void {
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let r = 0; r < m; r++) s += x[r * d + j]!;
    out[j] = s / m;
  }
}

/**
 * RoPE cos/sin tables for positions 0..maxPositions−1 (NeoX half-split, docs §3):
 * θ_i = fp32(pos · base^(−2i/hd)) (the product in fp64, as the reference), then fp32 cos and sin.
 */
export class RopeTable {
  /** (maxPositions, hd/2) */
  readonly cos: Float32Array;
  /** (maxPositions, hd/2) */
  readonly sin: Float32Array;
  readonly half: number;

  constructor(
    readonly maxPositions: number,
    readonly headDim: number,
    readonly base: number,
  ) {
    this.half = headDim / 2;
    this.cos = new Float32Array(maxPositions * this.half);
    this.sin = new Float32Array(maxPositions * this.half);
    for (let p = 0; p < maxPositions; p++) {
      for (let i = 0; i < this.half; i++) {
        const theta = Math.fround(p * base ** ((-2 * i) / headDim));
        this.cos[p * this.half + i] = Math.cos(theta);
        this.sin[p * this.half + i] = Math.sin(theta);
      }
    }
  }

  /** Rotate one row of `heads` heads (width d = heads·hd) at `pos`: out may alias x. */
  apply(x: Float32Array, xOff: number, heads: number, pos: number, out: Float32Array, outOff: number): void {
    const { half, headDim } = this;
    const t = pos * half;
    for (let h = 0; h < heads; h++) {
      const o = h * headDim;
      for (let i = 0; i < half; i++) {
        const x1 = x[xOff + o + i]!;
        const x2 = x[xOff + o + i + half]!;
        const c = this.cos[t + i]!;
        const s = this.sin[t + i]!;
        out[outOff + o + i] = Math.fround(x1 * c) - Math.fround(x2 * s);
        out[outOff + o + i + half] = Math.fround(x2 * c) + Math.fround(x1 * s);
      }
    }
  }
}
