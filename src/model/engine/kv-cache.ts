/**
 * The sink + window KV cache of one decoder layer (docs/bitmar-stream.md §3, StreamingLLM):
 * the first S tokens ever fed stay (sinks), then the last W tokens in a ring; when full, the
 * oldest window entry is evicted. Keys are stored BEFORE RoPE; positions are the logical slot
 * order (sinks 0..S−1, then the window oldest first), so they never exceed S+W−1.
 *
 * `rotated` holds the RoPE'd keys in logical order. Sinks never move, and window entries keep
 * their position until the first eviction; after that every step shifts the whole window by one,
 * so the window is re-rotated (cheap next to the projections: (S+W)·d multiply-adds).
 *
 * The whole state lives in typed arrays (`meta` holds the counters) so that the native fused decoder
 * step (native/decode/decoder-step.cc) appends and rotates in place with the same algorithm; the
 * TypeScript and native paths can alternate on one cache.
 */
import type { RopeTable } from './ops.js';

export class SinkWindowKvCache {
  /** S + W. */
  readonly capacity: number;
  /** (S+W, d) pre-RoPE keys by physical row: rows 0..S−1 sinks, S.. the window ring. */
  readonly keys: Float32Array;
  /** (S+W, d) values by physical row. */
  readonly values: Float32Array;
  /** (S+W, d) RoPE'd keys in logical order (valid for logical rows < rotatedValid). */
  readonly rotated: Float32Array;
  /** (S+W) logical row → physical row, for the `length` rows held. */
  readonly order: Int32Array;
  /** [fed, head, rotatedValid]: tokens fed since reset, the window ring's oldest row, rotated rows valid. */
  readonly meta = new Float64Array(3);

  constructor(
    readonly sinks: number,
    readonly window: number,
    readonly dim: number,
  ) {
    if (!(Number.isInteger(sinks) && sinks >= 0)) throw new RangeError(`sinks ${sinks} must be an integer ≥ 0`);
    if (!(Number.isInteger(window) && window >= 1)) throw new RangeError(`window ${window} must be an integer ≥ 1`);
    this.capacity = sinks + window;
    this.keys = new Float32Array(this.capacity * dim);
    this.values = new Float32Array(this.capacity * dim);
    this.rotated = new Float32Array(this.capacity * dim);
    this.order = new Int32Array(this.capacity);
  }

  private get fed(): number {
    return this.meta[0]!;
  }

  /** Entries held now: min(fed, S+W). */
  get length(): number {
    return Math.min(this.fed, this.capacity);
  }

  /** Tokens fed since the last reset. */
  get totalFed(): number {
    return this.fed;
  }

  /** True once at least one window entry has been evicted. */
  get hasEvicted(): boolean {
    return this.fed > this.capacity;
  }

  reset(): void {
    this.meta.fill(0);
  }

  /**
   * Store one token's pre-RoPE key and value (d floats each at kOff/vOff), evicting the oldest
   * window entry when full. Returns the token's position (its logical row).
   */
  append(k: Float32Array, kOff: number, v: Float32Array, vOff: number): number {
    const d = this.dim;
    const meta = this.meta;
    const fed = meta[0]!;
    let row: number;
    let pos: number;
    if (fed < this.capacity) {
      row = fed;
      pos = fed;
      this.order[pos] = row;
    } else {
      // Evict: the oldest window entry's row takes the new token; every window position shifts by one.
      row = this.sinks + meta[1]!;
      const head = (meta[1]! + 1) % this.window;
      meta[1] = head;
      pos = this.capacity - 1;
      for (let i = 0; i < this.window; i++) this.order[this.sinks + i] = this.sinks + ((head + i) % this.window);
      meta[2] = Math.min(meta[2]!, this.sinks);
    }
    const o = row * d;
    for (let j = 0; j < d; j++) {
      this.keys[o + j] = k[kOff + j]!;
      this.values[o + j] = v[vOff + j]!;
    }
    meta[0] = fed + 1;
    return pos;
  }

  /** Bring `rotated` up to date for every logical row (RoPE at its current position). */
  rotate(rope: RopeTable, heads: number): void {
    const n = this.length;
    const d = this.dim;
    for (let i = this.meta[2]!; i < n; i++) rope.apply(this.keys, this.order[i]! * d, heads, i, this.rotated, i * d);
    this.meta[2] = n;
  }
}
