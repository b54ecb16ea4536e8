import { argMinSlot, type EvictionPolicy } from './policy.js';

/** First in, first out: evicts the episode that entered its slot first (`insertTick`); merges do not renew it. */
export function fifo(): EvictionPolicy {
  return { config: { name: 'fifo' }, victim: (view) => argMinSlot(view, (s) => view.insertTick[s]!) };
}
