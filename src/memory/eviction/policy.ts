/**
 * The eviction policy contract. A policy only chooses; the store moves episodes (archives the victim,
 * merges, expires). Every choice is deterministic: ties go to the lowest slot index, and the only
 * randomness is the store's seeded stream passed in as `random`.
 */

export type PolicyName = 'lru' | 'lfu' | 'fifo' | 'r1-score' | 'similarity-merge' | 'reservoir' | 'ttl';

export const POLICY_NAMES: readonly PolicyName[] = [
  'lru',
  'lfu',
  'fifo',
  'r1-score',
  'similarity-merge',
  'reservoir',
  'ttl',
];

/** A policy with its parameters, defaults filled in. */
export type PolicyConfig =
  | { readonly name: 'lru' }
  | { readonly name: 'lfu' }
  | { readonly name: 'fifo' }
  | { readonly name: 'r1-score' }
  | {
      readonly name: 'similarity-merge';
      /** Merge into the nearest live slot whose cosine similarity is ≥ this, in (−1, 1]; default 0.9. */
      readonly threshold: number;
      /** Weight of the new vector in the merge, in (0, 1]; default 0.2 (R1's α). */
      readonly alpha: number;
    }
  | { readonly name: 'reservoir' }
  | {
      readonly name: 'ttl';
      /** Episodes not seen for longer than this are expired (archived), > 0; default 3,600,000 (1 h). */
      readonly ttlMs: number;
    };

/** What callers may pass: a name, or a config with optional parameters. */
export type PolicySpec =
  | PolicyName
  | { readonly name: 'lru' | 'lfu' | 'fifo' | 'r1-score' | 'reservoir' }
  | { readonly name: 'similarity-merge'; readonly threshold?: number; readonly alpha?: number }
  | { readonly name: 'ttl'; readonly ttlMs?: number };

/** Read-only view of the slot table (struct of arrays, index = slot). */
export interface SlotView {
  readonly capacity: number;
  readonly width: number;
  /** 1 when the slot holds an episode. */
  readonly used: Uint8Array;
  /** [capacity, width] row-major. */
  readonly vectors: Float32Array;
  /** vectors[s]·v for every slot s (free slots: 0), one SIMD pass; valid until the next call. */
  readonly dotAll: (v: Float32Array) => Float32Array;
  /** ‖vector‖₂ per slot. */
  readonly norms: Float64Array;
  readonly insertTick: Float64Array;
  readonly touchTick: Float64Array;
  readonly writeCount: Float64Array;
  readonly readCount: Float64Array;
  readonly usage: Float64Array;
  readonly age: Float64Array;
  readonly importance: Float64Array;
  readonly quality: Float64Array;
  readonly lastSeenMs: Float64Array;
}

/** The episode being written. */
export interface IncomingEpisode {
  readonly vector: Float32Array;
  readonly norm: number;
  readonly nowMs: number;
  /** Episodes offered so far, this one included (the reservoir's n). */
  readonly offered: number;
}

export interface EvictionPolicy {
  readonly config: PolicyConfig;
  /** Slots to expire before placing a new episode (ttl). */
  expired?(view: SlotView, nowMs: number): number[];
  /** A live slot to merge the new episode into, or −1 (similarity-merge). */
  mergeTarget?(view: SlotView, incoming: IncomingEpisode): number;
  /**
   * Called only when every slot is live: the slot to archive and reuse, or −1 to keep the memory as it is
   * and archive the new episode instead (reservoir).
   */
  victim(view: SlotView, incoming: IncomingEpisode, random: () => number): number;
}

/** The live slot with the smallest key; ties to the lowest index; −1 when none is live. */
export function argMinSlot(view: SlotView, key: (slot: number) => number): number {
  let best = -1;
  let bestKey = Infinity;
  for (let s = 0; s < view.capacity; s++) {
    if (view.used[s] === 0) continue;
    const k = key(s);
    if (best < 0 || k < bestKey) {
      best = s;
      bestKey = k;
    }
  }
  return best;
}
