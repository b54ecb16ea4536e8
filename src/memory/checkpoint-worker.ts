/**
 * The WAL checkpointer thread of a SqliteEpisodicStore (started by wal-checkpointer.ts): its own
 * better-sqlite3 connection to the store's file runs `PRAGMA wal_checkpoint(PASSIVE)` whenever the main
 * thread asks, so the fsyncs of a checkpoint never stall the main event loop. PASSIVE never blocks the
 * main connection's writes.
 *
 * After a checkpoint that copied the whole WAL, this connection also restarts the WAL with a one-page
 * write (application_id rewritten to its own value): the first write after a complete checkpoint
 * rewrites the WAL header and fsyncs it, and done here that fsync is not the main thread's. The main
 * thread asks right after one of its syncs, so the two rarely meet; when they do (SQLITE_BUSY, this
 * connection waits for nothing), the restart is left to the main thread's next commit, as SQLite
 * does by itself.
 *
 * Protocol (types in wal-checkpointer.ts): workerData is `CheckpointWorkerInit`; messages in are
 * `CheckpointWorkerRequest`, out `CheckpointWorkerReply`. `state[0]` (shared with the main thread) is
 * IDLE until this thread claims it (OPEN) before opening the file, and SHUT once the connection is closed
 * (or was never opened): the main thread's synchronous `close` waits on it, so the store's own close is
 * the last one on the file and removes the -wal and -shm files. When the main thread shut it first, this
 * thread never opens the file.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  WORKER_IDLE,
  WORKER_OPEN,
  WORKER_SHUT,
  type CheckpointWorkerInit,
  type CheckpointWorkerReply,
  type CheckpointWorkerRequest,
} from './wal-checkpointer.js';

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(): void {
  const port = parentPort;
  if (port === null) return; // imported outside a worker: nothing to do
  const { path, state: buf } = workerData as CheckpointWorkerInit;
  const state = new Int32Array(buf);
  let db: Database.Database | null = null;
  let appId = 0;
  const reply = (m: CheckpointWorkerReply): void => port.postMessage(m);
  const shut = (): void => {
    try {
      db?.close();
    } catch {
      // closing a connection that holds no transaction does not fail; nothing to report if it does
    }
    db = null;
    Atomics.store(state, 0, WORKER_SHUT);
    Atomics.notify(state, 0);
    port.close(); // the thread ends once its port is closed
  };
  if (Atomics.compareExchange(state, 0, WORKER_IDLE, WORKER_OPEN) !== WORKER_IDLE) {
    port.close(); // the store closed before this thread got going
    return;
  }
  try {
    db = new Database(path, { fileMustExist: true, timeout: 0 });
    db.pragma('synchronous = NORMAL');
    db.pragma('journal_size_limit = 0'); // its WAL restarts cut the file back too (the main thread sizes the WAL by it)
    db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get(); // opens the WAL (a fresh connection has not read it yet)
    appId = Number(db.pragma('application_id', { simple: true }));
  } catch (e) {
    reply({ type: 'error', message: `cannot open ${path}: ${e instanceof Error ? e.message : String(e)}`, fatal: true });
    shut();
    return;
  }
  port.on('message', (m: CheckpointWorkerRequest) => {
    if (m === 'stop' || db === null) {
      shut();
      return;
    }
    const t0 = performance.now();
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[];
      let restarted = false;
      if (r !== undefined && r.busy === 0 && r.log > 0 && r.checkpointed === r.log) {
        try {
          db.pragma(`application_id = ${appId}`);
          restarted = true;
        } catch {
          // SQLITE_BUSY: the main thread is writing; its commit restarts the WAL instead
        }
      }
      reply({ type: 'checkpointed', busy: r?.busy ?? 0, log: r?.log ?? -1, checkpointed: r?.checkpointed ?? -1, restarted, ms: performance.now() - t0 });
    } catch (e) {
      reply({ type: 'error', message: e instanceof Error ? e.message : String(e), fatal: false });
    }
  });
}

run();
