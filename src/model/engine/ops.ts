/**
 * The fp32 operations of docs/bitmar-stream.md §2 that run in TypeScript: LayerNorm, GELU (tanh),
 * softmax, RoPE (NeoX half-split), L2 normalisation and scaled dot-product attention.
 *
 * Numerics: each op reads fp32 inputs, computes in fp64 (JS numbers) in a fixed left-to-right
 * order, and rounds once to fp32 when it stores into a Float32Array. That is within 1 ulp-ish of
 * PyTorch's fp32 result and identical across calls, so batched and single-row runs agree bit for bit.
 * No op allocates.
 */

/** out[r] = (x[r] − mean) / √(var + eps) · w + b for m rows of width d (biased variance). */
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
