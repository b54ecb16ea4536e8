/**
 * safetensors reader and writer (huggingface/safetensors format: u64 LE header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data).
 * Every offset and size is checked; a malformed file throws BitmarError BITMAR_ERR_MODEL_FORMAT.
 */
import { BitmarError } from '../../errors.js';
import { decodeF16 } from '../gguf/f16.js';

/** Bytes per element of the dtypes this reader knows. */
export const ST_DTYPE_SIZE: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface StTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Raw little-endian bytes (a view of the file). */
  readonly bytes: Uint8Array;
}

export interface Safetensors {
  readonly tensors: ReadonlyMap<string, StTensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

function fail(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${source}: ${message}`);
}

/** Parse safetensors bytes (tensors are views of `bytes`). */
export function parseSafetensors(bytes: Uint8Array, source = '<safetensors>'): Safetensors {
  if (bytes.byteLength < 8) throw fail(source, `${bytes.byteLength} bytes is too short for a safetensors file (needs an 8-byte header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) throw fail(source, `header length ${n} runs past the end of the file (${bytes.byteLength} bytes): truncated, or not a safetensors file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + Number(n))));
  } catch (e) {
    throw fail(source, `the header is not valid UTF-8 JSON (${(e as Error).message}); not a safetensors file`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw fail(source, 'the header is not a JSON object');
  const base = 8 + Number(n);
  const dataLength = bytes.byteLength - base;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info !== null && typeof info === 'object') metadata = Object.fromEntries(Object.entries(info as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null || typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) {
      throw fail(source, `tensor "${name}": header entry needs dtype, shape and data_offsets`);
    }
    const size = ST_DTYPE_SIZE[t.dtype];
    if (size === undefined) throw fail(source, `tensor "${name}": dtype ${t.dtype} is not supported (${Object.keys(ST_DTYPE_SIZE).join(', ')})`);
    const shape = t.shape as unknown[];
    if (!shape.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) throw fail(source, `tensor "${name}": shape ${JSON.stringify(shape)} is invalid`);
    const [a, b] = t.data_offsets as unknown[];
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || (a as number) < 0 || (b as number) < (a as number) || (b as number) > dataLength) {
      throw fail(source, `tensor "${name}": data_offsets [${String(a)}, ${String(b)}] fall outside the ${dataLength} data bytes (truncated?)`);
    }
    const count = (shape as number[]).reduce((x, y) => x * y, 1);
    if ((b as number) - (a as number) !== count * size) {
      throw fail(source, `tensor "${name}": ${t.dtype} ${JSON.stringify(shape)} needs ${count * size} bytes, data_offsets give ${(b as number) - (a as number)}`);
    }
    tensors.set(name, { name, dtype: t.dtype, shape: shape as number[], bytes: bytes.subarray(base + (a as number), base + (b as number)) });
  }
  return { tensors, metadata };
}

function aligned(bytes: Uint8Array, align: number): ArrayBuffer {
  if (bytes.byteOffset % align === 0) return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return new Uint8Array(bytes).buffer as ArrayBuffer; // a copy (Buffer#slice would alias the pool)
}

/** A numeric tensor as fp32 values (F32, F16, BF16, F64 and the integer types). */
export function tensorToFloat32(t: StTensor, source = '<safetensors>'): Float32Array {
  const b = t.bytes;
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned(b, 4));
    case 'F16': {
      const out = new Float32Array(b.byteLength / 2);
      decodeF16(b, out.length, out);
      return out;
    }
    case 'BF16': {
      const u = new Uint16Array(aligned(b, 2));
      const bits = new Uint32Array(u.length);
      for (let i = 0; i < u.length; i++) bits[i] = u[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(b, 8)));
    case 'I64':
      return Float32Array.from(new BigInt64Array(aligned(b, 8)), (v) => Number(v));
    case 'I32':
      return Float32Array.from(new Int32Array(aligned(b, 4)));
    case 'I16':
      return Float32Array.from(new Int16Array(aligned(b, 2)));
    case 'I8':
      return Float32Array.from(new Int8Array(aligned(b, 1)));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(b);
    default:
      throw fail(source, `tensor "${t.name}": dtype ${t.dtype} has no numeric conversion`);
  }
}

/** A tensor to write. */
export interface StTensorInput {
  readonly name: string;
  readonly dtype: 'F32' | 'F16' | 'I64' | 'I32' | 'U8';
  readonly shape: readonly number[];
  /** Raw little-endian bytes of the values (F16 as u16 bits). */
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
}

/** Serialise tensors (in the given order) and string metadata to safetensors bytes. */
export function writeSafetensors(tensors: readonly StTensorInput[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of tensors) {
    const n = t.data.byteLength;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count * ST_DTYPE_SIZE[t.dtype]! !== n) throw new RangeError(`tensor "${t.name}": ${t.dtype} ${JSON.stringify(t.shape)} needs ${count * ST_DTYPE_SIZE[t.dtype]!} bytes, got ${n}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  if (metadata) header.__metadata__ = metadata;
  let h = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (h.byteLength % 8)) % 8;
  if (pad > 0) {
    const p = new Uint8Array(h.byteLength + pad).fill(0x20);
    p.set(h);
    h = p;
  }
  const out = new Uint8Array(8 + h.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  let at = 8 + h.byteLength;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
