// Episodic memory benchmark (issue #6 numbers):
//   node --import tsx bench/memory.ts [--quick] [--kills N] [--json]
// 1. write + model read (liveVectors) at K=512, d=128, per policy, in-memory and SQLite: target ≤ 0.2 ms.
// 2. recall (top-10) over 100,000 archived episodes, WebAssembly SIMD and JavaScript scans: target ≤ 20 ms;
//    plus the cost of loading that archive at open and of a sync of a full interval.
// 3. crash test: N (default 50) kill -9 at random moments while a child writes; zero stores that fail to
//    open, loss within the sync bound (1000 ms + slack).
// Times are wall clock on whatever machine runs it; on the shared 2-core machine expect noise, so the
// per-op figures are medians and p99s over many repetitions.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArchiveIndex } from '../src/memory/archive-index.js';
import { InMemoryEpisodicStore } from '../src/memory/in-memory-store.js';
import { TopK } from '../src/memory/recall.js';
import { SqliteEpisodicStore } from '../src/memory/sqlite-store.js';
import type { EpisodicStore, PolicyName } from '../src/memory/store.js';
import { crashRounds } from '../test/memory/crash-harness.js';
import { ManualTimers, rng, unitVector } from '../test/memory/helpers.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const killsArg = args.indexOf('--kills');
const kills = killsArg >= 0 ? Number(args[killsArg + 1]) : quick ? 10 : 50;
const D = 128;
const K = 512;
const ARCHIVE = 100_000;
const results: Record<string, unknown> = {};
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'bitmar-bench-mem-'));
  dirs.push(d);
  return d;
};

function stats(samples: number[]): { median: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const fmt = (ms: number): string => `${ms.toFixed(4)} ms`;
function log(line: string): void {
  if (!asJson) console.log(line);
}

// ---- 1. write + read at K=512 ------------------------------------------------------------------------------

function writeRead(store: EpisodicStore, n: number): { median: number; p99: number; mean: number } {
  const r = rng(1);
  const vectors = Array.from({ length: 1024 }, () => unitVector(D, r));
  for (let i = 0; i < K; i++) store.write({ vector: vectors[i % vectors.length]!, caption: 'warm-up' }); // full memory
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = vectors[(i * 7) % vectors.length]!;
    const t0 = performance.now();
    store.write({ vector: v, caption: 'a red circle left of a blue square', source: '/camera/image_raw', frameStampNs: 1n });
    const live = store.liveVectors();
    const t1 = performance.now();
    if (live.count !== store.stats().used) throw new Error('bad snapshot');
    samples.push(t1 - t0);
  }
  return stats(samples);
}

log(`# episodic memory bench (K=${K}, d=${D}${quick ? ', quick' : ''})`);
log('\n## write + read (write one episode, then liveVectors() for the model), memory full');
const policies: PolicyName[] = ['lru', 'lfu', 'fifo', 'r1-score', 'similarity-merge', 'reservoir', 'ttl'];
const n = quick ? 2000 : 10_000;
const writeReadResults: Record<string, unknown> = {};
for (const policy of policies) {
  const mem = writeRead(new InMemoryEpisodicStore({ width: D, slots: K, policy }), n);
  const sq = SqliteEpisodicStore.open({ path: join(tmp(), 'm.sqlite'), width: D, slots: K, policy, timers: new ManualTimers() });
  const sql = writeRead(sq, n);
  sq.close();
  writeReadResults[policy] = { inMemory: mem, sqlite: sql };
  log(`${policy.padEnd(17)} in-memory median ${fmt(mem.median)} p99 ${fmt(mem.p99)} | sqlite median ${fmt(sql.median)} p99 ${fmt(sql.p99)}`);
}
{
  // The model read with R1 side effects, and one sync of a full interval's changes.
  const s = SqliteEpisodicStore.open({ path: join(tmp(), 'm.sqlite'), width: D, slots: K, policy: 'lru', timers: new ManualTimers() });
  writeRead(s, 100);
  const w = new Float32Array(K).fill(1 / K);
  const reads: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    s.recordRead(w);
    reads.push(performance.now() - t0);
  }
  s.flush();
  const syncs: number[] = [];
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 30; j++) s.write({ vector: unitVector(D, rng(i * 100 + j)) }); // ~30 batches a second
    s.recordRead(w);
    const t0 = performance.now();
    s.flush();
    syncs.push(performance.now() - t0);
  }
  s.close();
  writeReadResults['recordRead'] = stats(reads);
  writeReadResults['syncOf30WritesAndReads'] = stats(syncs);
  log(`recordRead(512)   median ${fmt(stats(reads).median)} p99 ${fmt(stats(reads).p99)}`);
  log(`one sync (30 writes + 512 read updates + archive rows) median ${fmt(stats(syncs).median)}`);
}
results['writeRead'] = writeReadResults;

// ---- 2. recall over 100,000 archived ------------------------------------------------------------------------

log(`\n## recall (top-10) over ${ARCHIVE.toLocaleString('en')} archived + ${K} live episodes`);
{
  const path = join(tmp(), 'recall.sqlite');
  const r = rng(2);
  const build = SqliteEpisodicStore.open({ path, width: D, slots: K, policy: 'fifo', archiveCap: ARCHIVE, timers: new ManualTimers() });
  const t0 = performance.now();
  for (let i = 0; i < ARCHIVE + K; i++) build.write({ vector: unitVector(D, r), caption: `episode ${i}`, source: 'bench' });
  const t1 = performance.now();
  build.flush();
  const t2 = performance.now();
  build.close();
  const t3 = performance.now();
  const store = SqliteEpisodicStore.open({ path, timers: new ManualTimers() });
  const t4 = performance.now();
  const st = store.stats();
  const queries = Array.from({ length: quick ? 50 : 200 }, () => unitVector(D, r));
  for (const q of queries.slice(0, 5)) store.query(q, 10);
  const samples = queries.map((q) => {
    const a = performance.now();
    store.query(q, 10);
    return performance.now() - a;
  });
  const recall = stats(samples);
  // The same scan with the JavaScript kernel (no SIMD), for comparison.
  const js = new ArchiveIndex(D, 'js');
  for (let i = 0; i < ARCHIVE; i++) js.append(i, unitVector(D, r));
  const jsSamples = queries.map((q) => {
    const a = performance.now();
    js.search(q, new TopK(10));
    return performance.now() - a;
  });
  store.close();
  results['recall'] = {
    archived: st.archiveSize,
    live: st.used,
    query: recall,
    jsScan: stats(jsSamples),
    writeMsPerEpisode: (t1 - t0) / (ARCHIVE + K),
    syncAllMs: t2 - t1,
    closeMs: t3 - t2,
    openWithArchiveMs: t4 - t3,
  };
  log(`archive ${st.archiveSize}, live ${st.used}`);
  log(`query (SIMD scan + live + top-k + metadata) median ${fmt(recall.median)} p99 ${fmt(recall.p99)}`);
  log(`JavaScript scan alone                       median ${fmt(stats(jsSamples).median)} p99 ${fmt(stats(jsSamples).p99)}`);
  log(`open (quick_check + load 100k vectors) ${(t4 - t3).toFixed(0)} ms; one sync of all 100k rows ${(t2 - t1).toFixed(0)} ms`);
}

// ---- 3. crash test -------------------------------------------------------------------------------------------

if (kills > 0) {
  log(`\n## crash test: ${kills} × kill -9 while writing (syncIntervalMs 1000)`);
  const t0 = performance.now();
  const rounds = await crashRounds({ dir: tmp(), kills, syncIntervalMs: 1000, slackMs: 500, seed: 50, maxRunMs: 2500 });
  const failedOpen = rounds.filter((r) => !r.opened).length;
  const problems = rounds.filter((r) => r.problem !== null);
  const windows = rounds.map((r) => r.lossWindowMs);
  results['crash'] = {
    kills: rounds.length,
    failedToOpen: failedOpen,
    problems: problems.map((p) => p.problem),
    maxLossWindowMs: Math.max(...windows),
    medianLossWindowMs: stats(windows).median,
    finalEpisodes: rounds.at(-1)?.persisted ?? 0,
    seconds: (performance.now() - t0) / 1000,
  };
  log(`kills ${rounds.length} (${rounds.filter((r) => r.phase === 'startup').length} during start-up), stores that failed to open ${failedOpen}, invariant violations ${problems.length}`);
  log(`loss window (oldest unsaved write → kill): median ${stats(windows).median} ms, max ${Math.max(...windows)} ms (bound 1000 ms + 500 ms slack)`);
  for (const p of problems) log(`  problem: ${p.problem}`);
}

for (const d of dirs) rmSync(d, { recursive: true, force: true });
if (asJson) console.log(JSON.stringify(results));
