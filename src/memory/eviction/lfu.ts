import type { EvictionPolicy, SlotView } from './policy.js';

/**
 * Least frequently used: evicts the slot with the fewest accesses (writes + counted reads); ties go to
 * the least recently used, then the lowest index.
 */
export function lfu(): EvictionPolicy {
  return { config: { name: 'lfu' }, victim: lfuVictim };
}

function lfuVictim(view: SlotView): number {
  let best = -1;
  for (let s = 0; s < view.capacity; s++) {
    if (view.used[s] === 0) continue;
    if (best < 0 || lfuBefore(view, s, best)) best = s;
  }
  return best;
}

/** Whether slot a should be evicted before slot b. */
function lfuBefore(view: SlotView, a: number, b: number): boolean {
  const ca = view.writeCount[a]! + view.readCount[a]!;
  const cb = view.writeCount[b]! + view.readCount[b]!;
  if (ca !== cb) return ca < cb;
  return view.touchTick[a]! < view.touchTick[b]!;
}

