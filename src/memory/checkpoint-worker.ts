/**
 * The WAL checkpointer thread of a SqliteEpisodicStore (started by wal-checkpointer.ts): its own
 * better-sqlite3 connection to the store's file runs `PRAGMA wal_checkpoint(PASSIVE)` whenever the main
 * thread asks, so the fsyncs of a checkpoint never stall the main event loop. PASSIVE never blocks the
 * main connection's writes, and this connection runs no transaction of its own.
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
    db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get(); // opens the WAL (a fresh connection has not read it yet)
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
      reply({ type: 'checkpointed', busy: r?.busy ?? 0, log: r?.log ?? -1, checkpointed: r?.checkpointed ?? -1, ms: performance.now() - t0 });
    } catch (e) {
      reply({ type: 'error', message: e instanceof Error ? e.message : String(e), fatal: false });
    }
  });
}

run();
