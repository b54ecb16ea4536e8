import { argMinSlot, type EvictionPolicy, type SlotView } from './policy.js';

/**
 * The authors' slot choice (reference spec §3.7 write step 4): R1 overwrites the slot with the highest
 * write score `0.4·(−age) + 0.3·(−usage) + 0.2·(−quality) + 0.1·(−importance)`, i.e. the lowest
 * retention `r1Retention` below. Ties go to the lowest index (spec §12 item 6).
 */
export function r1Score(): EvictionPolicy {
  return { config: { name: 'r1-score' }, victim: (view) => argMinSlot(view, (s) => r1Retention(view, s)) };
}

/** 0.4·age + 0.3·usage + 0.2·quality + 0.1·importance: minus R1's write score. */
export function r1Retention(view: SlotView, slot: number): number {
  return (
    0.4 * view.age[slot]! + 0.3 * view.usage[slot]! + 0.2 * view.quality[slot]! + 0.1 * view.importance[slot]!
  );
}
