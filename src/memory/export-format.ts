/**
 * Memory export and import (docs/memory.md, "Export format").
 *
 * `bitmar-memory` v1 is JSON lines: a header line, then one line per live slot and per archived episode.
 *   {"format":"bitmar-memory","version":1,"width":128,"slots":512,"policy":{"name":"lru"},"exportedMs":…,"counts":{"slots":3,"archive":9}}
 *   {"type":"slot","slot":0,"episodeId":7,…,"frameStampNs":"1700000000000000000","pose":null,"vector":"<base64 float32 LE>"}
 *   {"type":"archive","archiveId":4,"archivedMs":…,"reason":"evicted","episodeId":2,…,"vector":"…"}
 * `vector` may also be a JSON array of numbers on import.
 *
 * An R1 memory export (reference spec §7: `memory_exports/*.pt`), converted to JSON offline, is one object:
 *   {"memory": [[…d]…K] | {"data":[uint8…],"min":m,"max":M,"original_shape":[K,d]},
 *    "age":[K], "usage":[K], "quality":[K], "importance":[K], …}   (mean, std, update_count, version,
 *    metadata and compressed are accepted and ignored)
 * Its K rows become live slots 0…K−1 with R1's age/usage/quality/importance.
 *
 * Imports are validated completely before anything is stored; a bad file changes nothing
 * (BITMAR_ERR_MEMORY_IMPORT names the line and field).
 */
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { BitmarError } from '../errors.js';
import { isPose } from './memory-core.js';
import type { ArchiveReason, EpisodeRecord, EpisodicStore, Pose } from './store.js';
import { vectorToBytes } from './vectors.js';

export const EXPORT_FORMAT = 'bitmar-memory';
export const EXPORT_VERSION = 1;

export interface ExportSummary {
  readonly slots: number;
  readonly archive: number;
  readonly bytes: number;
}

export interface ImportSummary {
  readonly format: 'bitmar-memory' | 'r1';
  /** Live episodes restored (some may have been evicted to the archive when the memory was full). */
  readonly slots: number;
  readonly archive: number;
}

export interface ImportHeader {
  readonly format: 'bitmar-memory' | 'r1';
  readonly width: number;
  /** K of the file (R1: rows of `memory`). */
  readonly slots: number;
}

type ImportRecord = Omit<EpisodeRecord, 'episodeId'>;

// ---- export -------------------------------------------------------------------------------------------

/** Writes the whole memory to `path` (via a temporary file and a rename). */
export function exportMemory(store: EpisodicStore, path: string, nowMs = Date.now()): ExportSummary {
  const slots = store.slots();
  const tmp = `${path}.tmp-${process.pid}`;
  const out = new LineWriter(tmp);
  let archive = 0;
  try {
    const stats = store.stats();
    out.line({
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      width: store.width,
      slots: store.capacity,
      policy: store.policy,
      exportedMs: nowMs,
      counts: { slots: slots.length, archive: stats.archiveSize },
    });
    for (const s of slots) {
      out.line({ type: 'slot', slot: s.slot, ...episodeJson(s) });
    }
    for (const a of store.archived()) {
      out.line({ type: 'archive', archiveId: a.archiveId, archivedMs: a.archivedMs, reason: a.reason, ...episodeJson(a) });
      archive++;
    }
    out.close();
    renameSync(tmp, path);
  } catch (e) {
    out.close();
    rmSync(tmp, { force: true });
    throw e;
  }
  return { slots: slots.length, archive, bytes: out.bytes };
}

function episodeJson(e: EpisodeRecord): { [key: string]: unknown } {
  return {
    episodeId: e.episodeId,
    firstSeenMs: e.firstSeenMs,
    lastSeenMs: e.lastSeenMs,
    writeCount: e.writeCount,
    readCount: e.readCount,
    usage: e.usage,
    age: e.age,
    importance: e.importance,
    quality: e.quality,
    caption: e.caption,
    source: e.source,
    frameStampNs: e.frameStampNs === null ? null : e.frameStampNs.toString(),
    pose: e.pose,
    vector: vectorToBytes(e.vector).toString('base64'),
  };
}

class LineWriter {
  private readonly fd: number;
  private chunks: string[] = [];
  private pending = 0;
  private open = true;
  bytes = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  line(value: unknown): void {
    const s = JSON.stringify(value) + '\n';
    this.chunks.push(s);
    this.pending += s.length;
    if (this.pending > 1 << 20) this.drain();
  }

  close(): void {
    if (!this.open) return;
    try {
      this.drain();
    } finally {
      this.open = false;
      closeSync(this.fd);
    }
  }

  private drain(): void {
    const buf = Buffer.from(this.chunks.join(''), 'utf8');
    writeSync(this.fd, buf);
    this.bytes += buf.length;
    this.chunks = [];
    this.pending = 0;
  }
}

// ---- import -------------------------------------------------------------------------------------------

/** The format and width of an export file, without importing it (the CLI creates a store with this width). */
export function readImportHeader(path: string): ImportHeader {
  const first = firstLine(path);
  const header = parseHeaderLine(first);
  if (header !== null) return { format: 'bitmar-memory', width: header.width, slots: header.slots };
  const r1 = parseR1(readWhole(path), path);
  return { format: 'r1', width: r1.width, slots: r1.rows.length };
}

/**
 * Imports a `bitmar-memory` export or an R1 memory JSON into `store`. Slots are restored through
 * `store.restore` (keeping their slot index when it is free), archive rows through `appendArchive`.
 * `replace` clears the store (live slots and archive) first. Throws BITMAR_ERR_MEMORY_IMPORT and
 * changes nothing when the file is invalid or its width differs from the store's.
 */
export function importMemory(store: EpisodicStore, path: string, options: { replace?: boolean; nowMs?: number } = {}): ImportSummary {
  const nowMs = options.nowMs ?? Date.now();
  const header = parseHeaderLine(firstLine(path));
  if (header !== null) {
    checkWidth(header.width, store.width, path);
    // Pass 1 validates every line; pass 2 stores. A bad line therefore changes nothing.
    let n = 0;
    for (const _ of jsonlRecords(path, store.width)) n++;
    if (options.replace === true) store.clear();
    let slots = 0;
    let archive = 0;
    for (const r of jsonlRecords(path, store.width)) {
      if (r.kind === 'slot') {
        store.restore(r.record, { slot: r.slot });
        slots++;
      } else {
        store.appendArchive(r.record, r.reason);
        archive++;
      }
    }
    if (slots + archive !== n) throw importError(path, 'the file changed while it was imported');
    return { format: 'bitmar-memory', slots, archive };
  }
  const r1 = parseR1(readWhole(path), path);
  checkWidth(r1.width, store.width, path);
  if (options.replace === true) store.clear();
  const source = `r1:${basename(path)}`;
  r1.rows.forEach((vector, k) => {
    store.restore(
      {
        vector,
        firstSeenMs: nowMs,
        lastSeenMs: nowMs,
        writeCount: 1,
        readCount: 0,
        usage: r1.usage[k]!,
        age: r1.age[k]!,
        importance: r1.importance[k]!,
        quality: r1.quality[k]!,
        caption: '',
        source,
        frameStampNs: null,
        pose: null,
      },
      { slot: k },
    );
  });
  return { format: 'r1', slots: r1.rows.length, archive: 0 };
}

type JsonlRecord =
  | { kind: 'slot'; slot: number; record: ImportRecord }
  | { kind: 'archive'; reason: ArchiveReason; record: ImportRecord };

function* jsonlRecords(path: string, width: number): Generator<JsonlRecord> {
  let lineNo = 0;
  for (const line of readLines(path)) {
    lineNo++;
    if (lineNo === 1 || line.trim() === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw importError(path, `line ${lineNo} is not JSON`);
    }
    if (typeof o !== 'object' || o === null) throw importError(path, `line ${lineNo} is not an object`);
    const r = o as { [key: string]: unknown };
    const at = `line ${lineNo}`;
    const record = episodeFromJson(r, width, path, at);
    if (r['type'] === 'slot') {
      yield { kind: 'slot', slot: int(r, 'slot', path, at), record };
    } else if (r['type'] === 'archive') {
      const reason = r['reason'];
      yield { kind: 'archive', reason: isArchiveReason(reason) ? reason : 'imported', record };
    } else {
      throw importError(path, `${at}: type must be "slot" or "archive"`);
    }
  }
  if (lineNo === 0) throw importError(path, 'the file is empty');
}

function episodeFromJson(r: { [key: string]: unknown }, width: number, path: string, at: string): ImportRecord {
  const num = (key: string): number => {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw importError(path, `${at}: ${key} must be a finite number`);
    return v;
  };
  const str = (key: string): string => {
    const v = r[key] ?? '';
    if (typeof v !== 'string') throw importError(path, `${at}: ${key} must be a string`);
    return v;
  };
  const stamp = r['frameStampNs'];
  if (!(stamp === null || stamp === undefined || (typeof stamp === 'string' && /^-?\d+$/.test(stamp)))) {
    throw importError(path, `${at}: frameStampNs must be a decimal string or null`);
  }
  const pose = r['pose'] ?? null;
  if (pose !== null && !isPose(pose)) throw importError(path, `${at}: pose must be {x,y,z,qx,qy,qz,qw,frame} or null`);
  return {
    vector: vectorFromJson(r['vector'], width, path, at),
    firstSeenMs: num('firstSeenMs'),
    lastSeenMs: num('lastSeenMs'),
    writeCount: num('writeCount'),
    readCount: num('readCount'),
    usage: num('usage'),
    age: num('age'),
    importance: num('importance'),
    quality: num('quality'),
    caption: str('caption'),
    source: str('source'),
    frameStampNs: typeof stamp === 'string' ? BigInt(stamp) : null,
    pose: pose as Pose | null,
  };
}

function vectorFromJson(v: unknown, width: number, path: string, at: string): Float32Array {
  let out: Float32Array;
  if (typeof v === 'string') {
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length !== width * 4) throw importError(path, `${at}: vector holds ${bytes.length / 4} floats, the memory has width ${width}`);
    out = new Float32Array(width);
    for (let i = 0; i < width; i++) out[i] = bytes.readFloatLE(i * 4);
  } else if (Array.isArray(v)) {
    if (v.length !== width) throw importError(path, `${at}: vector has ${v.length} values, the memory has width ${width}`);
    out = new Float32Array(width);
    for (let i = 0; i < width; i++) {
      const x: unknown = v[i];
      if (typeof x !== 'number') throw importError(path, `${at}: vector[${i}] is not a number`);
      out[i] = x;
    }
  } else {
    throw importError(path, `${at}: vector must be base64 float32 LE or an array of numbers`);
  }
  for (let i = 0; i < width; i++) {
    if (!Number.isFinite(out[i]!)) throw importError(path, `${at}: vector[${i}] is not finite`);
  }
  return out;
}

function parseHeaderLine(line: string | null): { width: number; slots: number } | null {
  if (line === null) return null;
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const r = o as { [key: string]: unknown };
  if (r['format'] !== EXPORT_FORMAT) return null;
  if (r['version'] !== EXPORT_VERSION) {
    throw new BitmarError('BITMAR_ERR_MEMORY_IMPORT', `export format version ${String(r['version'])} is not supported (this node reads version ${EXPORT_VERSION})`);
  }
  const width = r['width'];
  const slots = r['slots'];
  if (typeof width !== 'number' || !Number.isInteger(width) || width < 1) {
    throw new BitmarError('BITMAR_ERR_MEMORY_IMPORT', 'the export header has no valid width');
  }
  return { width, slots: typeof slots === 'number' && Number.isInteger(slots) && slots >= 1 ? slots : 512 };
}

// ---- R1 ------------------------------------------------------------------------------------------------

interface R1Memory {
  width: number;
  rows: Float32Array[];
  age: number[];
  usage: number[];
  quality: number[];
  importance: number[];
}

/** Parses an R1 memory export converted to JSON (see the file comment for the shape). */
export function parseR1(text: string, path = 'R1 memory'): R1Memory {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw importError(path, 'neither a bitmar-memory export (first line) nor an R1 memory JSON object');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw importError(path, 'an R1 memory export must be a JSON object');
  const r = o as { [key: string]: unknown };
  const rows = r1Rows(r['memory'], path);
  const K = rows.length;
  const width = rows[0]!.length;
  const buffer = (key: string, fallback?: number): number[] => {
    const v = r[key];
    if (v === undefined && fallback !== undefined) return new Array<number>(K).fill(fallback);
    if (!Array.isArray(v) || v.length !== K || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw importError(path, `${key} must be an array of ${K} finite numbers (one per memory row)`);
    }
    return v as number[];
  };
  return { width, rows, age: buffer('age'), usage: buffer('usage'), quality: buffer('quality'), importance: buffer('importance', 1) };
}

function r1Rows(m: unknown, path: string): Float32Array[] {
  if (Array.isArray(m)) {
    if (m.length === 0) throw importError(path, 'memory has no rows');
    const width = Array.isArray(m[0]) ? m[0].length : 0;
    if (width === 0) throw importError(path, 'memory must be [K][d] numbers');
    return m.map((row: unknown, k) => {
      if (!Array.isArray(row) || row.length !== width) throw importError(path, `memory row ${k} must have ${width} numbers`);
      const v = Float32Array.from(row, (x: unknown) => (typeof x === 'number' ? x : NaN));
      if (!v.every(Number.isFinite)) throw importError(path, `memory row ${k} has a non-finite value`);
      return v;
    });
  }
  if (typeof m === 'object' && m !== null) {
    // R1 compressed form: value = data/255·(max−min)+min.
    const c = m as { [key: string]: unknown };
    const shape = c['original_shape'];
    const data = c['data'];
    const min = c['min'];
    const max = c['max'];
    if (
      !Array.isArray(shape) || shape.length !== 2 || !shape.every((x) => Number.isInteger(x) && (x as number) > 0) ||
      typeof min !== 'number' || typeof max !== 'number' || !Number.isFinite(min) || !Number.isFinite(max)
    ) {
      throw importError(path, 'compressed memory needs original_shape [K,d], min and max');
    }
    const [K, d] = shape as [number, number];
    const flat = Array.isArray(data) ? data.flat() : null;
    if (flat === null || flat.length !== K * d || !flat.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 255)) {
      throw importError(path, `compressed memory data must hold ${K}·${d} integers in [0, 255]`);
    }
    const rows: Float32Array[] = [];
    for (let k = 0; k < K; k++) {
      const v = new Float32Array(d);
      for (let j = 0; j < d; j++) v[j] = ((flat[k * d + j] as number) / 255) * (max - min) + min;
      rows.push(v);
    }
    return rows;
  }
  throw importError(path, 'memory must be [K][d] numbers or R1 compressed {data, min, max, original_shape}');
}

// ---- files -----------------------------------------------------------------------------------------------

function* readLines(path: string): Generator<string> {
  const fd = openFile(path);
  const buf = Buffer.alloc(1 << 20);
  let rest = '';
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const text = rest + buf.toString('utf8', 0, n);
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      yield* lines;
    }
    if (rest !== '') yield rest;
  } finally {
    closeSync(fd);
  }
}

function firstLine(path: string): string | null {
  for (const line of readLines(path)) return line;
  return null;
}

function readWhole(path: string): string {
  const parts: string[] = [];
  for (const line of readLines(path)) parts.push(line);
  return parts.join('\n');
}

function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_MEMORY_IMPORT', `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function checkWidth(fileWidth: number, storeWidth: number, path: string): void {
  if (fileWidth !== storeWidth) {
    throw importError(path, `it holds width-${fileWidth} episodes, the memory has width ${storeWidth}`);
  }
}

function int(r: { [key: string]: unknown }, key: string, path: string, at: string): number {
  const v = r[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw importError(path, `${at}: ${key} must be an integer ≥ 0`);
  return v;
}

function isArchiveReason(x: unknown): x is ArchiveReason {
  return x === 'evicted' || x === 'expired' || x === 'discarded' || x === 'capacity' || x === 'imported';
}

function importError(path: string, detail: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MEMORY_IMPORT', `${path}: ${detail}`);
}
