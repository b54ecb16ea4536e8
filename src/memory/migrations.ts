/**
 * The memory database schema, as numbered migrations. `schema_migrations` records each one applied (and
 * `PRAGMA user_version` mirrors the latest); each runs in its own transaction, so a kill during a
 * migration leaves the previous version. A database newer than `LATEST_SCHEMA_VERSION` is refused
 * (BITMAR_ERR_MEMORY_SCHEMA), never downgraded. Add a migration by appending; never edit a released one.
 */
import type Database from 'better-sqlite3';
import { BitmarError } from '../errors.js';

/** `PRAGMA application_id` of a memory database: ASCII "BMEM". Foreign databases are refused. */
export const MEMORY_APPLICATION_ID = 0x424d454d;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const EPISODE_COLUMNS = `
  episode_id     INTEGER NOT NULL,
  vector         BLOB    NOT NULL,   -- width·4 bytes, float32 little-endian
  first_seen_ms  REAL    NOT NULL,
  last_seen_ms   REAL    NOT NULL,
  write_count    REAL    NOT NULL,
  read_count     REAL    NOT NULL,
  usage          REAL    NOT NULL,
  age            REAL    NOT NULL,
  importance     REAL    NOT NULL,
  quality        REAL    NOT NULL,
  caption        TEXT    NOT NULL,
  source         TEXT    NOT NULL,
  -- frame_stamp_ns: decimal nanoseconds (beyond 2^53, so not an INTEGER read back as a double)
  frame_stamp_ns TEXT,
  -- pose: JSON {x,y,z,qx,qy,qz,qw,frame} or NULL
  pose           TEXT
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE slots (
        slot INTEGER PRIMARY KEY,
        ${EPISODE_COLUMNS},
        insert_tick REAL NOT NULL,
        touch_tick  REAL NOT NULL
      );
      CREATE TABLE archive (
        id INTEGER PRIMARY KEY,
        ${EPISODE_COLUMNS},
        archived_ms REAL NOT NULL
      );`,
  },
  {
    version: 2,
    name: 'archive-reason',
    sql: `
      ALTER TABLE archive ADD COLUMN reason TEXT NOT NULL DEFAULT 'evicted';
      CREATE INDEX archive_episode_id ON archive (episode_id);`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The applied version: 0 for an empty database (no `schema_migrations` table). */
export function schemaVersion(db: Database.Database): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (table === undefined) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Brings the database to `target` (default the latest), one transaction per migration. Returns the
 * versions applied. Throws BITMAR_ERR_MEMORY_SCHEMA for a database newer than this code.
 */
export function migrate(db: Database.Database, target = LATEST_SCHEMA_VERSION, nowMs = Date.now()): number[] {
  const current = schemaVersion(db);
  if (current > LATEST_SCHEMA_VERSION) {
    throw new BitmarError(
      'BITMAR_ERR_MEMORY_SCHEMA',
      `the memory database has schema version ${current}; this node understands up to ${LATEST_SCHEMA_VERSION}: upgrade bitmar-node, or point --state-dir elsewhere`,
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current || m.version > target) continue;
    db.transaction(() => {
      if (m.version === 1) {
        db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)`);
        db.pragma(`application_id = ${MEMORY_APPLICATION_ID}`);
      }
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)').run(m.version, m.name, Math.round(nowMs));
      db.pragma(`user_version = ${m.version}`);
    })();
    applied.push(m.version);
  }
  return applied;
}
