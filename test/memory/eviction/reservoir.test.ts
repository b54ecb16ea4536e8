/** The reservoir policy keeps a uniform sample of the whole history (a fixed-seed chi-square test). */
import assert from 'node:assert/strict';
import { InMemoryEpisodicStore } from '../../../src/memory/in-memory-store.js';

describe('reservoir policy', () => {
  it('keeps each of N offered episodes with probability K/N (chi-square, fixed seeds)', () => {
    const K = 20;
    const N = 400;
    const trials = 250;
    const buckets = 20; // episodes grouped by arrival: 1–20, 21–40, …
    const kept = new Array<number>(buckets).fill(0);
    for (let t = 0; t < trials; t++) {
      const s = new InMemoryEpisodicStore({ width: 2, slots: K, policy: 'reservoir', seed: 1000 + t, archiveCap: 0 });
      for (let i = 0; i < N; i++) s.write({ vector: [1, i] });
      for (const r of s.slots()) kept[Math.floor((r.episodeId - 1) / (N / buckets))]!++;
      assert.equal(s.stats().used, K);
    }
    const expected = (trials * K) / buckets;
    const chi2 = kept.reduce((acc, o) => acc + (o - expected) ** 2 / expected, 0);
    // 19 degrees of freedom: P(χ² > 43.8) = 0.001. Seeds are fixed, so this never flakes.
    assert.ok(chi2 < 43.8, `chi-square ${chi2.toFixed(1)} over ${JSON.stringify(kept)}`);
    // The first and the last episodes are as likely to be kept as any other.
    assert.ok(Math.abs(kept[0]! - expected) < expected * 0.35 && Math.abs(kept[buckets - 1]! - expected) < expected * 0.35);
  });

  it('is not uniform when biased (the test can fail): fifo keeps only the newest', () => {
    const s = new InMemoryEpisodicStore({ width: 2, slots: 20, policy: 'fifo', archiveCap: 0 });
    for (let i = 0; i < 400; i++) s.write({ vector: [1, i] });
    assert.ok(s.slots().every((r) => r.episodeId > 380));
  });
});
