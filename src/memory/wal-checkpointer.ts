/**
 * WAL checkpoints of a read-write SqliteEpisodicStore, off the main thread. The store's connection runs
 * with `wal_autocheckpoint = 0`: SQLite's automatic checkpoint would otherwise run inside one of the
 * timer's commits, and its fsyncs (50–250 ms on a loaded VM or an SD card) would stall the event loop.
 * Instead, after each sync that wrote, the main thread looks at the size of the -wal file (one stat).
 * The store sets `journal_size_limit = 0`, so the first commit after a completed checkpoint cuts the file
 * back to what it holds: its size is what was written since the last checkpoint.
 *
 * - From `maxWalBytes / 4` on (default 1000 pages: SQLite's own automatic checkpoint size), at most every
 *   `intervalMs` (default 1 s) and one request at a time, the main thread asks a worker thread
 *   (checkpoint-worker.ts, started on the first request or, `eager`, at once; `unref`ed) to run `PRAGMA wal_checkpoint(PASSIVE)`
 *   on its own connection. PASSIVE never blocks the main writer. A store whose WAL never reaches that
 *   size (a short CLI command, most tests) never starts a thread.
 * - Fallback: above `maxWalBytes` (default 4 × 1000 pages) the main thread checkpoints PASSIVE itself and
 *   counts it. That keeps the WAL bounded when the worker cannot start, died (it is not restarted), or
 *   falls behind.
 * - `stop()` (the store's close) shuts the worker synchronously: the worker closes its connection (or
 *   never opens one) before the store's final flush and `wal_checkpoint(TRUNCATE)`, so the store's close
 *   is the last on the file and removes the -wal and -shm files.
 *
 * What stays on the main thread in the steady state: nothing that fsyncs, as a rule. The first commit
 * after a completed checkpoint writes a new WAL header and fsyncs the -wal file (SQLite does that for
 * every WAL reset, with any `synchronous` but OFF); the worker makes that first commit itself, right
 * after its checkpoint (checkpoint-worker.ts). Only when the main thread is writing at that moment does
 * the reset, with its one small fsync, fall to the main thread's next commit.
 *
 * Checkpoints never affect crash safety: a checkpoint only copies committed pages into the database file.
 */
import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { startModuleWorker } from '../worker-start.js';

export interface CheckpointWorkerInit {
  readonly path: string;
  /** Int32Array over it: [0] = the worker connection's state (WORKER_IDLE, WORKER_OPEN, WORKER_SHUT). */
  readonly state: SharedArrayBuffer;
}

export type CheckpointWorkerRequest = 'checkpoint' | 'stop';

export type CheckpointWorkerReply =
  /** `restarted`: this connection also restarted the WAL (its header fsync ran in the worker). */
  | { readonly type: 'checkpointed'; readonly busy: number; readonly log: number; readonly checkpointed: number; readonly restarted: boolean; readonly ms: number }
  /** `fatal`: the worker could not open the file and has shut itself. */
  | { readonly type: 'error'; readonly message: string; readonly fatal: boolean };

export const WORKER_IDLE = 0;
export const WORKER_OPEN = 1;
export const WORKER_SHUT = 2;

/** SQLite's default automatic checkpoint size, pages: the worker checkpoints from this size, the main thread from 4×. */
export const CHECKPOINT_PAGES = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000;
/** Longest wait in `stop()` for the worker to close its connection (a checkpoint in flight), ms. */
const STOP_TIMEOUT_MS = 5000;

export interface WalCheckpointerOptions {
  /** The database file (the WAL is `<path>-wal`). */
  readonly path: string;
  /** The store's connection (fallback checkpoints run on it). */
  readonly db: Database.Database;
  /** Start a worker thread; false: only the main-thread fallback runs (a test hook). */
  readonly useWorker: boolean;
  /** Start the worker now rather than at the first checkpoint. */
  readonly eager?: boolean;
  /** Shortest time between two requests to the worker, ms. */
  readonly intervalMs: number;
  /** The -wal file size above which the main thread checkpoints itself, bytes; the worker is asked from a quarter of it. */
  readonly maxWalBytes: number;
}

export interface CheckpointStats {
  /** PASSIVE checkpoints the worker ran. */
  readonly workerCheckpoints: number;
  /** WAL restarts the worker made after a complete checkpoint (the rest fell to the main thread's next commit). */
  readonly workerRestarts: number;
  /** Fallback PASSIVE checkpoints on the main thread (WAL above `maxWalBytes`). */
  readonly mainCheckpoints: number;
  /** Worker errors: failed start, failed checkpoint, unexpected exit. */
  readonly workerFailures: number;
  readonly lastWorkerError: string | null;
  /** A worker thread is running now. */
  readonly workerRunning: boolean;
  /** The -wal file size after the last sync that wrote, bytes. */
  readonly walBytes: number;
}

/** The stats of a store that checkpoints nothing (read-only, in memory). */
export const NO_CHECKPOINT_STATS: CheckpointStats = Object.freeze({
  workerCheckpoints: 0,
  workerRestarts: 0,
  mainCheckpoints: 0,
  workerFailures: 0,
  lastWorkerError: null,
  workerRunning: false,
  walBytes: 0,
});

export class WalCheckpointer {
  private readonly walPath: string;
  private worker: Worker | null = null;
  private state: Int32Array | null = null;
  private exited = false;
  private dead = false;
  private stopped = false;
  private inFlight = false;
  private lastRequest = -Infinity;

  private workerCheckpoints = 0;
  private workerRestarts = 0;
  private mainCheckpoints = 0;
  private workerFailures = 0;
  private lastWorkerError: string | null = null;
  private walBytes = 0;

  constructor(private readonly o: WalCheckpointerOptions) {
    this.walPath = `${o.path}-wal`;
    if (o.useWorker && o.eager === true) this.ensureWorker();
  }

  /** Call after each sync that committed a transaction. */
  afterSync(): void {
    if (this.stopped) return;
    this.walBytes = fileSize(this.walPath);
    const now = performance.now();
    if (this.o.useWorker && !this.dead && !this.inFlight && this.walBytes >= this.o.maxWalBytes / 4 && now - this.lastRequest >= this.o.intervalMs) {
      this.lastRequest = now;
      this.request();
    }
    if (this.walBytes > this.o.maxWalBytes) {
      try {
        this.o.db.pragma('wal_checkpoint(PASSIVE)');
        this.mainCheckpoints++;
      } catch {
        // An I/O error here shows up in the next sync too; the next sync tries again.
      }
    }
  }

  /** Shuts the worker: when this returns, the worker's connection is closed (or was never opened). */
  stop(): void {
    this.stopped = true;
    const w = this.worker;
    const state = this.state;
    this.worker = null;
    this.state = null;
    if (w === null || state === null) return;
    if (Atomics.compareExchange(state, 0, WORKER_IDLE, WORKER_SHUT) === WORKER_OPEN && !this.exited) {
      w.postMessage('stop' satisfies CheckpointWorkerRequest);
      Atomics.wait(state, 0, WORKER_OPEN, STOP_TIMEOUT_MS);
    }
    w.terminate().catch(() => undefined);
  }

  stats(): CheckpointStats {
    return {
      workerCheckpoints: this.workerCheckpoints,
      workerRestarts: this.workerRestarts,
      mainCheckpoints: this.mainCheckpoints,
      workerFailures: this.workerFailures,
      lastWorkerError: this.lastWorkerError,
      workerRunning: this.worker !== null && !this.exited,
      walBytes: this.walBytes,
    };
  }

  /** Starts the worker unless it runs; false when it cannot start (counted, the fallback takes over). */
  private ensureWorker(): boolean {
    if (this.worker !== null) return true;
    try {
      this.start();
      return true;
    } catch (e) {
      this.fail(`cannot start the checkpoint worker: ${e instanceof Error ? e.message : String(e)}`, true);
      return false;
    }
  }

  private request(): void {
    if (!this.ensureWorker()) return;
    this.inFlight = true;
    this.worker!.postMessage('checkpoint' satisfies CheckpointWorkerRequest);
  }

  private start(): void {
    const state = new SharedArrayBuffer(4);
    const workerData: CheckpointWorkerInit = { path: this.o.path, state };
    const w = startModuleWorker(import.meta.url, './checkpoint-worker', { workerData, name: 'bitmar-wal-checkpoint' });
    w.on('message', (m: CheckpointWorkerReply) => {
      this.inFlight = false;
      if (m.type === 'error') return this.fail(m.message, m.fatal);
      this.workerCheckpoints++;
      if (m.restarted) this.workerRestarts++;
    });
    w.on('error', (e) => this.fail(`checkpoint worker: ${e.message}`, true));
    w.on('exit', (code) => {
      this.exited = true;
      this.inFlight = false;
      if (!this.stopped && !this.dead) this.fail(`the checkpoint worker exited (code ${code})`, true);
    });
    w.unref(); // after the listeners: adding a 'message' listener refs the worker's port again
    this.worker = w;
    this.state = new Int32Array(state);
  }

  private fail(message: string, fatal: boolean): void {
    this.workerFailures++;
    this.lastWorkerError = message;
    if (fatal) {
      this.dead = true;
      this.inFlight = false;
    }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
