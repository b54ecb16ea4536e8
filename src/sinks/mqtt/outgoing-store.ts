/**
 * The bounded store of QoS 1 final captions not yet acknowledged by the broker (PUBACK, MQTT 5.0
 * §4.3.2). A caption is written here before it is sent and removed only on its PUBACK, so it
 * survives a broker restart (resent on reconnect) and, with a directory, a node restart or kill -9
 * (resent by the next process). Payload bytes are stored as built, so a resend is byte-identical
 * and devices drop duplicates by (nodeId, runId, seq).
 *
 * Two implementations behind one interface: in memory (no directory configured) and one file per
 * message in a directory (write to a temp file, fsync, rename: a crash never leaves half a message).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { OutboundMessage, PublishProperties } from './offline-queue.js';

export interface OutgoingStoreOptions {
  /** Most messages kept; the oldest is dropped beyond it. Default 10 000. */
  readonly maxMessages?: number;
  /** Most payload bytes kept; the oldest are dropped beyond it. Default 64 MiB. */
  readonly maxBytes?: number;
  /** fsync every message before sending it (survives power loss, not only kill -9). Default true. */
  readonly fsync?: boolean;
}

export interface AppendResult {
  readonly id: number;
  /** Messages dropped, oldest first, to stay within the caps (counted as `store_full`). */
  readonly evicted: number;
}

export interface OutgoingStore {
  /** Stores `msg`; throws only when `msg` alone is larger than maxBytes. */
  append(msg: OutboundMessage): AppendResult;
  /** The message with this id, or undefined when it is gone or unreadable (then it is removed). */
  read(id: number): OutboundMessage | undefined;
  /** Forgets a message (its PUBACK arrived). */
  remove(id: number): void;
  /** Stored ids, oldest first (a live iterator: O(1) to start, safe while removing). */
  ids(): IterableIterator<number>;
  readonly size: number;
  readonly bytes: number;
  /** Messages found unreadable at open or read time and removed. */
  readonly corrupt: number;
}

interface Entry {
  readonly bytes: number;
  msg?: OutboundMessage;
}

abstract class BoundedStore implements OutgoingStore {
  protected readonly entries = new Map<number, Entry>();
  protected nextId = 1;
  protected totalBytes = 0;
  corrupt = 0;
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
    this.write(id, msg);
    this.entries.set(id, { bytes: size, msg: this.keepInMemory ? msg : undefined });
    this.totalBytes += size;
    return { id, evicted };
  }

  remove(id: number): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    this.totalBytes -= e.bytes;
    this.erase(id);
  }

  read(id: number): OutboundMessage | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    if (e.msg !== undefined) return e.msg;
    const msg = this.load(id);
    if (msg === undefined) {
      this.corrupt++;
      this.remove(id);
    }
    return msg;
  }

  protected abstract readonly keepInMemory: boolean;
  protected abstract write(id: number, msg: OutboundMessage): void;
  protected abstract erase(id: number): void;
  protected abstract load(id: number): OutboundMessage | undefined;
}

/** Survives broker restarts only. */
export class MemoryOutgoingStore extends BoundedStore {
  protected readonly keepInMemory = true;
  protected write(): void {}
  protected erase(): void {}
  protected load(): undefined {
    return undefined;
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

/** Survives broker restarts, node restarts and kill -9. Synchronous I/O: captions are a few a second. */
export class FileOutgoingStore extends BoundedStore {
  protected readonly keepInMemory = false;
  private readonly fsync: boolean;

  /** Opens (creating) `dir` and indexes what a previous process left; throws on I/O errors. */
  constructor(readonly dir: string, options: OutgoingStoreOptions = {}) {
    super(options);
    this.fsync = options.fsync ?? true;
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
      const msg = Number.isSafeInteger(id) && id > 0 ? this.load(id) : undefined;
      if (msg === undefined) {
        this.corrupt++;
        rmSync(path, { force: true });
        continue;
      }
      this.entries.set(id, { bytes: msg.payload.length });
      this.totalBytes += msg.payload.length;
      this.nextId = Math.max(this.nextId, id + 1);
    }
  }

  private path(id: number): string {
    return join(this.dir, `${String(id).padStart(16, '0')}${SUFFIX}`);
  }

  protected write(id: number, msg: OutboundMessage): void {
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
    const tmp = join(this.dir, `.tmp-${id}`);
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(stored));
      if (this.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path(id));
  }

  protected erase(id: number): void {
    try {
      rmSync(this.path(id), { force: true });
    } catch {
      // Left on disk, it is resent by the next process: a duplicate the seq de-duplicates, not a loss.
    }
  }

  protected load(id: number): OutboundMessage | undefined {
    try {
      const s = JSON.parse(readFileSync(this.path(id), 'utf8')) as Partial<StoredMessageV1>;
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
    } catch {
      return undefined;
    }
  }
}
