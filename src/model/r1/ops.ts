/**
 * The fp32 operations of bitmar-r1 that run in TypeScript: LayerNorm, softmax, the exact (erf) GELU,
 * masked multi-head attention of one query row. Each op reads fp32 inputs, computes in fp64 in a
 * fixed order and rounds once when it stores into a Float32Array, so it lands within an ulp of
 * PyTorch's fp32 result (the parity fixtures pin this down). No op allocates.
 */

// LayerNorm and softmax are the shared fp32 ops of the TypeScript kernels (same fp64 order).
export { layerNorm, softmaxInPlace } from '../kernels-ts.js';

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

/**
 * erf in double precision (error ≤ a few ulp): for |z| < 2.5 the positive series
 * erf(z) = 2z/√π · e^{−z²} · Σ (2z²)ⁿ / (1·3·…·(2n+1)); above, 1 − erfc(|z|) with erfc from its
 * continued fraction (evaluated backwards, 80 terms); ±1 from |z| ≥ 6.
 */
export function erf(z: number): number {
  const a = Math.abs(z);
  let r: number;
  if (a < 2.5) {
    const a2 = a * a;
    let term = 1;
    let sum = 1;
    for (let n = 1; n < 200; n++) {
      term *= (2 * a2) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    r = TWO_OVER_SQRT_PI * a * Math.exp(-a2) * sum;
  } else if (a < 6) {
    let t = a;
    for (let k = 80; k >= 1; k--) t = a + k / 2 / t;
    r = 1 - (Math.exp(-a * a) * INV_SQRT_PI) / t;
  } else {
    r = 1;
  }
  return z < 0 ? -r : r;
}

/** x ← GELU(x) = x·0.5·(1 + erf(x/√2)) in fp64 (PyTorch's formula), rounded to fp32; n entries from off. */
export function geluExactInPlace(x: Float32Array, n: number, off = 0): void {
  for (let i = off; i < off + n; i++) {
    const v = x[i]!;
    x[i] = v * 0.5 * (1 + erf(v * Math.SQRT1_2));
  }
}

/**
 * Attention of one query row (all heads, width d = heads·hd): for each head,
 * out_h = softmax(fp32(q·k_j)·scale over the keys j < nKeys whose mask is 1)·V.
 * Keys/values are rows kvRow0 … kvRow0+nKeys−1 of k and v; mask[maskOff + j] (null = all 1).
 * At least one key must be unmasked. `scores` ≥ nKeys floats, `acc` ≥ hd doubles.
 */
export function attendRowMasked(
  q: Float32Array,
  qOff: number,
  k: Float32Array,
  v: Float32Array,
  kvRow0: number,
  nKeys: number,
  mask: Uint8Array | null,
  maskOff: number,
  heads: number,
  hd: number,
  scale: number,
  scores: Float32Array,
  acc: Float64Array,
  out: Float32Array,
  outOff: number,
): void {
  const d = heads * hd;
  for (let h = 0; h < heads; h++) {
    const ho = h * hd;
    const qo = qOff + ho;
    let max = -Infinity;
    for (let j = 0; j < nKeys; j++) {
      if (mask !== null && mask[maskOff + j] === 0) {
        scores[j] = -Infinity;
        continue;
      }
      const ko = (kvRow0 + j) * d + ho;
      let dot = 0;
      for (let i = 0; i < hd; i++) dot += q[qo + i]! * k[ko + i]!;
      const s = Math.fround(Math.fround(dot) * scale);
      scores[j] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let j = 0; j < nKeys; j++) {
      const s = scores[j]!;
      scores[j] = s === -Infinity ? 0 : Math.exp(s - max);
      sum += scores[j]!;
    }
    acc.fill(0, 0, hd);
    for (let j = 0; j < nKeys; j++) {
      if (scores[j] === 0) continue;
      const p = Math.fround(scores[j]! / sum);
      const vo = (kvRow0 + j) * d + ho;
      for (let i = 0; i < hd; i++) acc[i] += p * v[vo + i]!;
    }
    for (let i = 0; i < hd; i++) out[outOff + ho + i] = acc[i]!;
  }
}

/** Raw min and max over the first n entries (the kernel applies its ±1e6 clamp to both). */
export function valueRange(x: Float32Array, n: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
