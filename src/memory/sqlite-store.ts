/**
 * The episodic memory persisted in SQLite (better-sqlite3, WAL). Every change is applied in memory at
 * once (MemoryCore) and marked dirty; a timer syncs the dirty slots, new and dropped archive rows and the
 * counters in one transaction every `syncIntervalMs`, and `close` syncs the rest. A kill -9 therefore
 * loses at most the changes of the last interval, and never leaves a store that fails to open: a commit
 * is atomic in WAL mode, and an unfinished one is ignored at the next open.
 *
 * Lifecycle: open (mkdir, header and application_id checks, quick_check, migrations, load) → ready
 * (timer syncs) → close (stop the checkpoint worker, final sync, `wal_checkpoint(TRUNCATE)`). A failed
 * sync (disk full, read-only file) is counted, reported through `onError`, and retried at the next tick;
 * the in-memory state keeps working and the database keeps its last committed state.
 *
 * Checkpoints: the connection runs with `wal_autocheckpoint = 0`, so no commit of the timer ever runs
 * SQLite's automatic checkpoint (and its fsyncs) on the event loop. A read-write store checkpoints the
 * WAL PASSIVE from a worker thread instead, with a main-thread fallback when the WAL outgrows a bound
 * (wal-checkpointer.ts; `checkpointStats()`). Read-only stores start no worker.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { BitmarError, isBitmarError } from '../errors.js';
import { resolvePolicy, type PolicyConfig } from './eviction/index.js';
import { MemoryCore, isPose, type CoreCounters, type PersistenceStats } from './memory-core.js';
import { LATEST_SCHEMA_VERSION, MEMORY_APPLICATION_ID, migrate, schemaVersion } from './migrations.js';
import type { ArchivedEpisode, ArchiveReason, EpisodeRecord, EpisodicStoreOptions, Pose, SlotRecord } from './store.js';
import { LITTLE_ENDIAN, vectorFromBytes, vectorToBytes } from './vectors.js';
import { CHECKPOINT_PAGES, DEFAULT_CHECKPOINT_INTERVAL_MS, NO_CHECKPOINT_STATS, WalCheckpointer, type CheckpointStats } from './wal-checkpointer.js';

/** The timer the store syncs with (tests pass a manual one). */
export interface SyncTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface SqliteStoreOptions extends EpisodicStoreOptions {
  /** The database file (the directory is created). */
  readonly path: string;
  /** Longest time a change waits in memory before it is synced, ms, 0…600,000; default 1000. 0 = sync after every change. */
  readonly syncIntervalMs?: number;
  /** Open without writing anything: changes stay in memory (`stats().persistent` is false). */
  readonly readOnly?: boolean;
  /** Move a corrupt database aside (`<path>.corrupt-<ms>`, nothing deleted) and start an empty one. Default false: throw. */
  readonly recoverCorrupt?: boolean;
  /** Run `PRAGMA quick_check` at open; default true. */
  readonly integrityCheck?: boolean;
  readonly timers?: SyncTimers;
  /** Called with each failed background sync (already counted in `stats().writeErrors`). */
  readonly onError?: (error: BitmarError) => void;
  /** Called with the connection after it is opened (tests use it to simulate a full or read-only disk). */
  readonly configure?: (db: Database.Database) => void;
  /**
   * Checkpoint the WAL from a worker thread. true (default): the thread starts at the first checkpoint,
   * so short-lived stores (CLI commands) never start one; 'eager': it starts now, so a daemon's memory
   * holds its cost from the start instead of growing minutes later; false: only the main-thread
   * fallback (a test hook).
   */
  readonly checkpointWorker?: boolean | 'eager';
  /** Shortest time between two checkpoint requests to the worker, ms, 0…600,000; default 1000. */
  readonly checkpointIntervalMs?: number;
  /**
   * The -wal size above which the main thread checkpoints itself, bytes ≥ 65536; the worker is asked
   * from a quarter of it. Default 4 × 1000 pages (16 MB with 4 KiB pages).
   */
  readonly maxWalBytes?: number;
}

export const DEFAULT_SYNC_INTERVAL_MS = 1000;

const SQLITE_HEADER = 'SQLite format 3\0';

const realTimers: SyncTimers = {
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval(handle) {
    clearInterval(handle as NodeJS.Timeout);
  },
};

interface SlotRow {
  slot: number;
  episode_id: number;
  vector: Buffer;
  first_seen_ms: number;
  last_seen_ms: number;
  write_count: number;
  read_count: number;
  usage: number;
  age: number;
  importance: number;
  quality: number;
  caption: string;
  source: string;
  frame_stamp_ns: string | null;
  pose: string | null;
  insert_tick: number;
  touch_tick: number;
}

interface ArchiveRow extends Omit<SlotRow, 'slot' | 'insert_tick' | 'touch_tick'> {
  id: number;
  archived_ms: number;
  reason: string;
}

const EPISODE_COLS =
  'episode_id, vector, first_seen_ms, last_seen_ms, write_count, read_count, usage, age, importance, quality, caption, source, frame_stamp_ns, pose';

export class SqliteEpisodicStore extends MemoryCore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly readOnly: boolean;
  private readonly syncIntervalMs: number;
  private readonly timers: SyncTimers;
  private readonly timer: unknown;
  private readonly onError: ((error: BitmarError) => void) | undefined;
  private readonly recoveredFrom: string | null;
  private readonly stmt: Statements;
  private readonly checkpointer: WalCheckpointer | null;

  // What the next sync writes.
  private readonly dirtyFull = new Set<number>();
  private readonly dirtyStats = new Set<number>();
  private readonly pendingArchive = new Map<number, ArchivedEpisode>();
  /** Archive ids below this are gone (dropped or cleared); the database learns at the next sync. */
  private dropBelow = 0;
  private syncedDropBelow = 0;
  private clearSlots = false;
  private trimSlots = false;
  private metaDirty = false;

  private writeErrors = 0;
  private lastWriteError: string | null = null;
  private lastSyncMs: number | null = null;
  private skippedRows = 0;

  /**
   * Opens (or creates) a store. Throws BITMAR_ERR_MEMORY_OPEN (corrupt or foreign file, no permission,
   * width missing or different), BITMAR_ERR_MEMORY_SCHEMA (newer schema), BITMAR_ERR_CONFIG_INVALID.
   */
  static open(options: SqliteStoreOptions): SqliteEpisodicStore {
    const path = resolve(options.path);
    checkCheckpointOptions(options);
    if (!options.readOnly && options.width === undefined && !nonEmptyFile(path)) {
      throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `no memory store at ${path}; creating one needs the model width (option width)`);
    }
    const { db, recoveredFrom } = openDatabase(path, options);
    try {
      const storedWidth = metaNumber(db, 'width');
      const width = options.width ?? storedWidth;
      if (width === undefined) {
        throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `no memory store at ${path}; creating one needs the model width (option width)`);
      }
      if (storedWidth !== undefined && storedWidth !== width) {
        throw new BitmarError(
          'BITMAR_ERR_MEMORY_OPEN',
          `the memory at ${path} holds width-${storedWidth} episodes but the model has width ${width}: use another --state-dir (or export, clear and re-import after converting)`,
        );
      }
      // K and the archive cap default to what the store was last opened with.
      const slots = options.slots ?? metaNumber(db, 'slots');
      const archiveCap = options.archiveCap ?? metaNumber(db, 'archive_cap');
      const resolved = { ...options, width, ...(slots === undefined ? {} : { slots }), ...(archiveCap === undefined ? {} : { archiveCap }) };
      return new SqliteEpisodicStore(db, path, resolved, recoveredFrom);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private constructor(
    db: Database.Database,
    path: string,
    options: SqliteStoreOptions & { readonly width: number },
    recoveredFrom: string | null,
  ) {
    super(options);
    this.db = db;
    this.path = path;
    this.readOnly = options.readOnly === true;
    this.syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    if (!(Number.isInteger(this.syncIntervalMs) && this.syncIntervalMs >= 0 && this.syncIntervalMs <= 600_000)) {
      throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory.syncIntervalMs: ${String(this.syncIntervalMs)} is invalid; allowed: an integer in [0, 600000]`);
    }
    this.onError = options.onError;
    this.recoveredFrom = recoveredFrom;
    this.stmt = prepareStatements(db, this.readOnly);
    this.checkpointer =
      this.readOnly || db.memory
        ? null
        : new WalCheckpointer({
            path,
            db,
            useWorker: options.checkpointWorker !== false,
            eager: options.checkpointWorker === 'eager',
            intervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
            maxWalBytes: maxWalBytes(db, options),
          });
    this.load(options);
    this.timers = options.timers ?? realTimers;
    this.timer = !this.readOnly && this.syncIntervalMs > 0 ? this.timers.setInterval(() => this.syncQuietly(), this.syncIntervalMs) : null;
    if (!this.readOnly) this.syncQuietly();
  }

  // ---- EpisodicStore ----------------------------------------------------------------------------

  *archived(): Iterable<ArchivedEpisode> {
    this.assertOpen();
    // Pending ids are larger than every synced one (ids increase; a Map keeps insertion order).
    const pendingFirst = this.pendingArchive.keys().next().value ?? Infinity;
    let from = this.dropBelow;
    for (;;) {
      const rows = this.stmt.archivePage.all(from, pendingFirst) as ArchiveRow[];
      for (const row of rows) {
        const rec = this.archiveFromRow(row);
        if (rec !== null) yield rec;
      }
      if (rows.length === 0) break;
      from = rows[rows.length - 1]!.id + 1;
    }
    for (const rec of this.pendingArchive.values()) if (rec.archiveId >= this.dropBelow) yield rec;
  }

  flush(): void {
    this.assertOpen();
    if (this.readOnly || this.pendingWrites() === 0) return;
    try {
      this.db.transaction(() => this.writeDirty())();
    } catch (e) {
      this.writeErrors++;
      const err = this.writeError(e);
      this.lastWriteError = err.message;
      throw err;
    }
    this.dirtyFull.clear();
    this.dirtyStats.clear();
    this.pendingArchive.clear();
    this.syncedDropBelow = this.dropBelow;
    this.clearSlots = false;
    this.trimSlots = false;
    this.metaDirty = false;
    this.lastSyncMs = this.clock();
    this.checkpointer?.afterSync();
  }

  close(): void {
    if (this.closed) return;
    if (this.timer !== null) this.timers.clearInterval(this.timer);
    let failure: unknown = null;
    // The worker closes its connection first: this close is then the last one and removes -wal and -shm.
    this.checkpointer?.stop();
    if (!this.readOnly) {
      try {
        this.flush();
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (e) {
        failure = e;
      }
    }
    this.closed = true;
    this.db.close();
    if (failure !== null) {
      throw isBitmarError(failure) ? failure : this.writeError(failure);
    }
  }

  /** WAL checkpoints so far (all zero for a read-only store). */
  checkpointStats(): CheckpointStats {
    return this.checkpointer?.stats() ?? NO_CHECKPOINT_STATS;
  }

  // ---- hooks --------------------------------------------------------------------------------------

  protected override onSlotChanged(slot: number, full: boolean): void {
    if (this.readOnly) return;
    if (full) this.dirtyFull.add(slot);
    else this.dirtyStats.add(slot);
  }

  protected override onArchived(episode: ArchivedEpisode): void {
    this.pendingArchive.set(episode.archiveId, episode);
  }

  protected override onArchiveDropped(archiveId: number): void {
    this.pendingArchive.delete(archiveId);
    if (archiveId + 1 > this.dropBelow) this.dropBelow = archiveId + 1;
  }

  protected override onCleared(archive: boolean): void {
    this.clearSlots = true;
    if (archive) {
      this.pendingArchive.clear();
      this.dropBelow = this.counters.nextArchiveId;
    }
  }

  protected override changed(): void {
    this.metaDirty = true;
    if (this.syncIntervalMs === 0 && !this.readOnly) this.syncQuietly();
  }

  protected override archiveRecord(archiveId: number): ArchivedEpisode | undefined {
    if (archiveId < this.dropBelow) return undefined;
    const pending = this.pendingArchive.get(archiveId);
    if (pending !== undefined) return pending;
    const row = this.stmt.archiveById.get(archiveId) as ArchiveRow | undefined;
    return row === undefined ? undefined : (this.archiveFromRow(row) ?? undefined);
  }

  protected override persistenceStats(): PersistenceStats {
    return {
      persistent: !this.readOnly,
      writeErrors: this.writeErrors,
      lastWriteError: this.lastWriteError,
      pendingWrites: this.readOnly ? 0 : this.pendingWrites(),
      lastSyncMs: this.lastSyncMs,
      skippedRows: this.skippedRows,
      recoveredFrom: this.recoveredFrom,
    };
  }

  // ---- sync ---------------------------------------------------------------------------------------

  private pendingWrites(): number {
    const flags = (this.clearSlots ? 1 : 0) + (this.trimSlots ? 1 : 0) + (this.metaDirty ? 1 : 0);
    const drops = this.dropBelow > this.syncedDropBelow ? 1 : 0;
    return this.dirtyFull.size + this.dirtyStats.size + this.pendingArchive.size + flags + drops;
  }

  /** The body of the sync transaction. */
  private writeDirty(): void {
    const s = this.stmt;
    if (this.clearSlots) s.deleteAllSlots.run();
    if (this.trimSlots) s.deleteSlotsFrom.run(this.capacity);
    for (const slot of this.dirtyFull) {
      const rec = this.slot(slot);
      if (rec === undefined) s.deleteSlot.run(slot);
      else s.upsertSlot.run(slotParams(rec));
    }
    for (const slot of this.dirtyStats) {
      if (this.dirtyFull.has(slot)) continue;
      const rec = this.slot(slot);
      if (rec !== undefined) s.updateSlotStats.run(rec.readCount, rec.usage, rec.importance, rec.touchTick, slot);
    }
    for (const rec of this.pendingArchive.values()) s.insertArchive.run(archiveParams(rec));
    if (this.dropBelow > this.syncedDropBelow) s.deleteArchiveBelow.run(this.dropBelow);
    s.setMeta.run('counters', JSON.stringify(this.counters));
    s.setMeta.run('policy', JSON.stringify(this.policy));
    s.setMeta.run('slots', String(this.capacity));
    s.setMeta.run('archive_cap', String(this.archiveCap));
  }

  private syncQuietly(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch (e) {
      if (this.onError !== undefined && isBitmarError(e)) this.onError(e);
    }
  }

  private writeError(e: unknown): BitmarError {
    const code = sqliteCode(e);
    const hint =
      code === 'SQLITE_FULL'
        ? 'the disk (or the database size limit) is full: free space'
        : code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH'
          ? 'the database or its directory is read-only: fix the permissions or choose another --state-dir'
          : code === 'SQLITE_BUSY'
            ? 'another process holds the database'
            : 'check the disk';
    return new BitmarError(
      'BITMAR_ERR_MEMORY_WRITE',
      `could not save the memory to ${this.path} (${code || String(e)}): ${hint}; the memory keeps working in RAM and the save is retried`,
      { cause: e },
    );
  }

  // ---- load ---------------------------------------------------------------------------------------

  private load(options: SqliteStoreOptions): void {
    const db = this.db;
    const fresh = metaNumber(db, 'width') === undefined;
    if (fresh) {
      if (!this.readOnly) {
        db.transaction(() => {
          this.stmt.setMeta.run('width', String(this.width));
          this.stmt.setMeta.run('slots', String(this.capacity));
          this.stmt.setMeta.run('created_ms', String(Math.round(this.clock())));
        })();
      }
      this.metaDirty = true;
      return;
    }
    const counters = parseCounters(metaString(db, 'counters'));
    const storedPolicy = parsePolicy(metaString(db, 'policy'));
    if (counters !== null) this.loadState(counters, options.policy === undefined ? storedPolicy : null);
    const overflow: SlotRecord[] = [];
    for (const row of db.prepare('SELECT * FROM slots ORDER BY slot').iterate() as IterableIterator<SlotRow>) {
      const rec = this.slotFromRow(row);
      if (rec === null) continue;
      if (rec.slot < this.capacity) this.loadSlot(rec);
      else overflow.push(rec);
    }
    let lastId = 0;
    const rows = db.prepare('SELECT id, vector FROM archive ORDER BY id').raw(true).iterate() as IterableIterator<[number, Buffer]>;
    for (const [id, blob] of rows) {
      // Zero-copy view when the blob is aligned (little-endian hosts), else a decoded copy.
      const v =
        LITTLE_ENDIAN && blob.byteOffset % 4 === 0 && blob.byteLength === this.width * 4
          ? new Float32Array(blob.buffer, blob.byteOffset, this.width)
          : vectorFromBytes(blob, this.width);
      if (v === null) {
        this.skippedRows++;
        continue;
      }
      this.loadArchiveVector(id, v);
      lastId = id;
    }
    // Counters missing (a store from a tool that wrote only rows) or behind the rows: ids must never repeat.
    const c = this.counters;
    const maxArchived = (db.prepare('SELECT MAX(episode_id) AS m FROM archive').get() as { m: number | null }).m ?? 0;
    let maxEpisode = maxArchived;
    let maxTick = 0;
    for (const r of [...this.slots(), ...overflow]) {
      maxEpisode = Math.max(maxEpisode, r.episodeId);
      maxTick = Math.max(maxTick, r.insertTick, r.touchTick);
    }
    c.nextArchiveId = Math.max(c.nextArchiveId, lastId + 1);
    c.nextEpisodeId = Math.max(c.nextEpisodeId, maxEpisode + 1);
    c.tick = Math.max(c.tick, maxTick);
    if (counters === null) c.offered = this.slots().length + overflow.length + this.index.size;
    this.dropBelow = this.syncedDropBelow = 0;
    this.trimArchive();
    if (overflow.length > 0) {
      // K shrank: the slots ≥ K go to the archive (reason 'capacity'), their rows are deleted.
      this.trimSlots = true;
      for (const rec of overflow) this.archiveOverflow(rec);
    }
    if (options.policy !== undefined || overflow.length > 0) this.metaDirty = true;
  }

  private archiveOverflow(rec: SlotRecord): void {
    const { slot: _slot, insertTick: _i, touchTick: _t, ...episode } = rec;
    this.archiveEpisode(episode, 'capacity');
    this.counters.evictions++;
  }

  private slotFromRow(row: SlotRow): SlotRecord | null {
    const vector = vectorFromBytes(row.vector, this.width);
    if (vector === null) {
      this.skippedRows++;
      return null;
    }
    return {
      ...episodeFromRow(row, vector),
      slot: row.slot,
      insertTick: row.insert_tick,
      touchTick: row.touch_tick,
    };
  }

  private archiveFromRow(row: ArchiveRow): ArchivedEpisode | null {
    const vector = vectorFromBytes(row.vector, this.width);
    if (vector === null) return null;
    return {
      ...episodeFromRow(row, vector),
      archiveId: row.id,
      archivedMs: row.archived_ms,
      reason: isReason(row.reason) ? row.reason : 'evicted',
    };
  }
}

// ---- opening ----------------------------------------------------------------------------------------

/** Opens, checks and migrates the database; moves a corrupt one aside when asked. */
function openDatabase(path: string, options: SqliteStoreOptions): { db: Database.Database; recoveredFrom: string | null } {
  try {
    return { db: openChecked(path, options), recoveredFrom: null };
  } catch (e) {
    if (!(options.recoverCorrupt === true && !options.readOnly && isBitmarError(e) && corruptErrors.has(e))) throw e;
    const aside = `${path}.corrupt-${Date.now()}`;
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    }
    return { db: openChecked(path, options), recoveredFrom: aside };
  }
}

/** Errors that mean "this file is a damaged memory database" (recoverable by moving it aside). */
const corruptErrors = new WeakSet<BitmarError>();

function openChecked(path: string, options: SqliteStoreOptions): Database.Database {
  const readOnly = options.readOnly === true;
  if (!readOnly) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw new BitmarError(
        'BITMAR_ERR_MEMORY_OPEN',
        `cannot create the state directory ${dirname(path)} (${errCode(e)}): choose a writable --state-dir, or open the memory read-only`,
        { cause: e },
      );
    }
  }
  checkHeader(path);
  try {
    return prepareDatabase(connect(path, readOnly), path, options);
  } catch (e) {
    // A WAL database in a directory we cannot write: SQLite cannot create its -shm file even to read.
    // Read-only callers (the CLI) then get a snapshot of the file as of its last checkpoint.
    if (!(readOnly && nonEmptyFile(path) && /^SQLITE_(CANTOPEN|READONLY)/.test(sqliteCode(causeOf(e))))) throw e;
    return prepareDatabase(snapshot(path), path, options);
  }
}

function connect(path: string, readOnly: boolean): Database.Database {
  try {
    return new Database(path, { readonly: readOnly, fileMustExist: readOnly, timeout: 5000 });
  } catch (e) {
    throw openError(path, e, readOnly);
  }
}

/** The file as an in-memory database (journal mode bytes set to rollback: a snapshot has no WAL). */
function snapshot(path: string): Database.Database {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw openError(path, e, true);
  }
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  try {
    return new Database(bytes);
  } catch (e) {
    throw openError(path, e, true);
  }
}

/** Ownership, integrity and schema checks, migrations; closes the connection when one fails. */
function prepareDatabase(db: Database.Database, path: string, options: SqliteStoreOptions): Database.Database {
  const readOnly = options.readOnly === true;
  try {
    checkOwnership(db, path); // before anything writes to the file
    if (!readOnly) {
      db.pragma('journal_mode = WAL');
      // No automatic checkpoint inside the timer's commits (wal-checkpointer.ts checkpoints instead). The
      // first commit after a completed checkpoint cuts the -wal file back to what it holds, so its size is
      // what was written since (the checkpointer's measure) and it never stays large.
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('journal_size_limit = 0');
    }
    db.pragma('synchronous = NORMAL');
    if (options.integrityCheck !== false) {
      const result = db.pragma('quick_check', { simple: true });
      if (result !== 'ok') throw corrupt(path, `quick_check: ${String(result)}`);
    }
    const version = schemaVersion(db);
    if (readOnly) {
      if (version > LATEST_SCHEMA_VERSION) migrate(db); // throws BITMAR_ERR_MEMORY_SCHEMA
      if (version < LATEST_SCHEMA_VERSION) {
        throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `the memory at ${path} has schema version ${version}; open it read-write once to upgrade it`);
      }
    } else {
      migrate(db);
    }
    options.configure?.(db);
    return db;
  } catch (e) {
    db.close();
    throw isBitmarError(e) ? e : openError(path, e, readOnly);
  }
}

function causeOf(e: unknown): unknown {
  return e instanceof Error && e.cause !== undefined ? e.cause : e;
}

/** A non-SQLite file is refused before SQLite touches it. */
function checkHeader(path: string): void {
  if (!nonEmptyFile(path)) return;
  const head = Buffer.alloc(16);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_MEMORY_OPEN', `cannot read ${path} (${errCode(e)}): fix its permissions`, { cause: e });
  }
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== SQLITE_HEADER) throw corrupt(path, 'not an SQLite database');
}

/** Refuses a database that some other program made (tables present, application_id not ours). */
function checkOwnership(db: Database.Database, path: string): void {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
  if (tables.length === 0) return;
  const appId = db.pragma('application_id', { simple: true });
  if (appId !== MEMORY_APPLICATION_ID || !tables.includes('schema_migrations')) {
    throw new BitmarError(
      'BITMAR_ERR_MEMORY_OPEN',
      `${path} is an SQLite database of another program (application_id ${String(appId)}, tables ${tables.slice(0, 5).join(', ')}), not a BitMar memory: pass another --db or --state-dir; the file was not changed`,
    );
  }
}

function corrupt(path: string, detail: string): BitmarError {
  const e = new BitmarError(
    'BITMAR_ERR_MEMORY_OPEN',
    `the memory database ${path} is corrupt or not a database (${detail}): move it away (it was not changed), or open with recoverCorrupt to move it aside automatically`,
  );
  corruptErrors.add(e);
  return e;
}

function openError(path: string, e: unknown, readOnly: boolean): BitmarError {
  const code = sqliteCode(e) || errCode(e);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) return corrupt(path, code);
  const hint = readOnly
    ? 'check that the file exists and is readable'
    : 'check that the state directory and the file are writable, or open the memory read-only';
  return new BitmarError('BITMAR_ERR_MEMORY_OPEN', `cannot open the memory database ${path} (${code}): ${hint}`, { cause: e });
}

/** The statements a store runs (writes are no-ops in a read-only store). */
function prepareStatements(db: Database.Database, readOnly: boolean) {
  const noop = { run: () => undefined } as unknown as Database.Statement;
  const w = (sql: string): Database.Statement => (readOnly ? noop : db.prepare(sql));
  return {
    setMeta: w('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    upsertSlot: w(
      `INSERT OR REPLACE INTO slots (slot, ${EPISODE_COLS}, insert_tick, touch_tick)
       VALUES (@slot, @episode_id, @vector, @first_seen_ms, @last_seen_ms, @write_count, @read_count, @usage, @age,
               @importance, @quality, @caption, @source, @frame_stamp_ns, @pose, @insert_tick, @touch_tick)`,
    ),
    updateSlotStats: w('UPDATE slots SET read_count = ?, usage = ?, importance = ?, touch_tick = ? WHERE slot = ?'),
    deleteSlot: w('DELETE FROM slots WHERE slot = ?'),
    deleteAllSlots: w('DELETE FROM slots'),
    deleteSlotsFrom: w('DELETE FROM slots WHERE slot >= ?'),
    insertArchive: w(
      `INSERT OR REPLACE INTO archive (id, ${EPISODE_COLS}, archived_ms, reason)
       VALUES (@id, @episode_id, @vector, @first_seen_ms, @last_seen_ms, @write_count, @read_count, @usage, @age,
               @importance, @quality, @caption, @source, @frame_stamp_ns, @pose, @archived_ms, @reason)`,
    ),
    deleteArchiveBelow: w('DELETE FROM archive WHERE id < ?'),
    archiveById: db.prepare('SELECT * FROM archive WHERE id = ?'),
    archivePage: db.prepare('SELECT * FROM archive WHERE id >= ? AND id < ? ORDER BY id LIMIT 1000'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

// ---- rows ---------------------------------------------------------------------------------------------

function episodeFromRow(row: Omit<SlotRow, 'slot' | 'insert_tick' | 'touch_tick'>, vector: Float32Array): EpisodeRecord {
  return {
    episodeId: row.episode_id,
    vector,
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
    writeCount: row.write_count,
    readCount: row.read_count,
    usage: row.usage,
    age: row.age,
    importance: row.importance,
    quality: row.quality,
    caption: row.caption,
    source: row.source,
    frameStampNs: parseStamp(row.frame_stamp_ns),
    pose: parsePose(row.pose),
  };
}

function episodeParams(rec: EpisodeRecord): Record<string, unknown> {
  return {
    episode_id: rec.episodeId,
    vector: vectorToBytes(rec.vector),
    first_seen_ms: rec.firstSeenMs,
    last_seen_ms: rec.lastSeenMs,
    write_count: rec.writeCount,
    read_count: rec.readCount,
    usage: rec.usage,
    age: rec.age,
    importance: rec.importance,
    quality: rec.quality,
    caption: rec.caption,
    source: rec.source,
    frame_stamp_ns: rec.frameStampNs === null ? null : rec.frameStampNs.toString(),
    pose: rec.pose === null ? null : JSON.stringify(rec.pose),
  };
}

function slotParams(rec: SlotRecord): Record<string, unknown> {
  return { ...episodeParams(rec), slot: rec.slot, insert_tick: rec.insertTick, touch_tick: rec.touchTick };
}

function archiveParams(rec: ArchivedEpisode): Record<string, unknown> {
  return { ...episodeParams(rec), id: rec.archiveId, archived_ms: rec.archivedMs, reason: rec.reason };
}

function parseStamp(s: string | null): bigint | null {
  if (s === null || !/^-?\d+$/.test(s)) return null;
  return BigInt(s);
}

function parsePose(s: string | null): Pose | null {
  if (s === null) return null;
  try {
    const p: unknown = JSON.parse(s);
    return isPose(p) ? p : null;
  } catch {
    return null;
  }
}

const REASONS: readonly ArchiveReason[] = ['evicted', 'expired', 'discarded', 'capacity', 'imported'];
function isReason(s: string): s is ArchiveReason {
  return (REASONS as readonly string[]).includes(s);
}

// ---- meta -----------------------------------------------------------------------------------------------

function metaString(db: Database.Database, key: string): string | undefined {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (hasMeta === undefined) return undefined;
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

function metaNumber(db: Database.Database, key: string): number | undefined {
  const s = metaString(db, key);
  const n = s === undefined ? NaN : Number(s);
  return Number.isFinite(n) ? n : undefined;
}

const COUNTER_KEYS: readonly (keyof CoreCounters)[] = [
  'nextEpisodeId',
  'nextArchiveId',
  'tick',
  'offered',
  'evictions',
  'expired',
  'merges',
  'discarded',
  'rejected',
  'posesDropped',
  'archiveDropped',
  'cleared',
  'rngState',
];

function parseCounters(s: string | undefined): CoreCounters | null {
  if (s === undefined) return null;
  try {
    const o: unknown = JSON.parse(s);
    if (typeof o !== 'object' || o === null) return null;
    const r = o as Record<string, unknown>;
    const out: Partial<Record<keyof CoreCounters, number>> = {};
    for (const k of COUNTER_KEYS) {
      const v = r[k] ?? 0; // a counter added by a later version starts at 0
      if (typeof v !== 'number' || !Number.isFinite(v)) return null;
      out[k] = v;
    }
    return out as CoreCounters;
  } catch {
    return null;
  }
}

function parsePolicy(s: string | undefined): PolicyConfig | null {
  if (s === undefined) return null;
  try {
    const o: unknown = JSON.parse(s);
    if (typeof o !== 'object' || o === null) return null;
    return resolvePolicy(o as PolicyConfig);
  } catch {
    return null;
  }
}

// ---- checkpoints ---------------------------------------------------------------------------------------

function checkCheckpointOptions(o: SqliteStoreOptions): void {
  const ms = o.checkpointIntervalMs;
  if (ms !== undefined && !(Number.isInteger(ms) && ms >= 0 && ms <= 600_000)) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory.checkpointIntervalMs: ${String(ms)} is invalid; allowed: an integer in [0, 600000]`);
  }
  const b = o.maxWalBytes;
  if (b !== undefined && !(Number.isSafeInteger(b) && b >= 65_536)) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory.maxWalBytes: ${String(b)} is invalid; allowed: an integer ≥ 65536`);
  }
}

/** The -wal size above which the main thread checkpoints: the option, else 4 × SQLite's usual checkpoint. */
function maxWalBytes(db: Database.Database, o: SqliteStoreOptions): number {
  return o.maxWalBytes ?? 4 * CHECKPOINT_PAGES * (db.pragma('page_size', { simple: true }) as number);
}

// ---- small helpers ----------------------------------------------------------------------------------------

function nonEmptyFile(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

function sqliteCode(e: unknown): string {
  return e instanceof Database.SqliteError ? e.code : '';
}

function errCode(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(e);
}
