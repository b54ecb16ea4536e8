import { lruVictim } from './lru.js';
import type { EvictionPolicy, SlotView } from './policy.js';

/**
 * Time to live: before each write, live episodes not seen (written or merged) for more than `ttlMs` are
 * expired to the archive; when nothing has expired and every slot is live, the least recently used goes.
 */
export function ttl(ttlMs: number): EvictionPolicy {
  return {
    config: { name: 'ttl', ttlMs },
    expired: (view, nowMs) => expiredSlots(view, nowMs, ttlMs),
    victim: lruVictim,
  };
}

/** Live slots last seen more than `ttlMs` before `nowMs`, in slot order. */
export function expiredSlots(view: SlotView, nowMs: number, ttlMs: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < view.capacity; s++) {
    if (view.used[s] === 1 && nowMs - view.lastSeenMs[s]! > ttlMs) out.push(s);
  }
  return out;
}
