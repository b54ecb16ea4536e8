/**
 * The bounded store of QoS 1 final captions not yet acknowledged by the broker (PUBACK, MQTT 5.0
 * §4.3.2). A caption is written here before it is sent and removed only on its PUBACK, so it
 * survives a broker restart (resent on reconnect) and, with a directory, a node restart or kill -9
 * (resent by the next process). Payload bytes are stored as built, so a resend is byte-identical
 * and devices drop duplicates by (nodeId, runId, seq).
 *
 * Two implementations behind one interface: in memory (no directory configured) and one file per
 * message in a directory (write to a temp file, fsync, rename: a crash never leaves half a message).
 *
 * The file work is asynchronous (node:fs/promises, libuv's thread pool), never on the event loop:
 * an fsync can take 50–250 ms (an ext4 journal commit also flushes other dirty data, e.g. SQLite's
 * WAL; worse on an SD card), and a synchronous one stalled the whole node (the camera skipped
 * frames). The bookkeeping stays synchronous (`append` returns the id and evictions at once); the
 * writes and removals run in order on one chain, so a message is removed only after its write, and
 * a message is `persisted` (and may be sent) only once its file is renamed into place. The owner
 * hears through `listener`: `ready` when a message can be sent, `writeFailed` when the disk refused
 * it (it is then forgotten and handed back to be sent without the store). A message stays in memory
 * until it is first read for sending (bounded by `maxMemoryBytes` once written); a resend after a
 * reconnect, or one left by a previous process, is read back from disk asynchronously.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutboundMessage, PublishProperties } from './offline-queue.js';

/** The file steps a test may replace (a slow fsync, a held rename); defaults are node:fs/promises. */
export interface StoreIo {
  /** Flushes a written temp file to the device. Default `file.sync()`. */
  fsync(file: FileHandle): Promise<void>;
  /** Puts a written message in place (the step that makes it durable). Default `rename`. */
  rename(from: string, to: string): Promise<void>;
  /** Flushes the directory after renames (its entries survive power loss). Default: open it and `sync()`. */
  syncDir(dir: string): Promise<void>;
  /** Reads a stored message back for a resend. Default `readFile(path, 'utf8')`. */
  readFile(path: string): Promise<string>;
}

export interface OutgoingStoreOptions {
  /** Most messages kept; the oldest is dropped beyond it. Default 10 000. */
  readonly maxMessages?: number;
  /** Most payload bytes kept; the oldest are dropped beyond it. Default 64 MiB. */
  readonly maxBytes?: number;
  /** fsync every message before sending it (survives power loss, not only kill -9). Default true. */
  readonly fsync?: boolean;
  /**
   * Payload bytes of written, not yet sent messages kept in memory besides their file (the rest is
   * read back from disk when sent). Messages still being written are always in memory. Default 8 MiB.
   */
  readonly maxMemoryBytes?: number;
  /** Tests: replaces file steps. */
  readonly io?: Partial<StoreIo>;
}

export interface AppendResult {
  readonly id: number;
  /** Messages dropped, oldest first, to stay within the caps (counted as `store_full`). */
  readonly evicted: number;
}

/** What the store tells its owner (the transport) about asynchronous file work. */
export interface OutgoingStoreListener {
  /** `read(id)` now returns the message: its file landed, or it was read back from disk. */
  ready(id: number): void;
  /** The message could not be written (disk full, read-only, directory gone); the store forgot it. */
  writeFailed(id: number, msg: OutboundMessage, error: Error): void;
  /** The message was unreadable when read back; the store removed it (counted in `corrupt`). */
  corrupt(id: number): void;
}

export interface OutgoingStore {
  /** Stores `msg` (its file is written in the background); throws only when `msg` alone is larger than maxBytes. */
  append(msg: OutboundMessage): AppendResult;
  /** True once the message is durable (its file is in place), so it may be sent. */
  persisted(id: number): boolean;
  /**
   * The message, when it is in memory. A written message's memory copy is dropped by this first
   * read (it is being sent); when not in memory it is read back from disk in the background and
   * `listener.ready(id)` follows (or `listener.corrupt(id)`): undefined until then.
   */
  read(id: number): OutboundMessage | undefined;
  /** The message from memory or disk (tools and tests); undefined when gone or unreadable (then removed). */
  load(id: number): Promise<OutboundMessage | undefined>;
  /** Forgets a message (its PUBACK arrived); its file is removed after any pending write of it. */
  remove(id: number): void;
  /** Stored ids, oldest first (a live iterator: O(1) to start, safe while removing). */
  ids(): IterableIterator<number>;
  /** Resolves when all file work queued so far (and queued meanwhile) is done. */
  settled(): Promise<void>;
  listener: OutgoingStoreListener | undefined;
  readonly size: number;
  readonly bytes: number;
  /** Messages found unreadable at open or read time and removed. */
  readonly corrupt: number;
}

/** Messages read back from disk ahead of the one a resend asked for. */
const READ_AHEAD = 16;

interface Entry {
  readonly bytes: number;
  msg?: OutboundMessage;
  persisted: boolean;
  loading?: Promise<void>;
}

abstract class BoundedStore implements OutgoingStore {
  protected readonly entries = new Map<number, Entry>();
  protected nextId = 1;
  protected totalBytes = 0;
  corrupt = 0;
  listener: OutgoingStoreListener | undefined;
  readonly maxMessages: number;
  readonly maxBytes: number;

  constructor(options: OutgoingStoreOptions) {
    this.maxMessages = options.maxMessages ?? 10_000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    if (!Number.isInteger(this.maxMessages) || this.maxMessages < 1) {
      throw new RangeError(`store.maxMessages must be an integer >= 1, got ${this.maxMessages}`);
    }
    if (!(this.maxBytes >= 1)) throw new RangeError(`store.maxBytes must be >= 1, got ${this.maxBytes}`);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  ids(): IterableIterator<number> {
    return this.entries.keys();
  }

  append(msg: OutboundMessage): AppendResult {
    const size = msg.payload.length;
    if (size > this.maxBytes) throw new RangeError(`message of ${size} bytes exceeds store.maxBytes ${this.maxBytes}`);
    let evicted = 0;
    // Map iteration order is insertion order, and ids only grow: the first key is the oldest.
    while (this.entries.size >= this.maxMessages || this.totalBytes + size > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
      evicted++;
    }
    const id = this.nextId++;
    const entry: Entry = { bytes: size, msg, persisted: false };
    this.entries.set(id, entry);
    this.totalBytes += size;
    this.write(id, entry, msg);
    return { id, evicted };
  }

  persisted(id: number): boolean {
    return this.entries.get(id)?.persisted === true;
  }

  remove(id: number): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.forget(id, e);
    this.erase(id);
  }

  read(id: number): OutboundMessage | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    if (e.msg !== undefined) {
      const msg = e.msg;
      if (e.persisted) this.release(e);
      return msg;
    }
    this.loadInto(id, e);
    // Read ahead: the next messages are sent right after this one (the head of the store is short:
    // acknowledged messages leave it).
    let ahead = READ_AHEAD;
    let after = false;
    for (const [next, n] of this.entries) {
      if (!after) {
        after = next === id;
        continue;
      }
      if (ahead-- <= 0) break;
      if (n.msg === undefined && n.persisted) this.loadInto(next, n);
    }
    return undefined;
  }

  async load(id: number): Promise<OutboundMessage | undefined> {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    if (e.msg !== undefined) return e.msg;
    const msg = await this.loadFile(id);
    if (msg === undefined && this.entries.get(id) === e) {
      this.corrupt++;
      this.remove(id);
    }
    return msg;
  }

  /** Reads a written message back into memory, once, and tells the listener. */
  private loadInto(id: number, e: Entry): void {
    if (e.loading !== undefined) return;
    e.loading = this.loadFile(id).then((msg) => {
      e.loading = undefined;
      if (this.entries.get(id) !== e) return; // removed meanwhile
      if (msg === undefined) {
        this.corrupt++;
        this.remove(id);
        this.listener?.corrupt(id);
        return;
      }
      this.keep(e, msg);
      this.listener?.ready(id);
    });
    this.track(e.loading);
  }

  /** Drops the bookkeeping of a message (not its file). */
  protected forget(id: number, e: Entry): void {
    this.entries.delete(id);
    this.totalBytes -= e.bytes;
    this.release(e);
  }

  protected abstract settledImpl(): Promise<void>;
  /** Keeps `msg` in memory for the entry (a read-back). */
  protected abstract keep(e: Entry, msg: OutboundMessage): void;
  /** Drops the entry's memory copy once written (no-op in memory). */
  protected abstract release(e: Entry): void;
  protected abstract track(p: Promise<void>): void;
  protected abstract write(id: number, e: Entry, msg: OutboundMessage): void;
  protected abstract erase(id: number): void;
  protected abstract loadFile(id: number): Promise<OutboundMessage | undefined>;

  settled(): Promise<void> {
    return this.settledImpl();
  }
}

/** Survives broker restarts only. Every message is persisted at once. */
export class MemoryOutgoingStore extends BoundedStore {
  protected write(_id: number, e: Entry): void {
    e.persisted = true;
  }
  protected erase(): void {}
  protected keep(): void {}
  protected release(): void {}
  protected track(): void {}
  protected loadFile(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  protected settledImpl(): Promise<void> {
    return Promise.resolve();
  }
}

/** On-disk form of one message (version 1). */
interface StoredMessageV1 {
  v: 1;
  topic: string;
  qos: 0 | 1;
  retain: boolean;
  payload: string; // base64
  properties?: Omit<PublishProperties, 'correlationData'> & { correlationData?: string /* base64 */ };
}

const SUFFIX = '.msg';

type FileOp = { readonly kind: 'write'; readonly id: number; readonly entry: Entry; readonly msg: OutboundMessage } | { readonly kind: 'erase'; readonly id: number };

/** Survives broker restarts, node restarts and kill -9. File work off the event loop (see the header). */
export class FileOutgoingStore extends BoundedStore {
  private readonly fsync: boolean;
  private readonly maxMemoryBytes: number;
  private readonly io: StoreIo;
  /** Payload bytes of written messages still held in memory. */
  private memoryBytes = 0;
  private ops: FileOp[] = [];
  private worker: Promise<void> | null = null;
  private readonly reads = new Set<Promise<void>>();

  /** Opens (creating) `dir` and indexes what a previous process left (synchronously: start-up only); throws on I/O errors. */
  constructor(readonly dir: string, options: OutgoingStoreOptions = {}) {
    super(options);
    this.fsync = options.fsync ?? true;
    this.maxMemoryBytes = options.maxMemoryBytes ?? 8 * 1024 * 1024;
    this.io = {
      fsync: (file) => file.sync(),
      rename,
      syncDir,
      readFile: (path) => readFile(path, 'utf8'),
      ...options.io,
    };
    mkdirSync(dir, { recursive: true });
    const names = readdirSync(dir).sort();
    for (const name of names) {
      const path = join(dir, name);
      if (name.startsWith('.tmp-')) {
        rmSync(path, { force: true }); // a write interrupted before its rename
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const id = Number.parseInt(name.slice(0, -SUFFIX.length), 10);
      let msg: OutboundMessage | undefined;
      try {
        msg = Number.isSafeInteger(id) && id > 0 ? decode(readFileSync(path, 'utf8')) : undefined;
      } catch {
        msg = undefined;
      }
      if (msg === undefined) {
        this.corrupt++;
        rmSync(path, { force: true });
        continue;
      }
      // Read back from disk when sent: a long outage can leave more than memory should hold.
      this.entries.set(id, { bytes: msg.payload.length, persisted: true });
      this.totalBytes += msg.payload.length;
      this.nextId = Math.max(this.nextId, id + 1);
    }
  }

  private path(id: number): string {
    return join(this.dir, `${String(id).padStart(16, '0')}${SUFFIX}`);
  }

  protected write(id: number, entry: Entry, msg: OutboundMessage): void {
    this.enqueue({ kind: 'write', id, entry, msg });
  }

  protected erase(id: number): void {
    this.enqueue({ kind: 'erase', id });
  }

  protected keep(e: Entry, msg: OutboundMessage): void {
    // A read-back is for an imminent send: kept whatever the memory cap, dropped by that read.
    e.msg = msg;
    this.memoryBytes += e.bytes;
  }

  protected release(e: Entry): void {
    if (e.msg === undefined || !e.persisted) return;
    e.msg = undefined;
    this.memoryBytes -= e.bytes;
  }

  protected track(p: Promise<void>): void {
    this.reads.add(p);
    void p.finally(() => this.reads.delete(p));
  }

  protected async settledImpl(): Promise<void> {
    while (this.worker !== null || this.reads.size > 0) {
      await Promise.all([this.worker, ...this.reads]);
    }
  }

  private enqueue(op: FileOp): void {
    this.ops.push(op);
    this.kick();
  }

  private kick(): void {
    if (this.worker !== null || this.ops.length === 0) return;
    this.worker = this.work().finally(() => {
      this.worker = null;
      this.kick(); // work queued after the loop's last check
    });
  }

  /**
   * Runs the queued file work in batches: the writes of a batch in parallel (their fsyncs share
   * journal commits), then its removals; a batch ends before the next starts, so a removal never
   * overtakes the write of the same message. Never rejects.
   */
  private async work(): Promise<void> {
    while (this.ops.length > 0) {
      const batch = this.ops;
      this.ops = [];
      const writes = batch.filter((op) => op.kind === 'write');
      const results = await Promise.all(
        writes.map(async (op) => {
          // Removed (acknowledged or evicted) before its write began: nothing to write.
          if (this.entries.get(op.id) !== op.entry) return undefined;
          try {
            await this.writeFile(op.id, op.msg);
            return undefined;
          } catch (e) {
            return e as Error;
          }
        }),
      );
      // The renames are durable once the directory is flushed too (power loss, not only kill -9).
      if (this.fsync && results.some((r, i) => r === undefined && this.entries.get(writes[i]!.id) === writes[i]!.entry)) await this.syncDir();
      // In id order, so the owner sends oldest first.
      writes.forEach((op, i) => {
        const error = results[i];
        const current = this.entries.get(op.id) === op.entry;
        if (error !== undefined) {
          if (!current) return;
          this.forget(op.id, op.entry);
          this.listener?.writeFailed(op.id, op.msg, error);
          return;
        }
        if (!current) return; // removed while being written: its erase follows in a later batch
        op.entry.persisted = true;
        this.memoryBytes += op.entry.bytes;
        if (this.memoryBytes > this.maxMemoryBytes) this.release(op.entry);
        this.listener?.ready(op.id);
      });
      await Promise.all(
        batch
          .filter((op) => op.kind === 'erase')
          .map((op) =>
            rm(this.path(op.id), { force: true }).catch(() => {
              // Left on disk, it is resent by the next process: a duplicate the seq de-duplicates, not a loss.
            }),
          ),
      );
    }
  }

  /** fsync of the directory, so its new entries survive power loss. */
  private async syncDir(): Promise<void> {
    try {
      await this.io.syncDir(this.dir);
    } catch {
      // Not every filesystem can fsync a directory (EINVAL); the files themselves are flushed.
    }
  }

  private async writeFile(id: number, msg: OutboundMessage): Promise<void> {
    const tmp = join(this.dir, `.tmp-${id}`);
    let file: FileHandle | undefined;
    try {
      file = await open(tmp, 'w');
      await file.writeFile(encode(msg));
      if (this.fsync) await this.io.fsync(file);
      await file.close();
      file = undefined;
      await this.io.rename(tmp, this.path(id));
    } catch (e) {
      await file?.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      throw e;
    }
  }

  protected async loadFile(id: number): Promise<OutboundMessage | undefined> {
    try {
      return decode(await this.io.readFile(this.path(id)));
    } catch {
      return undefined;
    }
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function encode(msg: OutboundMessage): string {
  const { correlationData, ...props } = msg.properties ?? {};
  const stored: StoredMessageV1 = {
    v: 1,
    topic: msg.topic,
    qos: msg.qos,
    retain: msg.retain,
    payload: msg.payload.toString('base64'),
    ...(msg.properties !== undefined
      ? { properties: { ...props, ...(correlationData !== undefined ? { correlationData: correlationData.toString('base64') } : {}) } }
      : {}),
  };
  return JSON.stringify(stored);
}

/** The message of a stored file's text; undefined when it is not a version-1 message (throws on bad JSON). */
function decode(text: string): OutboundMessage | undefined {
  const s = JSON.parse(text) as Partial<StoredMessageV1>;
  if (s.v !== 1 || typeof s.topic !== 'string' || typeof s.payload !== 'string' || (s.qos !== 0 && s.qos !== 1)) {
    return undefined;
  }
  const { correlationData, ...props } = s.properties ?? {};
  return {
    topic: s.topic,
    qos: s.qos,
    retain: s.retain === true,
    payload: Buffer.from(s.payload, 'base64'),
    ...(s.properties !== undefined
      ? { properties: { ...props, ...(correlationData !== undefined ? { correlationData: Buffer.from(correlationData, 'base64') } : {}) } }
      : {}),
  };
}
