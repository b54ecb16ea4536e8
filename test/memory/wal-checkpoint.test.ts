/** SqliteEpisodicStore's WAL checkpoints: off the main thread in a worker, a bounded main-thread fallback. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isBitmarError } from '../../src/errors.js';
import { SqliteEpisodicStore, type SqliteStoreOptions } from '../../src/memory/sqlite-store.js';
import { ManualTimers, removeTempDirs, rng, tempDir, unitVector } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/checkpoint-child.ts', import.meta.url));
const dbIn = (dir: string): string => join(dir, 'memory.sqlite');
const walSize = (path: string): number => {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Opens a store whose main connection counts the checkpoints run on it. */
function openCounting(options: SqliteStoreOptions): { store: SqliteEpisodicStore; mainCheckpointCalls: () => number } {
  let calls = 0;
  const store = SqliteEpisodicStore.open({
    ...options,
    configure: (db) => {
      const pragma = db.pragma.bind(db);
      db.pragma = ((source: string, opts?: Database.PragmaOptions) => {
        if (/wal_checkpoint/i.test(source)) calls++;
        return pragma(source, opts);
      }) as typeof db.pragma;
    },
  });
  return { store, mainCheckpointCalls: () => calls };
}

const workerOf = (s: SqliteEpisodicStore): Worker | null => (s as unknown as { checkpointer: { worker: Worker | null } }).checkpointer.worker;

/** The database file alone, without its WAL: what checkpoints have copied into it. */
function slotsInMainFile(path: string): number {
  const bytes = readFileSync(path);
  bytes[18] = 1; // rollback journal: read the file as it stands
  bytes[19] = 1;
  const db = new Database(bytes);
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM slots').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('SqliteEpisodicStore WAL checkpoints', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  it('the connection never checkpoints automatically; a reset WAL is cut back to what it holds', () => {
    let db: Database.Database | null = null;
    const s = SqliteEpisodicStore.open({ path: dbIn(tempDir()), width: 4, configure: (d) => (db = d) });
    assert.equal(db!.pragma('wal_autocheckpoint', { simple: true }), 0);
    assert.equal(db!.pragma('journal_size_limit', { simple: true }), 0);
    s.close();
  });

  it('a worker thread checkpoints after syncs; the main thread runs no checkpoint', async () => {
    const path = dbIn(tempDir());
    // The worker is asked from 256 KiB of WAL on; the main thread would step in above 1 MiB.
    const { store: s, mainCheckpointCalls } = openCounting({ path, width: 16, slots: 64, syncIntervalMs: 0, checkpointIntervalMs: 0, maxWalBytes: 1 << 20 });
    const r = rng(3);
    for (let i = 0; s.checkpointStats().workerCheckpoints < 3; i++) {
      assert.ok(i < 2000, 'the worker checkpointed');
      s.write({ vector: unitVector(16, r), caption: `e${i}` });
      await sleep(10);
    }
    await until(() => workerOf(s) !== null && !(s as unknown as { checkpointer: { inFlight: boolean } }).checkpointer.inFlight, 'the last checkpoint');
    const st = s.checkpointStats();
    assert.equal(mainCheckpointCalls(), 0);
    assert.equal(st.mainCheckpoints, 0);
    assert.equal(st.workerFailures, 0, String(st.lastWorkerError));
    assert.ok(st.workerRunning);
    // The worker also restarted the WAL (the restart's header fsync is then the worker's, not the main thread's).
    assert.ok(st.workerRestarts >= 1 && st.workerRestarts <= st.workerCheckpoints, `restarts ${st.workerRestarts} of ${st.workerCheckpoints}`);
    // A restart cuts the -wal file back to the worker's one page (journal_size_limit 0 on its connection too).
    if (st.workerRestarts === st.workerCheckpoints) assert.ok(statSync(`${path}-wal`).size <= 32 + 2 * (24 + 4096), `-wal of ${statSync(`${path}-wal`).size} bytes`);
    // The checkpoints copied committed pages into the database file itself.
    assert.ok(slotsInMainFile(path) > 0);
    // What is left in the WAL, another connection can checkpoint completely (no frame stuck).
    const other = new Database(path);
    const [res] = other.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    other.close();
    assert.deepEqual([res!.busy, res!.log], [0, res!.checkpointed]);
    s.close();
  });

  it('checkpointWorker false: no thread, and the main-thread fallback keeps the WAL near the bound', () => {
    const path = dbIn(tempDir());
    const maxWalBytes = 65_536;
    const { store: s, mainCheckpointCalls } = openCounting({ path, width: 64, slots: 256, syncIntervalMs: 0, checkpointWorker: false, checkpointIntervalMs: 0, maxWalBytes });
    const r = rng(5);
    let biggest = 0;
    for (let i = 0; i < 1500; i++) {
      s.write({ vector: unitVector(64, r), caption: `e${i}` });
      biggest = Math.max(biggest, walSize(path));
    }
    const st = s.checkpointStats();
    assert.ok(st.mainCheckpoints > 0);
    assert.equal(mainCheckpointCalls(), st.mainCheckpoints);
    assert.deepEqual([st.workerCheckpoints, st.workerRunning, st.workerFailures], [0, false, 0]);
    assert.equal(workerOf(s), null);
    // Over the bound by at most the sync that crossed it (the next commit after a checkpoint cuts the file back).
    assert.ok(biggest < 2 * maxWalBytes, `WAL reached ${biggest} bytes`);
    s.close();
    assert.equal(SqliteEpisodicStore.open({ path, timers: new ManualTimers() }).stats().used, 256);
  });

  it('a killed worker is counted and not restarted; the fallback takes over', async () => {
    const path = dbIn(tempDir());
    const maxWalBytes = 65_536;
    const { store: s, mainCheckpointCalls } = openCounting({ path, width: 64, slots: 256, syncIntervalMs: 0, checkpointIntervalMs: 0, maxWalBytes });
    const r = rng(7);
    for (let i = 0; s.checkpointStats().workerCheckpoints < 1; i++) {
      assert.ok(i < 2000, 'the worker checkpointed');
      s.write({ vector: unitVector(64, r), caption: `a${i}` });
      await sleep(5);
    }
    const w = workerOf(s)!;
    await w.terminate();
    await until(() => s.checkpointStats().workerFailures === 1, 'the exit to be counted');
    assert.equal(s.checkpointStats().workerRunning, false);
    const calls = mainCheckpointCalls();
    let biggest = 0;
    for (let i = 0; i < 1500; i++) {
      s.write({ vector: unitVector(64, r), caption: `b${i}` });
      biggest = Math.max(biggest, walSize(path));
    }
    const st = s.checkpointStats();
    assert.ok(st.mainCheckpoints > 0 && mainCheckpointCalls() > calls);
    assert.equal(workerOf(s), w, 'not restarted');
    assert.ok(biggest < 2 * maxWalBytes, `WAL reached ${biggest} bytes`);
    assert.match(String(st.lastWorkerError), /exited/);
    s.close();
  });

  it('close stops the worker first, leaves only the database file, and a reopen sees everything', async () => {
    const dir = tempDir();
    const path = dbIn(dir);
    const s = SqliteEpisodicStore.open({ path, width: 8, slots: 32, archiveCap: 1000, syncIntervalMs: 0, checkpointIntervalMs: 0, maxWalBytes: 65_536 });
    const r = rng(9);
    for (let i = 0; s.checkpointStats().workerCheckpoints < 2 || i < 100; i++) {
      assert.ok(i < 5000, 'the worker checkpointed');
      s.write({ vector: unitVector(8, r), caption: `e${i}` });
      if (i % 10 === 0) await sleep(5);
    }
    const w = workerOf(s)!;
    const exited = once(w, 'exit');
    const before = { slots: s.slots().map((x) => x.caption), archive: [...s.archived()].map((x) => x.caption), stats: s.stats() };
    s.close();
    assert.equal(s.checkpointStats().workerRunning, false);
    assert.deepEqual(readdirSync(dir), ['memory.sqlite']); // the worker's connection was closed before the store's
    await Promise.race([exited, sleep(5000).then(() => assert.fail('the worker thread did not exit'))]);
    assert.equal(w.threadId, -1);
    const again = SqliteEpisodicStore.open({ path, timers: new ManualTimers() });
    assert.deepEqual({ slots: again.slots().map((x) => x.caption), archive: [...again.archived()].map((x) => x.caption) }, { slots: before.slots, archive: before.archive });
    assert.equal(again.stats().offered, before.stats.offered);
    again.close();
  });

  it('a store closed before its worker got going: the worker never opens the file', async () => {
    const dir = tempDir();
    const s = SqliteEpisodicStore.open({ path: dbIn(dir), width: 4, syncIntervalMs: 0, checkpointIntervalMs: 0, maxWalBytes: 65_536 });
    for (let i = 0; workerOf(s) === null; i++) {
      assert.ok(i < 1000, 'the worker started');
      s.write({ vector: [1, i, 0, 0], caption: `e${i}` });
    }
    const w = workerOf(s)!;
    s.close(); // at once: the thread is still loading
    await Promise.race([once(w, 'exit'), sleep(5000).then(() => assert.fail('the worker thread did not exit'))]);
    assert.deepEqual(readdirSync(dir), ['memory.sqlite']);
    assert.equal(s.checkpointStats().workerFailures, 0);
  });

  it("checkpointWorker 'eager' (what run uses) starts the worker at open, before any checkpoint, and close still stops it", async () => {
    const dir = tempDir();
    const s = SqliteEpisodicStore.open({ path: dbIn(dir), width: 4, syncIntervalMs: 0, checkpointWorker: 'eager' });
    const w = workerOf(s);
    assert.ok(w !== null, 'started at open');
    assert.equal(s.checkpointStats().workerCheckpoints, 0);
    s.write({ vector: [1, 0, 0, 0], caption: 'one' });
    await sleep(200); // let the thread load
    s.close();
    await Promise.race([once(w, 'exit'), sleep(5000).then(() => assert.fail('the worker thread did not exit'))]);
    assert.deepEqual(readdirSync(dir), ['memory.sqlite']);
    assert.equal(s.checkpointStats().workerFailures, 0);
  });

  it('read-only stores and stores whose WAL stays small start no worker', () => {
    const path = dbIn(tempDir());
    const s = SqliteEpisodicStore.open({ path, width: 4, syncIntervalMs: 0, checkpointIntervalMs: 0 }); // asked from 1000 pages on
    for (let i = 0; i < 20; i++) s.write({ vector: [1, i, 0, 0] });
    assert.equal(workerOf(s), null);
    s.close();
    const ro = SqliteEpisodicStore.open({ path, readOnly: true, checkpointIntervalMs: 0, maxWalBytes: 65_536 });
    ro.write({ vector: [0, 1, 0, 0] });
    assert.equal((ro as unknown as { checkpointer: unknown }).checkpointer, null);
    assert.deepEqual(ro.checkpointStats(), { workerCheckpoints: 0, workerRestarts: 0, mainCheckpoints: 0, workerFailures: 0, lastWorkerError: null, workerRunning: false, walBytes: 0 });
    ro.close();
  });

  it('refuses invalid checkpoint options', () => {
    const path = dbIn(tempDir());
    for (const bad of [{ checkpointIntervalMs: -1 }, { checkpointIntervalMs: 1.5 }, { maxWalBytes: 1000 }, { maxWalBytes: Number.NaN }]) {
      assert.throws(() => SqliteEpisodicStore.open({ path, width: 4, ...bad }), (e: unknown) => isBitmarError(e) && e.code === 'BITMAR_ERR_CONFIG_INVALID');
    }
  });

  for (const mode of ['close', 'open'] as const) {
    it(`a process with a checkpoint worker exits on its own (store ${mode === 'close' ? 'closed' : 'left open'})`, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbIn(tempDir()), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      clearTimeout(timer);
      assert.equal(signal, null, 'the child hung and was killed');
      assert.equal(code, 0);
      assert.match(out, /^done [1-9]/);
    });
  }
});
