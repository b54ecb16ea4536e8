/**
 * APPROXIMATE streaming generation for bitmar-r1 (spec §6.3): NOT what the authors' code computes.
 *
 * The exact mode recomputes the whole forward per token, because the text encoder is bidirectional
 * and every BitLinear quantises over the whole sequence. This mode bounds the per-token cost instead:
 * - the prompt is run once, exactly (its logits and memory read are the exact mode's);
 * - the memory-read conditioning c = BL_m2d(r) and the fusion's vision terms are frozen from then on;
 * - each new token's decoder input comes from re-encoding only the last `encoderWindow` tokens
 *   (encoder positions 0…w−1 of that window), fused, projected, plus the decoder position
 *   min(n, context−1) (positions are baked in, so they can only be clamped, not re-based);
 * - each decoder layer keeps a K/V cache of S never-evicted sinks plus a window of the W most recent
 *   positions (S + W ≤ context length); past positions are never recomputed;
 * - BitLinears on the new row quantise over that single row.
 */
import { BitmarError } from '../../errors.js';
import { bl, encodeTextBatch, type R1Model } from './forward.js';
import { attendRowMasked, geluExactInPlace, layerNorm } from './ops.js';

export interface R1StreamingOptions {
  /** S, never-evicted first positions per decoder layer (default 4). */
  readonly sinks?: number;
  /** W, most recent positions kept per layer (default context − S). */
  readonly window?: number;
  /** Tokens re-encoded for each new token's decoder input (default min(32, context)). */
  readonly encoderWindow?: number;
}

function invalid(message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_CONFIG_INVALID', message);
}

/** One decoder layer's K/V: sinks first, then the window in arrival order (rows of width d). */
class LayerCache {
  readonly k: Float32Array;
  readonly v: Float32Array;
  length = 0;
  constructor(
    readonly sinks: number,
    readonly window: number,
    private readonly d: number,
  ) {
    this.k = new Float32Array((sinks + window) * d);
    this.v = new Float32Array((sinks + window) * d);
  }

  /** Append one row; when full, the oldest non-sink row is evicted. */
  append(k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    const d = this.d;
    const cap = this.sinks + this.window;
    if (this.length === cap) {
      // drop row `sinks` (the oldest in the window), shift the rest down
      this.k.copyWithin(this.sinks * d, (this.sinks + 1) * d, cap * d);
      this.v.copyWithin(this.sinks * d, (this.sinks + 1) * d, cap * d);
      this.length--;
    }
    this.k.set(k.subarray(kOff, kOff + d), this.length * d);
    this.v.set(v.subarray(vOff, vOff + d), this.length * d);
    this.length++;
  }
}

/** The state of one approximate streaming generation. */
export class R1StreamingSession {
  readonly sinks: number;
  readonly window: number;
  readonly encoderWindow: number;
  readonly caches: LayerCache[];
  /** c = BL_m2d(r) of the prompt [d]. */
  readonly c: Float32Array;
  /** Per fusion layer, BL_out_j(BL_v_j(BL_vp(vis))) [d]. */
  private readonly fusionAdds: Float32Array[];
  /** The last `encoderWindow` tokens (prompt + generated). */
  private readonly recent: number[];
  /** Tokens so far (prompt + generated). */
  length: number;

  constructor(
    private readonly M: R1Model,
    opts: R1StreamingOptions,
    c: Float32Array,
    vis: Float32Array,
    promptIds: readonly number[],
  ) {
    const ctx = M.config.contextLength;
    this.sinks = opts.sinks ?? Math.min(4, ctx - 1);
    this.window = opts.window ?? ctx - this.sinks;
    this.encoderWindow = opts.encoderWindow ?? Math.min(32, ctx);
    if (!(Number.isInteger(this.sinks) && this.sinks >= 0)) throw invalid(`sinks ${this.sinks} is invalid: must be an integer ≥ 0`);
    if (!(Number.isInteger(this.window) && this.window >= 1)) throw invalid(`window ${this.window} is invalid: must be an integer ≥ 1`);
    if (this.sinks + this.window > ctx) {
      throw invalid(`sinks + window = ${this.sinks + this.window} exceeds the model's ${ctx} learned positions (R1 positions cannot be re-based; spec §6.3)`);
    }
    if (!(Number.isInteger(this.encoderWindow) && this.encoderWindow >= 1 && this.encoderWindow <= ctx)) {
      throw invalid(`encoderWindow ${this.encoderWindow} is invalid: must be an integer in 1..${ctx}`);
    }
    const d = M.config.dim;
    this.caches = M.weights.decoder.map(() => new LayerCache(this.sinks, this.window, d));
    this.c = c.slice(0, d);
    this.recent = promptIds.slice(-this.encoderWindow);
    this.length = promptIds.length;
    const w = M.weights;
    const p = new Float32Array(d);
    bl(M, w.fusionVisionProj, vis, 1, p);
    const pv = new Float32Array(d);
    this.fusionAdds = w.fusion.map((layer) => {
      const a = new Float32Array(d);
      bl(M, layer.attn.v, p, 1, pv);
      bl(M, layer.attn.o, pv, 1, a);
      return a;
    });
  }

  /** Receives the prompt's decoder K/V rows (exact prefill), layer by layer. */
  capture(layer: number, k: Float32Array, v: Float32Array, rows: number): void {
    const d = this.M.config.dim;
    for (let r = 0; r < rows; r++) this.caches[layer]!.append(k, r * d, v, r * d);
  }

  /** Append token `id` and return the logits [V] for the next one. */
  step(id: number): Float32Array {
    const M = this.M;
    const { dim: d, lnEps, contextLength: ctx, decoderHeads: heads, decoderFfn, vocabSize: V } = M.config;
    const w = M.weights;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`token id ${id} is outside the vocabulary (size ${V})`);
    const n = this.length++; // absolute index of this token
    this.recent.push(id);
    if (this.recent.length > this.encoderWindow) this.recent.shift();
    // decoder input: re-encode the last encoderWindow tokens, fuse, take the last row
    const win = this.recent;
    const Tw = win.length;
    const Z = new Float32Array(Tw * d);
    encodeTextBatch(M, { B: 1, T: Tw, ids: Int32Array.from(win), mask: null, vision: new Float32Array(0), hasVision: new Uint8Array(1) }, Z);
    const f = new Float32Array(Tw * d);
    bl(M, w.fusionTextProj, Z, Tw, f);
    w.fusion.forEach((layer, j) => {
      const a = this.fusionAdds[j]!;
      for (let r = 0; r < Tw; r++) for (let i = 0; i < d; i++) f[r * d + i] = f[r * d + i]! + a[i]!;
      layerNorm(f, Tw, d, layer.ln.weight, layer.ln.bias, lnEps, f);
    });
    const fused = new Float32Array(Tw * d);
    bl(M, w.fusionOut, f, Tw, fused);
    const x = new Float32Array(d);
    for (let i = 0; i < d; i++) x[i] = fused[(Tw - 1) * d + i]! + this.c[i]!;
    const h = new Float32Array(d);
    bl(M, w.decoderInputProj, x, 1, h);
    const po = Math.min(n, ctx - 1) * d;
    for (let i = 0; i < d; i++) h[i] = h[i]! + w.decPos[po + i]!;
    // decoder: one row through each layer's sink + window cache
    const s = M.scratch;
    s.ensure(1);
    const hd = d / heads;
    const scale = Math.fround(hd ** -0.5);
    w.decoder.forEach((b, l) => {
      const cache = this.caches[l]!;
      layerNorm(h, 1, d, b.norm1.weight, b.norm1.bias, lnEps, s.xn);
      bl(M, b.attn.q, s.xn, 1, s.q);
      bl(M, b.attn.k, s.xn, 1, s.k);
      bl(M, b.attn.v, s.xn, 1, s.v);
      cache.append(s.k, 0, s.v, 0);
      attendRowMasked(s.q, 0, cache.k, cache.v, 0, cache.length, null, 0, heads, hd, scale, s.scoresFor(cache.length), s.acc, s.att, 0);
      bl(M, b.attn.o, s.att, 1, s.proj);
      for (let i = 0; i < d; i++) h[i] = h[i]! + s.proj[i]!;
      layerNorm(h, 1, d, b.norm2.weight, b.norm2.bias, lnEps, s.u);
      bl(M, b.fc1, s.u, 1, s.ffn);
      geluExactInPlace(s.ffn, decoderFfn);
      bl(M, b.fc2, s.ffn, 1, s.proj);
      for (let i = 0; i < d; i++) s.proj[i] = s.proj[i]! + s.u[i]!;
      layerNorm(s.proj, 1, d, b.mlpNorm.weight, b.mlpNorm.bias, lnEps, s.xn);
      for (let i = 0; i < d; i++) h[i] = h[i]! + s.xn[i]!;
    });
    const xn = new Float32Array(d);
    layerNorm(h, 1, d, w.decNorm.weight, w.decNorm.bias, lnEps, xn);
    const logits = new Float32Array(V);
    bl(M, w.lmHead, xn, 1, logits);
    return logits;
  }
}
