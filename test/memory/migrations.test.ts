/** Schema migrations: versioned, recorded, one transaction each, data kept, newer schemas refused. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isBitmarError } from '../../src/errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, schemaVersion } from '../../src/memory/migrations.js';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { vectorToBytes } from '../../src/memory/vectors.js';
import { removeTempDirs, tempDir } from './helpers.js';

describe('memory schema migrations', () => {
  after(removeTempDirs);

  it('are numbered 1…N without gaps', () => {
    assert.deepEqual(MIGRATIONS.map((m) => m.version), Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
    assert.equal(LATEST_SCHEMA_VERSION, MIGRATIONS.length);
  });

  it('migrate records each version and is idempotent', () => {
    const db = new Database(':memory:');
    assert.equal(schemaVersion(db), 0);
    assert.deepEqual(migrate(db, 1, 10), [1]);
    assert.equal(schemaVersion(db), 1);
    assert.deepEqual(migrate(db, undefined, 20), [2]);
    assert.deepEqual(migrate(db), []);
    assert.deepEqual(db.prepare('SELECT version, name, applied_ms FROM schema_migrations ORDER BY version').all(), [
      { version: 1, name: 'initial', applied_ms: 10 },
      { version: 2, name: 'archive-reason', applied_ms: 20 },
    ]);
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    db.close();
  });

  it('upgrades a version-1 store written by an older node, keeping its episodes', () => {
    const path = join(tempDir(), 'memory.sqlite');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    migrate(db, 1);
    const row = (id: number) => ({
      episode_id: id, vector: vectorToBytes(Float32Array.of(1, 0, 0, id)), first_seen_ms: 1, last_seen_ms: 2, write_count: 1,
      read_count: 0, usage: 1, age: id, importance: 1, quality: 1, caption: `v1 episode ${id}`, source: 'old', frame_stamp_ns: null, pose: null,
    });
    const cols = 'episode_id, vector, first_seen_ms, last_seen_ms, write_count, read_count, usage, age, importance, quality, caption, source, frame_stamp_ns, pose';
    const vals = cols.split(', ').map((c) => `@${c}`).join(', ');
    db.prepare(`INSERT INTO slots (slot, ${cols}, insert_tick, touch_tick) VALUES (@slot, ${vals}, 1, 1)`).run({ slot: 0, ...row(2) });
    db.prepare(`INSERT INTO archive (id, ${cols}, archived_ms) VALUES (@id, ${vals}, 5)`).run({ id: 1, ...row(1) });
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)').run('width', '4', 'slots', '4');
    db.close();

    const s = SqliteEpisodicStore.open({ path });
    assert.equal(s.slot(0)!.caption, 'v1 episode 2');
    assert.deepEqual([...s.archived()].map((a) => [a.caption, a.reason]), [['v1 episode 1', 'evicted']]);
    assert.equal(s.query([1, 0, 0, 1], 1)[0]!.caption, 'v1 episode 1');
    s.write({ vector: [0, 1, 0, 0] });
    assert.equal(s.write({ vector: [0, 0, 1, 0] }).episodeId > 2, true, 'ids continue after the stored ones');
    s.close();
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), 2);
    check.close();
  });

  it('refuses to downgrade a newer schema', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(LATEST_SCHEMA_VERSION + 1, 'future');
    assert.throws(() => migrate(db), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_SCHEMA'));
    db.close();
  });

  it('a failed migration rolls back to the previous version', () => {
    const db = new Database(':memory:');
    migrate(db, 1);
    db.exec('CREATE INDEX archive_episode_id ON archive (episode_id)'); // makes migration 2 fail
    assert.throws(() => migrate(db));
    assert.equal(schemaVersion(db), 1);
    assert.deepEqual((db.prepare('PRAGMA table_info(archive)').all() as { name: string }[]).some((c) => c.name === 'reason'), false);
    db.close();
  });
});
