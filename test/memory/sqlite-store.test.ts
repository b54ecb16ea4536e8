/** SqliteEpisodicStore beyond the contract: persistence, the sync interval, and bad input on disk. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { isBitmarError } from '../../src/errors.js';
import { SqliteEpisodicStore, type SqliteStoreOptions } from '../../src/memory/sqlite-store.js';
import type { EpisodicStore } from '../../src/memory/store.js';
import { POLICY_NAMES } from '../../src/memory/eviction/index.js';
import { ManualTimers, removeTempDirs, rng, tempDir, unitVector } from './helpers.js';
import { checkInvariants } from './store-contract.js';

const dbIn = (dir: string): string => join(dir, 'memory.sqlite');

function snapshot(s: EpisodicStore): unknown {
  const { pendingWrites: _p, lastSyncMs: _l, writeErrors: _w, lastWriteError: _e, ...stats } = s.stats();
  return {
    slots: s.slots().map((r) => ({ ...r, vector: [...r.vector] })),
    archive: [...s.archived()].map((r) => ({ ...r, vector: [...r.vector] })),
    stats,
  };
}

function fill(s: EpisodicStore, n: number, seed = 1): void {
  const r = rng(seed);
  for (let i = 0; i < n; i++) s.write({ vector: unitVector(s.width, r), caption: `episode ${i}`, source: 'cam' });
}

describe('SqliteEpisodicStore', () => {
  after(removeTempDirs);

  it('creates a versioned WAL database and reopens with the stored width, K and policy', () => {
    const path = dbIn(tempDir());
    const s = SqliteEpisodicStore.open({ path, width: 8, slots: 16, policy: 'lfu' });
    fill(s, 3);
    s.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    assert.deepEqual((db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as unknown[]).length, 2);
    db.close();
    const again = SqliteEpisodicStore.open({ path });
    assert.deepEqual([again.width, again.capacity, again.policy.name, again.stats().used], [8, 16, 'lfu', 3]);
    again.close();
  });

  it('property: no slot lost or duplicated across close/reopen (every policy)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...POLICY_NAMES),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5000 })), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 3 }),
        (policy, K, ops, reopenEvery) => {
          const path = dbIn(tempDir());
          let now = 0;
          const opts: SqliteStoreOptions = { path, width: 4, slots: K, policy, clock: () => now, archiveCap: 8, timers: new ManualTimers() };
          let s = SqliteEpisodicStore.open(opts);
          const r = rng(K * 31 + ops.length);
          ops.forEach(([kind, dt], i) => {
            now += dt;
            if (kind === 0 && s.stats().used > 0) s.recordRead(Array.from(s.liveVectors().slotIds, () => r()));
            else s.write({ vector: unitVector(4, r), caption: `e${i}`, frameStampNs: BigInt(i) * 1_000_000_007n, timeMs: now });
            if (reopenEvery > 0 && i % reopenEvery === 0) {
              const before = snapshot(s);
              s.close();
              s = SqliteEpisodicStore.open({ ...opts, policy: undefined });
              assert.deepEqual(snapshot(s), before);
              checkInvariants(s);
            }
          });
          const before = snapshot(s);
          s.close();
          s = SqliteEpisodicStore.open({ path, timers: new ManualTimers() });
          assert.deepEqual(snapshot(s), before);
          // The reopened store continues identically (counters, ticks and the random stream were saved).
          s.write({ vector: [1, 0, 0, 0] });
          checkInvariants(s);
          s.close();
        },
      ),
      { numRuns: 25, seed: 1 },
    );
  });

  it('syncs at the interval, in one transaction, and on close', () => {
    const path = dbIn(tempDir());
    const timers = new ManualTimers();
    const s = SqliteEpisodicStore.open({ path, width: 4, slots: 4, syncIntervalMs: 500, timers, policy: 'lru' });
    assert.equal(timers.active, 1);
    const rows = (): number => {
      const db = new Database(path, { readonly: true });
      const n = (db.prepare('SELECT COUNT(*) AS n FROM slots').get() as { n: number }).n + (db.prepare('SELECT COUNT(*) AS n FROM archive').get() as { n: number }).n;
      db.close();
      return n;
    };
    fill(s, 6);
    assert.equal(rows(), 0, 'nothing on disk before the interval');
    assert.ok(s.stats().pendingWrites > 0);
    timers.fire();
    assert.equal(rows(), 6);
    assert.equal(s.stats().pendingWrites, 0);
    fill(s, 2, 9);
    s.close();
    assert.equal(timers.active, 0);
    assert.equal(rows(), 8);
  });

  it('syncIntervalMs 0 syncs every change at once', () => {
    const path = dbIn(tempDir());
    const s = SqliteEpisodicStore.open({ path, width: 4, syncIntervalMs: 0 });
    fill(s, 2);
    const db = new Database(path, { readonly: true });
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM slots').get() as { n: number }).n, 2);
    db.close();
    s.close();
  });

  it('archives the slots beyond K when reopened with fewer slots (ids kept)', () => {
    const path = dbIn(tempDir());
    const s = SqliteEpisodicStore.open({ path, width: 4, slots: 6, policy: 'lru' });
    fill(s, 6);
    s.close();
    const t = SqliteEpisodicStore.open({ path, slots: 4 });
    assert.deepEqual(t.slots().map((r) => r.episodeId), [1, 2, 3, 4]);
    assert.deepEqual([...t.archived()].map((a) => [a.episodeId, a.reason]), [[5, 'capacity'], [6, 'capacity']]);
    checkInvariants(t);
    t.close();
    const u = SqliteEpisodicStore.open({ path });
    assert.equal(u.capacity, 4);
    assert.equal(u.stats().archiveSize, 2);
    u.close();
  });

  describe('bad input', () => {
    it('refuses a file that is not SQLite, leaves it unchanged, and can move it aside', () => {
      const dir = tempDir();
      const path = dbIn(dir);
      const junk = Buffer.from('this is not a database, just some bytes '.repeat(200));
      writeFileSync(path, junk);
      assert.throws(() => SqliteEpisodicStore.open({ path, width: 4 }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN') && /corrupt or not a database/.test(e.message));
      assert.deepEqual(readFileSync(path), junk);
      const s = SqliteEpisodicStore.open({ path, width: 4, recoverCorrupt: true });
      const aside = s.stats().recoveredFrom!;
      assert.ok(aside.startsWith(`${path}.corrupt-`));
      assert.deepEqual(readFileSync(aside), junk, 'the corrupt file is kept, byte for byte');
      fill(s, 2);
      s.close();
      assert.ok(readdirSync(dir).length >= 2);
    });

    it('refuses a damaged memory database (quick_check) without changing it', () => {
      const path = dbIn(tempDir());
      const s = SqliteEpisodicStore.open({ path, width: 64, slots: 64, policy: 'fifo' });
      fill(s, 400);
      s.close();
      const bytes = readFileSync(path);
      const page = 4096;
      assert.ok(bytes.length > 8 * page);
      // Scribble over the b-tree page headers (every page but the first): the structure is broken.
      for (let p = page; p < bytes.length; p += page) for (let i = 0; i < 12; i++) bytes[p + i] = 0xa5;
      writeFileSync(path, bytes);
      assert.throws(() => SqliteEpisodicStore.open({ path }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN'));
      assert.deepEqual(readFileSync(path), bytes);
    });

    it("refuses another program's SQLite database and never moves it", () => {
      const path = dbIn(tempDir());
      const db = new Database(path);
      db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES (\'ada\')');
      db.close();
      const before = readFileSync(path);
      for (const recoverCorrupt of [false, true]) {
        assert.throws(() => SqliteEpisodicStore.open({ path, width: 4, recoverCorrupt }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN') && /another program/.test(e.message));
      }
      assert.deepEqual(readFileSync(path), before);
    });

    it('refuses a newer schema, a different width, and a new store without a width', () => {
      const path = dbIn(tempDir());
      SqliteEpisodicStore.open({ path, width: 4 }).close();
      assert.throws(() => SqliteEpisodicStore.open({ path, width: 8 }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN') && /width/.test(e.message));
      const db = new Database(path);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (99, ?, 0)').run('from the future');
      db.close();
      assert.throws(() => SqliteEpisodicStore.open({ path }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_SCHEMA'));
      assert.throws(() => SqliteEpisodicStore.open({ path: dbIn(tempDir()) }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN'));
    });

    it('reports a state directory that cannot be created', () => {
      // Root ignores chmod, so use paths nobody can create: below a regular file, and in sysfs.
      const file = join(tempDir(), 'a-file');
      writeFileSync(file, 'x');
      const paths = [join(file, 'state', 'memory.sqlite')];
      if (existsSync('/sys/kernel')) paths.push('/sys/kernel/bitmar-state/memory.sqlite');
      for (const path of paths) {
        assert.throws(
          () => SqliteEpisodicStore.open({ path, width: 4 }),
          (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN') && /state directory/.test(e.message),
        );
      }
    });

    it('a read-only state directory: a clear error for writing, a snapshot for reading (non-root only: root ignores permissions)', function () {
      if (process.getuid?.() === 0) this.skip();
      const dir = join(tempDir(), 'ro');
      const s = SqliteEpisodicStore.open({ path: dbIn(dir), width: 4, slots: 2 });
      fill(s, 3);
      s.close();
      chmodSync(dir, 0o555);
      try {
        assert.throws(() => SqliteEpisodicStore.open({ path: dbIn(dir) }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN') && /writable/.test(e.message));
        assert.throws(() => SqliteEpisodicStore.open({ path: join(dir, 'sub', 'memory.sqlite'), width: 4 }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN'));
        const r = SqliteEpisodicStore.open({ path: dbIn(dir), readOnly: true });
        assert.equal(r.stats().used, 2);
        assert.equal(r.stats().archiveSize, 1);
        r.close();
      } finally {
        chmodSync(dir, 0o755);
      }
    });

    it('readOnly: serves the stored memory, keeps changes in RAM only, never writes', () => {
      const path = dbIn(tempDir());
      const s = SqliteEpisodicStore.open({ path, width: 4, slots: 2, policy: 'lru' });
      fill(s, 3);
      s.close();
      const mtime = statSync(path).mtimeMs;
      const r = SqliteEpisodicStore.open({ path, readOnly: true });
      assert.equal(r.stats().persistent, false);
      assert.equal(r.query([1, 0, 0, 0], 5).length, 3);
      r.write({ vector: [0, 0, 0, 1], caption: 'only in RAM' });
      assert.equal(r.query([0, 0, 0, 1], 1)[0]!.caption, 'only in RAM');
      r.close();
      assert.equal(statSync(path).mtimeMs, mtime);
      const again = SqliteEpisodicStore.open({ path });
      assert.equal(again.stats().offered, 3);
      again.close();
      assert.throws(() => SqliteEpisodicStore.open({ path: dbIn(tempDir()), readOnly: true, width: 4 }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_OPEN'));
    });

    it('a full disk (SQLITE_FULL): counted, retried, RAM keeps working, nothing stored is lost', () => {
      const path = dbIn(tempDir());
      let db: Database.Database | null = null;
      const errors: string[] = [];
      const timers = new ManualTimers();
      const base = { path, timers, onError: (e: Error) => errors.push(e.message) };
      const s0 = SqliteEpisodicStore.open({ ...base, width: 32, slots: 8, policy: 'lru' });
      fill(s0, 8);
      s0.close();
      const stored = snapshot(SqliteEpisodicStore.open({ path, readOnly: true }));
      const s = SqliteEpisodicStore.open({
        ...base,
        configure: (d) => {
          db = d;
          d.pragma(`max_page_count = ${d.pragma('page_count', { simple: true }) as number}`);
        },
      });
      fill(s, 300, 2); // evictions fill the archive: the database must grow
      timers.fire();
      assert.equal(s.stats().writeErrors, 1);
      assert.match(s.stats().lastWriteError!, /SQLITE_FULL/);
      assert.equal(errors.length, 1);
      assert.throws(() => s.flush(), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_WRITE') && /full/.test(e.message));
      assert.equal(s.stats().writeErrors, 2);
      // RAM keeps working.
      s.write({ vector: unitVector(32, rng(77)), caption: 'after the disk filled' });
      assert.equal(s.query(s.slots().at(-1)!.vector, 1)[0]!.score > 0.99, true);
      // What was stored before is intact (another connection reads the committed state).
      const peek = SqliteEpisodicStore.open({ path, readOnly: true });
      assert.deepEqual(snapshot(peek), stored);
      peek.close();
      // Space comes back: the retry writes everything.
      db!.pragma('max_page_count = 1073741823');
      timers.fire();
      assert.equal(s.stats().pendingWrites, 0);
      const expected = snapshot(s);
      s.close();
      const t = SqliteEpisodicStore.open({ path, timers });
      assert.deepEqual(snapshot(t), expected);
      t.close();
    });

    it('a database that turns read-only: sync errors counted, close throws BITMAR_ERR_MEMORY_WRITE, file still opens', () => {
      const path = dbIn(tempDir());
      const s0 = SqliteEpisodicStore.open({ path, width: 4, slots: 4 });
      fill(s0, 4);
      s0.close();
      const s = SqliteEpisodicStore.open({ path, timers: new ManualTimers(), configure: (d) => d.pragma('query_only = 1') });
      fill(s, 2, 5);
      assert.throws(() => s.flush(), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_WRITE') && /read-only/.test(e.message));
      assert.throws(() => s.close(), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_WRITE'));
      const t = SqliteEpisodicStore.open({ path });
      assert.equal(t.stats().offered, 4);
      t.close();
    });

    it('skips stored rows whose vector blob has the wrong size (counted)', () => {
      const path = dbIn(tempDir());
      const s = SqliteEpisodicStore.open({ path, width: 4, slots: 4 });
      fill(s, 3);
      s.close();
      const db = new Database(path);
      db.prepare('UPDATE slots SET vector = ? WHERE slot = 1').run(Buffer.alloc(3));
      db.close();
      const t = SqliteEpisodicStore.open({ path });
      assert.equal(t.stats().skippedRows, 1);
      assert.equal(t.stats().used, 2);
      t.close();
    });
  });

  it('leaves no stray files besides the database when closed', () => {
    const dir = tempDir();
    const s = SqliteEpisodicStore.open({ path: dbIn(dir), width: 4 });
    fill(s, 3);
    s.close();
    assert.ok(existsSync(dbIn(dir)));
    assert.ok(readdirSync(dir).every((f) => f === 'memory.sqlite' || statSync(join(dir, f)).size === 0));
  });
});
