import { lruVictim } from './lru.js';
import type { EvictionPolicy, IncomingEpisode, SlotView } from './policy.js';

/**
 * Merges a new episode into the nearest live slot whose cosine similarity is ≥ `threshold` (the store
 * moves that slot toward the new vector: v ← normalize((1−α)·v̂ + α·ê), α = `alpha`), so a robot staring
 * at one scene does not flush its memory. Below the threshold the episode takes a free slot, or evicts
 * the least recently used one.
 */
export function similarityMerge(threshold: number, alpha: number): EvictionPolicy {
  return {
    config: { name: 'similarity-merge', threshold, alpha },
    mergeTarget: (view, incoming) => nearestAbove(view, incoming, threshold),
    victim: lruVictim,
  };
}

function nearestAbove(view: SlotView, incoming: IncomingEpisode, threshold: number): number {
  if (incoming.norm === 0) return -1;
  const { norms } = view;
  const dots = view.dotAll(incoming.vector);
  let best = -1;
  let bestScore = -Infinity;
  for (let s = 0; s < view.capacity; s++) {
    if (view.used[s] === 0 || norms[s] === 0) continue;
    const score = dots[s]! / (norms[s]! * incoming.norm);
    if (score > bestScore) {
      bestScore = score;
      best = s;
    }
  }
  return best >= 0 && bestScore >= threshold ? best : -1;
}
