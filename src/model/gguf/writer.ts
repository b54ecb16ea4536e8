/**
 * GGUF v3 writer, the mirror of reader.ts: metadata of every value type and F32/F16/I8/I32
 * tensors, each data block aligned to `general.alignment` (32 unless the metadata says otherwise).
 * Used by tools/make-random-model.ts and the tests.
 */
import { f32ToF16 } from './f16.js';
import {
  GGML_TYPE,
  GGML_TYPE_SIZE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VALUE_TYPE_NAMES,
  formatDims,
  type GgmlTypeName,
  type GgufArrayItems,
  type GgufValue,
  type GgufValueTypeName,
} from './types.js';

/** A tensor to write. F32/F16 take a Float32Array (F16 is rounded to nearest even), I8 bytes, I32 ints. */
export interface GgufTensorInput {
  readonly name: string;
  readonly type: GgmlTypeName;
  /** ggml `ne`, innermost first. */
  readonly dims: readonly number[];
  readonly data: Float32Array | Uint8Array | Int8Array | Int32Array;
}

/** Constructors for typed metadata values: `gv.u32(4)`, `gv.strings(['a'])`. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: bigint): GgufValue => ({ type: 'u64', value }),
  i64: (value: bigint): GgufValue => ({ type: 'i64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  array: (value: GgufArrayItems): GgufValue => ({ type: 'array', value }),
  strings: (items: readonly string[]): GgufValue => ({ type: 'array', value: { itemType: 'string', items } }),
} as const;

const utf8 = new TextEncoder();

/** Growable little-endian byte sink. */
class Sink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: bigint): void { this.reserve(8); this.view.setBigUint64(this.length, v, true); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.view.setBigInt64(this.length, v, true); this.length += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.byteLength); this.buf.set(b, this.length); this.length += b.byteLength; }
  string(s: string): void { const b = utf8.encode(s); this.u64(BigInt(b.byteLength)); this.bytes(b); }
  padTo(alignment: number): void { const n = (alignment - (this.length % alignment)) % alignment; this.reserve(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function typeCode(t: GgufValueTypeName): number {
  return GGUF_VALUE_TYPE_NAMES.indexOf(t);
}

function writeScalar(s: Sink, type: GgufValueTypeName, value: number | bigint | boolean | string): void {
  switch (type) {
    case 'u8': s.u8(value as number); break;
    case 'i8': s.i8(value as number); break;
    case 'u16': s.u16(value as number); break;
    case 'i16': s.i16(value as number); break;
    case 'u32': s.u32(value as number); break;
    case 'i32': s.i32(value as number); break;
    case 'f32': s.f32(value as number); break;
    case 'f64': s.f64(value as number); break;
    case 'u64': s.u64(value as bigint); break;
    case 'i64': s.i64(value as bigint); break;
    case 'bool': s.u8(value ? 1 : 0); break;
    case 'string': s.string(value as string); break;
    case 'array': throw new TypeError('writeScalar called with an array');
  }
}

function writeArray(s: Sink, arr: GgufArrayItems): void {
  s.u32(typeCode(arr.itemType));
  s.u64(BigInt(arr.items.length));
  if (arr.itemType === 'array') {
    for (const inner of arr.items) writeArray(s, inner);
  } else {
    for (const item of arr.items) writeScalar(s, arr.itemType, item);
  }
}

function checkTensor(t: GgufTensorInput): number {
  if (t.dims.length < 1 || t.dims.length > GGUF_MAX_DIMS) throw new RangeError(`tensor "${t.name}": 1..${GGUF_MAX_DIMS} dims, got ${t.dims.length}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new RangeError(`tensor "${t.name}": dims ${formatDims(t.dims)} need ${n} elements, data has ${t.data.length}`);
  }
  const ok =
    ((t.type === 'F32' || t.type === 'F16') && t.data instanceof Float32Array) ||
    (t.type === 'I8' && (t.data instanceof Uint8Array || t.data instanceof Int8Array)) ||
    (t.type === 'I32' && t.data instanceof Int32Array);
  if (!ok) throw new TypeError(`tensor "${t.name}": ${t.type} data of type ${t.data.constructor.name} not accepted`);
  return n * GGML_TYPE_SIZE[t.type];
}

function tensorBytes(t: GgufTensorInput): Uint8Array {
  if (t.type === 'F16') {
    const out = new Uint8Array(t.data.length * 2);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < t.data.length; i++) dv.setUint16(2 * i, f32ToF16(t.data[i]!), true);
    return out;
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Serialise a GGUF v3 file. Metadata is written in iteration order; tensors in array order, each
 * at the next aligned offset. Throws RangeError/TypeError on inconsistent input.
 */
export function writeGguf(
  metadata: Iterable<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorInput[],
): Uint8Array {
  const entries = [...metadata];
  const alignEntry = entries.find(([k]) => k === 'general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignEntry !== undefined) {
    const v = alignEntry[1];
    if (v.type !== 'u32') throw new TypeError('general.alignment must be a u32');
    alignment = v.value;
  }
  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(BigInt(tensors.length));
  s.u64(BigInt(entries.length));
  for (const [key, v] of entries) {
    s.string(key);
    s.u32(typeCode(v.type));
    if (v.type === 'array') writeArray(s, v.value);
    else writeScalar(s, v.type, v.value);
  }
  let offset = 0;
  const sizes = tensors.map(checkTensor);
  tensors.forEach((t, i) => {
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(BigInt(d));
    s.u32(GGML_TYPE[t.type]);
    s.u64(BigInt(offset));
    offset += Math.ceil(sizes[i]! / alignment) * alignment;
  });
  s.padTo(alignment);
  tensors.forEach((t) => {
    s.bytes(tensorBytes(t));
    s.padTo(alignment);
  });
  return s.result();
}
