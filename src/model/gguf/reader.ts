/**
 * GGUF v3 reader: header, metadata (every value type, nested arrays), tensor infos, alignment and
 * data offsets. Every read is bounds-checked; a malformed file throws BitmarError
 * BITMAR_ERR_MODEL_FORMAT naming the byte offset and what was being read, never a RangeError.
 * Little-endian hosts only (as ggml): tensor views alias the file bytes.
 */
import { readFileSync, statSync } from 'node:fs';
import { BitmarError } from '../../errors.js';
import { decodeF16 } from './f16.js';
import {
  GGML_TYPE,
  GGML_TYPE_SIZE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VALUE_TYPE_NAMES,
  GGUF_VALUE_TYPE_SIZE,
  formatDims,
  ggmlTypeName,
  type GgufArrayItems,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueTypeName,
} from './types.js';

/** ggml's GGML_MAX_NAME - 1: the longest tensor name gguf.md allows, in bytes. */
const MAX_TENSOR_NAME_BYTES = 63;
/** Smallest encodings, used to reject absurd counts before allocating anything. */
const MIN_KV_BYTES = 8 + 4 + 1; // empty key, type, a u8 value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8; // empty name, n_dims, one ne, type, offset
const MAX_ARRAY_DEPTH = 8;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function formatError(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${source}: ${message}`);
}

/** A bounds-checked little-endian cursor over the file bytes. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    private readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw formatError(
        this.source,
        `truncated at byte ${this.bytes.byteLength}: reading ${what} at byte ${this.pos} needs ${n} bytes, ` +
          `${this.remaining} left`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must fit a JS number (counts, lengths, offsets). */
  size(what: string): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw formatError(this.source, `${what} at byte ${at} is ${v}, larger than any valid file`);
    }
    return Number(v);
  }
  string(what: string): string {
    const at = this.pos;
    const len = this.size(`${what} length`);
    if (len > this.remaining) {
      throw formatError(
        this.source,
        `truncated at byte ${this.bytes.byteLength}: ${what} at byte ${at} declares ${len} bytes, ${this.remaining} left`,
      );
    }
    const slice = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return utf8.decode(slice);
    } catch {
      throw formatError(this.source, `${what} at byte ${at} is not valid UTF-8`);
    }
  }
}

/** A parsed GGUF v3 file: metadata and tensor infos, with typed access to tensor data. */
export class GgufReader {
  /** File format version (always 3). */
  readonly version: number;
  /** `general.alignment`, or 32 when absent. */
  readonly alignment: number;
  /** Metadata in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos in file order. */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  /** Absolute byte offset of the data section. */
  readonly dataOffset: number;

  private constructor(
    readonly bytes: Uint8Array,
    /** The file path (or a label) used in every error message. */
    readonly source: string,
  ) {
    const c = new Cursor(bytes, source);
    const magic = c.u32('magic');
    if (magic !== GGUF_MAGIC) {
      const seen = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw formatError(source, `bad magic at byte 0: expected "GGUF" (47 47 55 46), found ${seen}; not a GGUF file`);
    }
    this.version = c.u32('version');
    if (this.version !== 3) {
      throw formatError(source, `unsupported GGUF version ${this.version} at byte 4: this reader handles version 3 only`);
    }
    const tensorCount = c.size('tensor_count');
    const kvCount = c.size('metadata_kv_count');
    if (kvCount * MIN_KV_BYTES > c.remaining) {
      throw formatError(
        source,
        `metadata_kv_count ${kvCount} at byte 16 is absurd (or the file is truncated at byte ${bytes.byteLength}): ` +
          `the ${c.remaining} bytes left hold at most ` +
          `${Math.floor(c.remaining / MIN_KV_BYTES)} key/value pairs`,
      );
    }
    this.metadata = this.readMetadata(c, kvCount);
    this.alignment = this.readAlignment();

    if (tensorCount * MIN_TENSOR_INFO_BYTES > c.remaining) {
      throw formatError(
        source,
        `tensor_count ${tensorCount} at byte 8 is absurd (or the file is truncated at byte ${bytes.byteLength}): ` +
          `the ${c.remaining} bytes left after the metadata hold ` +
          `at most ${Math.floor(c.remaining / MIN_TENSOR_INFO_BYTES)} tensor infos`,
      );
    }
    const infos = this.readTensorInfos(c, tensorCount);
    this.dataOffset = alignUp(c.pos, this.alignment);
    this.tensors = this.placeTensors(infos);
  }

  /** Read and parse a GGUF file. Throws BITMAR_ERR_MODEL_NOT_FOUND or BITMAR_ERR_MODEL_FORMAT. */
  static open(path: string): GgufReader {
    let bytes: Uint8Array;
    try {
      if (!statSync(path).isFile()) throw new Error('not a regular file');
      bytes = readFileSync(path);
    } catch (e) {
      throw new BitmarError('BITMAR_ERR_MODEL_NOT_FOUND', `model file ${path} cannot be read: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return new GgufReader(bytes, path);
  }

  /** Parse GGUF bytes already in memory; `source` labels error messages. */
  static fromBytes(bytes: Uint8Array, source = '<gguf bytes>'): GgufReader {
    return new GgufReader(bytes, source);
  }

  private readMetadata(c: Cursor, count: number): Map<string, GgufValue> {
    const out = new Map<string, GgufValue>();
    for (let i = 0; i < count; i++) {
      const at = c.pos;
      const key = c.string(`metadata key #${i}`);
      if (out.has(key)) throw formatError(this.source, `duplicate metadata key "${key}" at byte ${at}`);
      const typeAt = c.pos;
      const typeCode = c.u32(`type of metadata "${key}"`);
      const type = valueTypeName(typeCode);
      if (type === undefined) {
        throw formatError(this.source, `metadata "${key}" has unknown value type ${typeCode} at byte ${typeAt} (valid: 0..12)`);
      }
      out.set(key, this.readValue(c, type, `metadata "${key}"`));
    }
    return out;
  }

  private readValue(c: Cursor, type: GgufValueTypeName, what: string): GgufValue {
    switch (type) {
      case 'u8': return { type, value: c.u8(what) };
      case 'i8': return { type, value: c.i8(what) };
      case 'u16': return { type, value: c.u16(what) };
      case 'i16': return { type, value: c.i16(what) };
      case 'u32': return { type, value: c.u32(what) };
      case 'i32': return { type, value: c.i32(what) };
      case 'f32': return { type, value: c.f32(what) };
      case 'f64': return { type, value: c.f64(what) };
      case 'u64': return { type, value: c.u64(what) };
      case 'i64': return { type, value: c.i64(what) };
      case 'bool': return { type, value: this.readBool(c, what) };
      case 'string': return { type, value: c.string(what) };
      case 'array': return { type, value: this.readArray(c, what, 0) };
    }
  }

  private readBool(c: Cursor, what: string): boolean {
    const at = c.pos;
    const b = c.u8(what);
    if (b > 1) throw formatError(this.source, `${what} at byte ${at} is a bool with value ${b} (must be 0 or 1)`);
    return b === 1;
  }

  private readArray(c: Cursor, what: string, depth: number): GgufArrayItems {
    const at = c.pos;
    if (depth >= MAX_ARRAY_DEPTH) throw formatError(this.source, `${what} at byte ${at} nests arrays deeper than ${MAX_ARRAY_DEPTH}`);
    const code = c.u32(`${what} item type`);
    const itemType = valueTypeName(code);
    if (itemType === undefined) {
      throw formatError(this.source, `${what} at byte ${at} has unknown array item type ${code} (valid: 0..12)`);
    }
    const n = c.size(`${what} item count`);
    const minBytes = GGUF_VALUE_TYPE_SIZE[itemType];
    if (n * minBytes > c.remaining) {
      throw formatError(
        this.source,
        `${what} at byte ${at} declares ${n} ${itemType} items (at least ${n * minBytes} bytes) but only ` +
          `${c.remaining} bytes are left; truncated at byte ${c.bytes.byteLength}`,
      );
    }
    const item = (i: number): string => `${what}[${i}]`;
    switch (itemType) {
      case 'u8': case 'i8': case 'u16': case 'i16': case 'u32': case 'i32': case 'f32': case 'f64': {
        const items = new Array<number>(n);
        for (let i = 0; i < n; i++) items[i] = this.readValue(c, itemType, item(i)).value as number;
        return { itemType, items };
      }
      case 'u64': case 'i64': {
        const items = new Array<bigint>(n);
        for (let i = 0; i < n; i++) items[i] = itemType === 'u64' ? c.u64(item(i)) : c.i64(item(i));
        return { itemType, items };
      }
      case 'bool': {
        const items = new Array<boolean>(n);
        for (let i = 0; i < n; i++) items[i] = this.readBool(c, item(i));
        return { itemType, items };
      }
      case 'string': {
        const items = new Array<string>(n);
        for (let i = 0; i < n; i++) items[i] = c.string(item(i));
        return { itemType, items };
      }
      case 'array': {
        const items = new Array<GgufArrayItems>(n);
        for (let i = 0; i < n; i++) items[i] = this.readArray(c, item(i), depth + 1);
        return { itemType, items };
      }
    }
  }

  private readAlignment(): number {
    const v = this.metadata.get('general.alignment');
    if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
    if (v.type !== 'u32') throw formatError(this.source, `general.alignment must be a u32, found ${v.type}`);
    const a = v.value;
    if (a === 0 || (a & (a - 1)) !== 0 || a % 8 !== 0) {
      throw formatError(this.source, `general.alignment ${a} is invalid: must be a power of two and a multiple of 8`);
    }
    return a;
  }

  private readTensorInfos(c: Cursor, count: number): Omit<GgufTensorInfo, 'offset'>[] {
    const infos: Omit<GgufTensorInfo, 'offset'>[] = [];
    const names = new Set<string>();
    for (let i = 0; i < count; i++) {
      const at = c.pos;
      const name = c.string(`tensor info #${i} name`);
      if (Buffer.byteLength(name) > MAX_TENSOR_NAME_BYTES) {
        throw formatError(this.source, `tensor #${i} name at byte ${at} is ${Buffer.byteLength(name)} bytes (max ${MAX_TENSOR_NAME_BYTES})`);
      }
      if (names.has(name)) throw formatError(this.source, `duplicate tensor "${name}" at byte ${at}`);
      names.add(name);
      const nDimsAt = c.pos;
      const nDims = c.u32(`tensor "${name}" n_dims`);
      if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
        throw formatError(this.source, `tensor "${name}" has n_dims ${nDims} at byte ${nDimsAt} (must be 1..${GGUF_MAX_DIMS})`);
      }
      const dims: number[] = [];
      let elementCount = 1;
      for (let d = 0; d < nDims; d++) {
        const ne = c.size(`tensor "${name}" ne[${d}]`);
        dims.push(ne);
        elementCount *= ne;
      }
      if (elementCount > Number.MAX_SAFE_INTEGER) {
        throw formatError(this.source, `tensor "${name}" dims ${formatDims(dims)} hold ${elementCount} elements, absurdly many`);
      }
      const typeAt = c.pos;
      const typeCode = c.u32(`tensor "${name}" type`);
      const type = ggmlTypeName(typeCode);
      if (type === undefined) {
        throw formatError(
          this.source,
          `tensor "${name}" has ggml type ${typeCode} at byte ${typeAt}; supported: ` +
            Object.entries(GGML_TYPE).map(([k, v]) => `${k}=${v}`).join(', '),
        );
      }
      const offsetAt = c.pos;
      const relativeOffset = c.size(`tensor "${name}" offset`);
      if (relativeOffset % this.alignment !== 0) {
        throw formatError(
          this.source,
          `tensor "${name}" data offset ${relativeOffset} (field at byte ${offsetAt}) is not a multiple of the alignment ${this.alignment}`,
        );
      }
      infos.push({ name, dims, type, relativeOffset, elementCount, byteLength: elementCount * GGML_TYPE_SIZE[type] });
    }
    return infos;
  }

  /** Resolve absolute offsets; reject data past the end of the file and overlapping tensors. */
  private placeTensors(infos: Omit<GgufTensorInfo, 'offset'>[]): Map<string, GgufTensorInfo> {
    const out = new Map<string, GgufTensorInfo>();
    const fileLength = this.bytes.byteLength;
    if (infos.length > 0 && this.dataOffset > fileLength) {
      throw formatError(this.source, `truncated at byte ${fileLength}: the tensor data section starts at byte ${this.dataOffset}`);
    }
    for (const info of infos) {
      const offset = this.dataOffset + info.relativeOffset;
      const end = offset + info.byteLength;
      if (end > fileLength) {
        throw formatError(
          this.source,
          `tensor "${info.name}" (${info.type} ${formatDims(info.dims)}, ${info.byteLength} bytes at byte ${offset}) ` +
            `runs to byte ${end}, past the end of the file (truncated at byte ${fileLength})`,
        );
      }
      out.set(info.name, { ...info, offset });
    }
    const sorted = [...out.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (prev.byteLength > 0 && cur.offset < prev.offset + prev.byteLength) {
        throw formatError(
          this.source,
          `tensor "${cur.name}" at byte ${cur.offset} overlaps tensor "${prev.name}" (bytes ${prev.offset}..${prev.offset + prev.byteLength})`,
        );
      }
    }
    return out;
  }

  // ---- metadata access -----------------------------------------------------------------------

  /** The raw typed value, or undefined. */
  get(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  private required(key: string): GgufValue {
    const v = this.metadata.get(key);
    if (v === undefined) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: metadata key "${key}" is missing`);
    return v;
  }

  private mismatch(key: string, expected: string, v: GgufValue): BitmarError {
    const shown = v.type === 'array' ? `array of ${v.value.itemType}` : v.type;
    return new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: metadata "${key}" must be ${expected}, found ${shown}`);
  }

  /** A string value. Throws BITMAR_ERR_MODEL_MISMATCH when missing or of another type. */
  getString(key: string): string {
    const v = this.required(key);
    if (v.type !== 'string') throw this.mismatch(key, 'a string', v);
    return v.value;
  }

  /** An unsigned or non-negative signed integer of any width, as a number. */
  getUint(key: string): number {
    const v = this.required(key);
    switch (v.type) {
      case 'u8': case 'u16': case 'u32': case 'i8': case 'i16': case 'i32':
        if (v.value >= 0) return v.value;
        break;
      case 'u64': case 'i64':
        if (v.value >= 0n && v.value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v.value);
        break;
      default:
        throw this.mismatch(key, 'an unsigned integer', v);
    }
    throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: metadata "${key}" = ${v.value} is out of range (must be ≥ 0)`);
  }

  /** A float (f32, f64) or integer value as a number. */
  getNumber(key: string): number {
    const v = this.required(key);
    switch (v.type) {
      case 'u64': case 'i64': return Number(v.value);
      case 'string': case 'bool': case 'array': throw this.mismatch(key, 'a number', v);
      default: return v.value;
    }
  }

  /** An array of strings. */
  getStringArray(key: string): readonly string[] {
    const v = this.required(key);
    if (v.type !== 'array' || v.value.itemType !== 'string') throw this.mismatch(key, 'an array of strings', v);
    return v.value.items;
  }

  // ---- tensor access -------------------------------------------------------------------------

  /** The tensor info; throws BITMAR_ERR_MODEL_MISMATCH when the tensor is missing. */
  tensorInfo(name: string): GgufTensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: tensor "${name}" is missing`);
    return t;
  }

  /** Raw bytes of a tensor (a view of the file bytes). */
  tensorBytes(name: string): Uint8Array {
    const t = this.tensorInfo(name);
    return this.bytes.subarray(t.offset, t.offset + t.byteLength);
  }

  /** An F32 or F16 tensor as Float32Array (F32 aliases the file bytes when aligned; do not write). */
  tensorF32(name: string): Float32Array {
    const t = this.tensorInfo(name);
    const raw = this.tensorBytes(name);
    if (t.type === 'F32') {
      if ((raw.byteOffset & 3) === 0) return new Float32Array(raw.buffer, raw.byteOffset, t.elementCount);
      return new Float32Array(raw.slice().buffer);
    }
    if (t.type === 'F16') {
      const out = new Float32Array(t.elementCount);
      decodeF16(raw, t.elementCount, out);
      return out;
    }
    throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: tensor "${name}" is ${t.type}, expected F32 or F16`);
  }

  /** An I32 tensor. */
  tensorI32(name: string): Int32Array {
    const t = this.tensorInfo(name);
    if (t.type !== 'I32') throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${this.source}: tensor "${name}" is ${t.type}, expected I32`);
    const raw = this.tensorBytes(name);
    if ((raw.byteOffset & 3) === 0) return new Int32Array(raw.buffer, raw.byteOffset, t.elementCount);
    return new Int32Array(raw.slice().buffer);
  }
}

function valueTypeName(code: number): GgufValueTypeName | undefined {
  return GGUF_VALUE_TYPE_NAMES[code];
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
