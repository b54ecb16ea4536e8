import { argMinSlot, type EvictionPolicy, type SlotView } from './policy.js';

/** Least recently used: evicts the slot whose last write or read (`touchTick`) is oldest. */
export function lru(): EvictionPolicy {
  return { config: { name: 'lru' }, victim: lruVictim };
}

/** The least recently used live slot (shared by the policies that fall back to lru). */
export function lruVictim(view: SlotView): number {
  return argMinSlot(view, (s) => view.touchTick[s]!);
}
