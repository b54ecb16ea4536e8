/**
 * A decoder session: per-layer sink + window KV caches, the RoPE table for their positions, and
 * the conditioning of docs §3 computed once per frame — the cross-attention memory
 * X = concat(V, Fused), its per-layer K/V projections, and the per-layer BL_cond(c) vectors.
 * Caption mode resets the caches per caption; narration mode keeps them across frames.
 */
import type { DecoderStep, Kernels } from '../kernels.js';
import type { StreamConfig } from './config.js';
import { SinkWindowKvCache } from './kv-cache.js';
import { RopeTable } from './ops.js';

export class DecoderSession {
  readonly caches: readonly SinkWindowKvCache[];
  /** Positions 0..S+W−1. */
  readonly rope: RopeTable;
  /** (N+1+Tmax, d) cross-attention memory X, xLength rows in use. */
  readonly x: Float32Array;
  /** Per layer (N+1+Tmax, d): BL_k(X). */
  readonly xk: readonly Float32Array[];
  /** Per layer (N+1+Tmax, d): BL_v(X). */
  readonly xv: readonly Float32Array[];
  /** Per layer (d): BL_cond_l(c). */
  readonly cond: readonly Float32Array[];
  xLength = 0;
  isConditioned = false;
  /**
   * Narration: the last sampled token not yet fed (−1 when none). A sentence that stops at the
   * cap or is cancelled leaves its last token here; it is fed under its own frame's conditioning
   * before the next frame conditions the session.
   */
  pending = -1;
  /** The backend's fused decoder step over this session's buffers (forward.ts builds it on first use). */
  fused: { readonly kernels: Kernels; readonly step: DecoderStep } | null = null;

  constructor(
    readonly config: StreamConfig,
    readonly sinks: number,
    readonly window: number,
  ) {
    const { dim: d, decoderLayers: n, patches, textContext } = config;
    const rows = patches + 1 + textContext;
    this.caches = Array.from({ length: n }, () => new SinkWindowKvCache(sinks, window, d));
    this.rope = new RopeTable(sinks + window, config.headDim, config.ropeBase);
    this.x = new Float32Array(rows * d);
    this.xk = Array.from({ length: n }, () => new Float32Array(rows * d));
    this.xv = Array.from({ length: n }, () => new Float32Array(rows * d));
    this.cond = Array.from({ length: n }, () => new Float32Array(d));
  }

  /** Tokens fed since the last reset. */
  get fed(): number {
    return this.caches[0]!.totalFed;
  }

  /** Empty every layer's cache (the conditioning stays). */
  resetCache(): void {
    for (const c of this.caches) c.reset();
    this.pending = -1;
  }
}
