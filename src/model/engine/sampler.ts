/**
 * Token sampling (bitmar-reference-spec.md §6.1): greedy when the temperature is 0, otherwise
 * softmax(logits / temperature), optional top-p (nucleus: sort descending, keep tokens while the
 * cumulative probability before them is ≤ p, so the one that crosses p stays and the first always
 * does), then a draw from a seeded RNG. Buffers are allocated once per vocabulary size.
 */
import { BitmarError } from '../../errors.js';
import { MULBERRY32_STEP, mulberry32Output } from '../../rng.js';
import { argmax } from '../kernels-ts.js';

export interface SamplingOptions {
  /** 0 = greedy (default); otherwise > 0. */
  readonly temperature: number;
  /** Nucleus mass in (0, 1]; 1 = off (default). */
  readonly topP: number;
  /** RNG seed (any integer; used modulo 2³²). */
  readonly seed: number;
}

/** Check sampling options; throws BITMAR_ERR_CONFIG_INVALID stating the allowed range. */
export function checkSamplingOptions(o: SamplingOptions): void {
  if (!(Number.isFinite(o.temperature) && o.temperature >= 0)) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `temperature ${o.temperature} is invalid: must be a finite number ≥ 0 (0 = greedy)`);
  }
  if (!(o.topP > 0 && o.topP <= 1)) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `topP ${o.topP} is invalid: must be in (0, 1] (1 = off)`);
  }
  if (!Number.isInteger(o.seed)) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `seed ${o.seed} is invalid: must be an integer`);
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export class Mulberry32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + MULBERRY32_STEP) >>> 0;
    return mulberry32Output(this.s);
  }
}

export class Sampler {
  private readonly probs: Float64Array;
  private readonly order: Int32Array;
  private rng = new Mulberry32(0);
  private opts: SamplingOptions = { temperature: 0, topP: 1, seed: 0 };
  private readonly byProbDesc = (a: number, b: number): number => this.probs[b]! - this.probs[a]! || a - b;

  /**
   * `pickMax` finds the greedy token (default: the TypeScript kernels' `argmax`; the engine passes its
   * kernels' arg-max, which is the same function, 30–50× faster natively over a 50k vocabulary).
   */
  constructor(
    readonly vocabSize: number,
    private readonly pickMax: (x: Float32Array, off: number, n: number) => number = argmax,
  ) {
    this.probs = new Float64Array(vocabSize);
    this.order = new Int32Array(vocabSize);
  }

  /** Start a new sequence with these options (reseeds the RNG). */
  reset(opts: SamplingOptions): void {
    checkSamplingOptions(opts);
    this.opts = opts;
    this.rng = new Mulberry32(opts.seed);
  }

  /**
   * Pick the next token from logits[off..off+V). `knownArgmax` (≥ 0) is the arg-max of those logits
   * when the caller already has it (the fused decoder step computes it); greedy returns it as is.
   */
  sample(logits: Float32Array, off: number, knownArgmax = -1): number {
    const V = this.vocabSize;
    const { temperature, topP } = this.opts;
    if (temperature === 0) return knownArgmax >= 0 ? knownArgmax : this.pickMax(logits, off, V);
    const p = this.probs;
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, logits[off + i]! / temperature);
    let sum = 0;
    for (let i = 0; i < V; i++) {
      p[i] = Math.exp(logits[off + i]! / temperature - max);
      sum += p[i]!;
    }
    for (let i = 0; i < V; i++) p[i] = p[i]! / sum;
    const u = this.rng.next();
    if (topP >= 1) {
      let cdf = 0;
      for (let i = 0; i < V; i++) {
        cdf += p[i]!;
        if (u < cdf) return i;
      }
      return this.pickMax(logits, off, V); // rounding left u ≥ cdf: the likeliest token
    }
    // Only tokens with p ≥ (1−topP)/(V−1) can be in the nucleus (llama2.c), so sort just those.
    const cutoff = V > 1 ? (1 - topP) / (V - 1) : 0;
    let n = 0;
    for (let i = 0; i < V; i++) if (p[i]! >= cutoff) this.order[n++] = i;
    const cand = this.order.subarray(0, n).sort(this.byProbDesc);
    let kept = 0;
    let cum = 0;
    while (kept < n && (kept === 0 || cum <= topP)) cum += p[cand[kept++]!]!;
    const r = u * cum;
    let acc = 0;
    for (let i = 0; i < kept; i++) {
      acc += p[cand[i]!]!;
      if (r < acc) return cand[i]!;
    }
    return cand[kept - 1]!;
  }
}
