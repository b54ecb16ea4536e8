/**
 * The EpisodicStore contract: one suite, run against every implementation (in-memory-store.test.ts,
 * sqlite-store.test.ts). Property tests (fast-check) drive random operation sequences and check after
 * every step that capacity is never exceeded, no episode is lost or duplicated, and each policy evicts
 * what it promises, against a reference written from the policy's definition.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { isBitmarError } from '../../src/errors.js';
import { exportMemory, importMemory } from '../../src/memory/export-format.js';
import type { EpisodicStore, EpisodicStoreOptions, PolicyConfig, PolicyName, SlotRecord } from '../../src/memory/store.js';
import { POLICY_NAMES } from '../../src/memory/eviction/index.js';
import { cosine, rng, tempDir, unitVector } from './helpers.js';

export type StoreFactory = (options: EpisodicStoreOptions & { readonly width: number }) => EpisodicStore;

export interface ContractOptions {
  /** fast-check runs per property. */
  readonly runs: number;
}

type Op =
  | { kind: 'write'; base: number; noise: number[]; fresh: boolean; dtMs: number }
  | { kind: 'read'; weights: number[] }
  | { kind: 'tick'; dtMs: number };

const W = 4;
const BASES = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0.7, 0.7, 0, 0],
  [0, 0, 1, 0],
];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      base: fc.integer({ min: 0, max: BASES.length - 1 }),
      noise: fc.array(fc.integer({ min: -40, max: 40 }), { minLength: W, maxLength: W }),
      fresh: fc.boolean(),
      dtMs: fc.integer({ min: 0, max: 400 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), weights: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 0, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), dtMs: fc.integer({ min: 0, max: 2000 }) }) },
);

function opVector(op: Extract<Op, { kind: 'write' }>): Float32Array {
  const v = new Float32Array(W);
  for (let i = 0; i < W; i++) v[i] = (op.fresh ? 0 : BASES[op.base]![i]!) + op.noise[i]! / (op.fresh ? 40 : 400);
  if (v.every((x) => x === 0)) v[0] = 1;
  return v;
}

const policyConfigs: Record<PolicyName, PolicyConfig> = {
  lru: { name: 'lru' },
  lfu: { name: 'lfu' },
  fifo: { name: 'fifo' },
  'r1-score': { name: 'r1-score' },
  'similarity-merge': { name: 'similarity-merge', threshold: 0.95, alpha: 0.3 },
  reservoir: { name: 'reservoir' },
  ttl: { name: 'ttl', ttlMs: 1500 },
};

/** The reference victim of a full memory: the policy's definition, ties to the lowest slot. */
function referenceVictim(policy: PolicyName, live: readonly SlotRecord[]): SlotRecord {
  const keys: Record<PolicyName, (r: SlotRecord) => number[]> = {
    lru: (r) => [r.touchTick],
    ttl: (r) => [r.touchTick],
    'similarity-merge': (r) => [r.touchTick],
    lfu: (r) => [r.writeCount + r.readCount, r.touchTick],
    fifo: (r) => [r.insertTick],
    'r1-score': (r) => [0.4 * r.age + 0.3 * r.usage + 0.2 * r.quality + 0.1 * r.importance],
    reservoir: () => [0],
  };
  const key = keys[policy];
  let best = live[0]!;
  for (const r of live.slice(1)) {
    const a = key(r);
    const b = key(best);
    const i = a.findIndex((x, j) => x !== b[j]);
    if (i >= 0 && a[i]! < b[i]!) best = r;
  }
  return best;
}

function allEpisodeIds(store: EpisodicStore): number[] {
  return [...store.slots().map((s) => s.episodeId), ...[...store.archived()].map((a) => a.episodeId)];
}

/** Checks the invariants that hold after any operation. */
export function checkInvariants(store: EpisodicStore): void {
  const st = store.stats();
  assert.ok(st.used <= store.capacity, 'capacity exceeded');
  assert.equal(store.slots().length, st.used);
  assert.equal(store.liveVectors().count, st.used);
  const ids = allEpisodeIds(store);
  assert.equal(new Set(ids).size, ids.length, 'an episode is duplicated');
  assert.equal(st.archiveSize, [...store.archived()].length);
  assert.ok(st.archiveSize <= st.archiveCap);
  // Conservation: every accepted write is live, archived, merged into another, or dropped from a full archive.
  assert.equal(st.used + st.archiveSize + st.archiveDropped + st.merges + st.cleared, st.offered, 'an episode was lost');
}

export function storeContract(name: string, open: StoreFactory, options: ContractOptions): void {
  describe(`EpisodicStore contract: ${name}`, () => {
    const stores: EpisodicStore[] = [];
    const make: StoreFactory = (o) => {
      const s = open(o);
      stores.push(s);
      return s;
    };
    afterEach(() => {
      for (const s of stores.splice(0)) {
        try {
          s.close();
        } catch {
          // a test may have closed it already
        }
      }
    });

    it('fills free slots lowest first and keeps every field', () => {
      const s = make({ width: 3, slots: 4, policy: 'lru', clock: () => 1000 });
      const pose = { x: 1, y: 2, z: 3, qx: 0, qy: 0, qz: 0, qw: 1, frame: 'odom' };
      const r = s.write({ vector: [1, 0, 0], caption: 'a red circle', source: '/camera/image_raw', frameStampNs: 1_700_000_000_123_456_789n, pose });
      assert.deepEqual(r, { action: 'inserted', slot: 0, episodeId: 1, expired: 0 });
      assert.equal(s.write({ vector: [0, 1, 0] }).slot, 1);
      const rec = s.slot(0)!;
      assert.equal(rec.caption, 'a red circle');
      assert.equal(rec.source, '/camera/image_raw');
      assert.equal(rec.frameStampNs, 1_700_000_000_123_456_789n);
      assert.deepEqual(rec.pose, pose);
      assert.deepEqual([...rec.vector], [1, 0, 0]);
      assert.equal(rec.firstSeenMs, 1000);
      assert.equal(rec.writeCount, 1);
      assert.equal(rec.importance, 1);
      assert.equal(rec.quality, 1);
      assert.equal(s.slot(2), undefined);
      assert.equal(s.stats().used, 2);
      assert.equal(s.stats().slots, 4);
    });

    it('rejects a vector of the wrong width, NaN or Infinity: counted, nothing stored', () => {
      const s = make({ width: 4, slots: 4 });
      s.write({ vector: [1, 0, 0, 0] });
      const before = s.liveVectors();
      for (const bad of [[1, 0, 0], [1, 0, 0, 0, 0], [NaN, 0, 0, 0], [0, Infinity, 0, 0], Float32Array.of(0, 0, -Infinity, 1), [1e39, 0, 0, 0]]) {
        assert.throws(() => s.write({ vector: bad }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_VECTOR'));
      }
      assert.equal(s.stats().rejected, 6);
      assert.equal(s.stats().used, 1);
      assert.equal(s.stats().offered, 1);
      assert.equal(s.liveVectors(), before, 'the live snapshot did not change');
      assert.throws(() => s.query([1, 2], 1), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_VECTOR'));
    });

    it('drops a non-finite pose but keeps the episode (counted)', () => {
      const s = make({ width: 2, slots: 2 });
      s.write({ vector: [1, 0], pose: { x: NaN, y: 0, z: 0, qx: 0, qy: 0, qz: 0, qw: 1, frame: 'odom' } });
      assert.equal(s.slot(0)!.pose, null);
      assert.equal(s.stats().posesDropped, 1);
    });

    it('liveVectors is a cached [count, d] snapshot, rebuilt only after a change', () => {
      const s = make({ width: 2, slots: 4, policy: 'lru' });
      s.write({ vector: [1, 0] });
      s.write({ vector: [0, 2] });
      const a = s.liveVectors();
      assert.equal(a, s.liveVectors());
      assert.deepEqual([...a.slots], [1, 0, 0, 2]);
      assert.deepEqual([...a.slotIds], [0, 1]);
      s.recordRead([0.5, 0.5]);
      assert.equal(s.liveVectors(), a, 'a read does not change the vectors');
      s.write({ vector: [3, 3] });
      const b = s.liveVectors();
      assert.notEqual(b, a);
      assert.ok(b.version > a.version);
      assert.equal(b.count, 3);
      assert.deepEqual([...a.slots], [1, 0, 0, 2], 'an old snapshot is never mutated');
    });

    it('recordRead applies R1 usage/importance updates and counts reads at or above uniform weight', () => {
      const s = make({ width: 2, slots: 4, policy: 'lru' });
      s.write({ vector: [1, 0] });
      s.write({ vector: [0, 1] });
      s.write({ vector: [1, 1] });
      s.recordRead([0.7, 0.2, 0.1]);
      const [a, b, c] = s.slots();
      assert.ok(Math.abs(a!.usage - 1.7) < 1e-12);
      assert.ok(Math.abs(a!.importance - (0.9 + 0.1 * (0.7 + 1e-8))) < 1e-12);
      assert.ok(Math.abs(c!.importance - (0.9 + 0.1 * (0.1 + 1e-8))) < 1e-12);
      assert.equal(a!.readCount, 1);
      assert.equal(b!.readCount, 0);
      assert.ok(a!.touchTick > c!.touchTick);
      assert.throws(() => s.recordRead([1, 0]), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_VECTOR'));
      assert.throws(() => s.recordRead([NaN, 0, 0]), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_VECTOR'));
    });

    describe('each policy evicts what it promises', () => {
      it('lru evicts the least recently read or written', () => {
        const s = make({ width: 2, slots: 3, policy: 'lru' });
        for (const v of [[1, 0], [0, 1], [1, 1]]) s.write({ vector: v });
        s.recordRead([0.9, 0.05, 0.05], [0, 1, 2]); // slot 0 read: most recent now
        const r = s.write({ vector: [1, -1] });
        assert.equal(r.slot, 1);
        assert.equal(r.evicted!.episodeId, 2);
      });

      it('lfu evicts the least counted (writes + reads)', () => {
        const s = make({ width: 2, slots: 3, policy: 'lfu' });
        for (const v of [[1, 0], [0, 1], [1, 1]]) s.write({ vector: v });
        s.recordRead([0.5, 0, 0.5], [0, 1, 2]);
        s.recordRead([0.5, 0, 0.5], [0, 1, 2]);
        const r = s.write({ vector: [1, -1] });
        assert.equal(r.evicted!.episodeId, 2);
      });

      it('fifo evicts the oldest write, whatever was read', () => {
        const s = make({ width: 2, slots: 3, policy: 'fifo' });
        for (const v of [[1, 0], [0, 1], [1, 1]]) s.write({ vector: v });
        s.recordRead([1, 0, 0], [0, 1, 2]);
        assert.equal(s.write({ vector: [1, -1] }).evicted!.episodeId, 1);
        assert.equal(s.write({ vector: [2, -1] }).evicted!.episodeId, 2);
      });

      it('r1-score evicts the lowest 0.4·age + 0.3·usage + 0.2·quality + 0.1·importance', () => {
        const s = make({ width: 2, slots: 3, policy: 'r1-score' });
        s.write({ vector: [1, 0], quality: 5 });
        s.write({ vector: [0, 1], quality: 0 });
        s.write({ vector: [1, 1], quality: 3 });
        // scores: slot0 0.4+0.3+1+0.1 = 1.8; slot1 0.8+0.3+0+0.1 = 1.2; slot2 1.2+0.3+0.6+0.1 = 2.2
        assert.equal(s.write({ vector: [1, -1] }).evicted!.episodeId, 2);
      });

      it('similarity-merge merges at or above the threshold and not below', () => {
        const s = make({ width: 2, slots: 4, policy: { name: 'similarity-merge', threshold: 0.9, alpha: 0.5 } });
        s.write({ vector: [1, 0], caption: 'first' });
        const angle = (deg: number): number[] => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
        const near = s.write({ vector: angle(20), caption: 'second' }); // cos 0.940 ≥ 0.9
        assert.equal(near.action, 'merged');
        assert.equal(near.slot, 0);
        assert.equal(s.stats().used, 1);
        const merged = s.slot(0)!;
        assert.ok(Math.abs(Math.hypot(...merged.vector) - 1) < 1e-6, 'renormalised');
        assert.ok(Math.abs(cosine(merged.vector, angle(10)) - 1) < 1e-6, 'the EMA with α=0.5 lies halfway');
        assert.equal(merged.caption, 'second');
        assert.equal(merged.writeCount, 2);
        const far = s.write({ vector: angle(10 + 30) }); // cos 0.866 < 0.9
        assert.equal(far.action, 'inserted');
        assert.equal(s.stats().used, 2);
        assert.equal(s.stats().merges, 1);
      });

      it('ttl expires episodes not seen for longer than ttlMs first, then falls back to lru', () => {
        let now = 0;
        const s = make({ width: 2, slots: 3, policy: { name: 'ttl', ttlMs: 1000 }, clock: () => now });
        s.write({ vector: [1, 0] });
        now = 500;
        s.write({ vector: [0, 1] });
        s.write({ vector: [1, 1] });
        now = 1400; // slot 0 is 1400 ms old
        const r = s.write({ vector: [1, -1] });
        assert.equal(r.expired, 1);
        assert.equal(r.action, 'inserted');
        assert.equal(r.slot, 0);
        assert.equal([...s.archived()][0]!.reason, 'expired');
        now = 1450; // nothing expired: lru (slot 1, written at 500)
        assert.equal(s.write({ vector: [2, 1] }).evicted!.episodeId, 2);
        now = 10_000;
        assert.equal(s.expire(), 3);
        assert.equal(s.stats().used, 0);
        assert.equal(s.stats().expired, 4);
      });

      it('reservoir keeps the first K, then replaces or discards (discarded episodes are archived)', () => {
        const s = make({ width: 2, slots: 2, policy: 'reservoir', seed: 7 });
        const actions = Array.from({ length: 40 }, (_, i) => s.write({ vector: [1, i] }).action);
        assert.deepEqual(actions.slice(0, 2), ['inserted', 'inserted']);
        assert.ok(actions.includes('discarded') && actions.includes('replaced'));
        assert.equal(s.stats().used + s.stats().archiveSize, 40);
      });

      for (const policy of POLICY_NAMES) {
        it(`property (${policy}): never over capacity, nothing lost or duplicated, the promised victim`, () => {
          fc.assert(
            fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 6 }), (K, ops, cap) => {
              let now = 1_000;
              const cfg = policyConfigs[policy];
              const s = make({ width: W, slots: K, policy: cfg, clock: () => now, archiveCap: cap, seed: 3 });
              try {
                for (const op of ops) {
                  if (op.kind === 'tick') now += op.dtMs;
                  else if (op.kind === 'read') {
                    const ids = s.liveVectors().slotIds;
                    const w = ids.length === 0 ? [] : Array.from(ids, (_, i) => op.weights[i % Math.max(1, op.weights.length)] ?? 1);
                    const sum = w.reduce((a, b) => a + b, 0) || 1;
                    s.recordRead(w.map((x) => x / sum));
                  } else {
                    now += op.dtMs;
                    checkWrite(s, policy, cfg, opVector(op), now);
                  }
                  checkInvariants(s);
                }
              } finally {
                s.close();
              }
            }),
            { numRuns: options.runs, seed: 42 },
          );
        });
      }
    });

    it('switches policy at run time and rejects unknown policies or parameters', () => {
      const s = make({ width: 2, slots: 2, policy: 'fifo' });
      s.setPolicy({ name: 'similarity-merge', threshold: 0.5 });
      assert.deepEqual(s.policy, { name: 'similarity-merge', threshold: 0.5, alpha: 0.2 });
      assert.equal(s.stats().policy, 'similarity-merge');
      assert.throws(() => s.setPolicy('random' as PolicyName), (e) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
      assert.throws(() => s.setPolicy({ name: 'ttl', ttlMs: -1 }), (e) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
      assert.throws(() => s.setPolicy({ name: 'similarity-merge', alpha: 0 }), (e) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
      assert.throws(() => make({ width: 0 }), (e) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
      assert.throws(() => make({ width: 2, slots: 0 }), (e) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
    });

    it('is deterministic under a seed', () => {
      const run = (seed: number): string => {
        const s = make({ width: 3, slots: 8, policy: 'reservoir', seed, clock: () => 5 });
        const r = rng(99);
        for (let i = 0; i < 200; i++) s.write({ vector: unitVector(3, r) });
        const out = JSON.stringify([s.slots().map((x) => x.episodeId), [...s.archived()].map((a) => [a.archiveId, a.episodeId])]);
        s.close();
        return out;
      };
      assert.equal(run(11), run(11));
      assert.notEqual(run(11), run(12));
    });

    it('query returns the top-k by cosine over live slots and the archive, best first', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 10 }), fc.integer(), (K, n, k, seed) => {
          const r = rng(seed);
          const d = 8;
          const s = make({ width: d, slots: K, policy: 'fifo' });
          try {
            const all = new Map<number, Float32Array>();
            for (let i = 0; i < n; i++) {
              const v = unitVector(d, r).map((x) => x * (0.5 + r()));
              all.set(s.write({ vector: v, caption: `c${i}` }).episodeId, v);
            }
            const q = unitVector(d, r);
            const hits = s.query(q, k);
            const expected = [...all.entries()].map(([id, v]) => ({ id, score: cosine(v, q) })).sort((a, b) => b.score - a.score);
            assert.equal(hits.length, Math.min(k, n));
            hits.forEach((h, i) => {
              assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-5, `rank ${i}`);
              assert.ok(Math.abs(h.score - cosine(all.get(h.episodeId)!, q)) < 1e-5);
              assert.equal(h.caption, `c${h.episodeId - 1}`);
              assert.ok((h.slot === undefined) !== (h.archiveId === undefined));
            });
            const live = s.query(q, k, { includeArchive: false });
            assert.ok(live.every((h) => h.slot !== undefined));
            assert.equal(live.length, Math.min(k, s.stats().used));
          } finally {
            s.close();
          }
        }),
        { numRuns: options.runs, seed: 7 },
      );
      const s = make({ width: 2 });
      assert.throws(() => s.query([1, 0], 0), RangeError);
    });

    it('caps the archive: the oldest rows are dropped first, and counted', () => {
      const s = make({ width: 2, slots: 1, policy: 'lru', archiveCap: 3 });
      for (let i = 0; i < 7; i++) s.write({ vector: [1, i] });
      assert.deepEqual([...s.archived()].map((a) => a.episodeId), [4, 5, 6]);
      assert.equal(s.stats().archiveDropped, 3);
      assert.deepEqual(s.query([1, 0], 10).map((h) => h.episodeId).sort(), [4, 5, 6, 7]);
    });

    it('clear removes the live slots and (unless told not to) the archive; ids keep increasing', () => {
      const s = make({ width: 2, slots: 2, policy: 'lru' });
      for (let i = 0; i < 5; i++) s.write({ vector: [1, i] });
      s.clear({ archive: false });
      assert.equal(s.stats().used, 0);
      assert.equal(s.stats().archiveSize, 3);
      s.clear();
      assert.equal(s.stats().archiveSize, 0);
      assert.equal(s.query([1, 0], 3).length, 0);
      assert.equal(s.write({ vector: [1, 0] }).episodeId, 6);
    });

    it('export then import (replace) restores slots, metadata and archive', () => {
      const dir = tempDir();
      const a = make({ width: 4, slots: 3, policy: 'lru', clock: () => 1234 });
      const r = rng(5);
      for (let i = 0; i < 7; i++) {
        a.write({ vector: unitVector(4, r), caption: `ep ${i}`, source: 'cam', frameStampNs: BigInt(i) * 10n ** 18n, pose: i % 2 ? { x: i, y: 0, z: 0, qx: 0, qy: 0, qz: 0, qw: 1, frame: 'map' } : null });
      }
      a.recordRead([0.2, 0.3, 0.5]);
      const file = join(dir, 'export.jsonl');
      const summary = exportMemory(a, file);
      assert.deepEqual([summary.slots, summary.archive], [3, 4]);
      const b = make({ width: 4, slots: 3, policy: 'lru' });
      b.write({ vector: [1, 0, 0, 0] });
      const imported = importMemory(b, file, { replace: true });
      assert.deepEqual([imported.slots, imported.archive], [3, 4]);
      const strip = (x: SlotRecord | object): object => {
        const { episodeId: _e, insertTick: _i, touchTick: _t, archiveId: _a, archivedMs: _m, ...rest } = x as Record<string, unknown>;
        return { ...rest, vector: [...(rest['vector'] as Float32Array)] };
      };
      assert.deepEqual(b.slots().map(strip), a.slots().map(strip));
      assert.deepEqual([...b.archived()].map(strip), [...a.archived()].map(strip));
      assert.deepEqual([...b.archived()].map((x) => x.reason), ['evicted', 'evicted', 'evicted', 'evicted']);
      checkInvariants(b);
    });
  });
}

/** One write, checked against the reference of `policy`. */
function checkWrite(s: EpisodicStore, policy: PolicyName, cfg: PolicyConfig, v: Float32Array, now: number): void {
  let live = s.slots();
  let expectedExpired = 0;
  if (cfg.name === 'ttl') {
    const old = live.filter((r) => now - r.lastSeenMs > cfg.ttlMs);
    expectedExpired = old.length;
    live = live.filter((r) => !old.includes(r));
  }
  const archivedBefore = s.stats().archiveSize + s.stats().archiveDropped;
  const result = s.write({ vector: v });
  assert.equal(result.expired, expectedExpired);
  if (cfg.name === 'similarity-merge') {
    let best: SlotRecord | undefined;
    let bestScore = -Infinity;
    for (const r of live) {
      const c = cosine(r.vector, v);
      if (c > bestScore + 1e-12) {
        best = r;
        bestScore = c;
      }
    }
    if (best !== undefined && bestScore >= cfg.threshold + 1e-6) {
      assert.equal(result.action, 'merged');
      assert.equal(result.slot, best.slot);
      return;
    }
    if (best !== undefined && bestScore > cfg.threshold - 1e-6) return; // too close to the threshold to call
    assert.notEqual(result.action, 'merged', `merged below the threshold (${bestScore})`);
  }
  if (live.length < s.capacity) {
    const used = new Set(live.map((r) => r.slot));
    let free = 0;
    while (used.has(free)) free++;
    assert.equal(result.action, 'inserted');
    assert.equal(result.slot, free, 'the lowest free slot');
    return;
  }
  if (policy === 'reservoir') {
    assert.ok(result.action === 'replaced' || result.action === 'discarded');
    return;
  }
  assert.equal(result.action, 'replaced');
  const victim = referenceVictim(policy, live);
  assert.equal(result.evicted!.episodeId, victim.episodeId, `${policy} evicted the wrong episode`);
  assert.equal(result.slot, victim.slot);
  assert.equal(s.stats().archiveSize + s.stats().archiveDropped, archivedBefore + 1 + expectedExpired);
}
