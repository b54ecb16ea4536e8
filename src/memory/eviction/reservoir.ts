import type { EvictionPolicy } from './policy.js';

/**
 * Reservoir sampling (Vitter's algorithm R): once every slot is live, the n-th episode replaces a
 * uniformly chosen slot with probability K/n and is archived otherwise, so the live slots are a uniform
 * sample of everything offered. Exact when the policy has been active since the store was created.
 */
export function reservoir(): EvictionPolicy {
  return {
    config: { name: 'reservoir' },
    victim: (view, incoming, random) => {
      const j = Math.floor(random() * incoming.offered);
      return j < view.capacity ? j : -1;
    },
  };
}
