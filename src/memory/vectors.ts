/** Episode vector checks and small vector math shared by the stores, recall and the archive index. */
import { endianness } from 'node:os';
import { BitmarError } from '../errors.js';

/**
 * A validated copy of `v` as Float32Array: width `width`, every value finite (after rounding to fp32).
 * Throws BITMAR_ERR_MEMORY_VECTOR naming the problem.
 */
export function checkedVector(v: Float32Array | readonly number[], width: number, what = 'episode vector'): Float32Array {
  if (!(v instanceof Float32Array) && !Array.isArray(v)) {
    throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `${what} must be a Float32Array or an array of numbers`);
  }
  if (v.length !== width) {
    throw new BitmarError(
      'BITMAR_ERR_MEMORY_VECTOR',
      `${what} has width ${v.length}, the memory stores width ${width} (the model's embedding_length)`,
    );
  }
  const out = Float32Array.from(v);
  for (let i = 0; i < width; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `${what} has a non-finite value (${String(v[i])}) at index ${i}`);
    }
  }
  return out;
}

/** ‖v‖₂ of `width` values of `v` from `offset`, accumulated in fp64. */
export function l2norm(v: Float32Array, offset = 0, width = v.length): number {
  let s = 0;
  for (let i = 0; i < width; i++) {
    const x = v[offset + i]!;
    s += x * x;
  }
  return Math.sqrt(s);
}

/** v/‖v‖ written into `out` (zeros stay zeros). */
export function normalizeInto(v: Float32Array, out: Float32Array, outOffset = 0): void {
  const n = l2norm(v);
  const inv = n > 0 ? 1 / n : 0;
  for (let i = 0; i < v.length; i++) out[outOffset + i] = v[i]! * inv;
}

/** Whether this host stores floats little-endian (the blob and export byte order). */
export const LITTLE_ENDIAN = endianness() === 'LE';

/** Float32 little-endian bytes of a vector (the SQLite blob and export encoding). */
export function vectorToBytes(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  const b = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i]!, i * 4);
  return b;
}

/** The inverse of `vectorToBytes`; null when the byte count is not width·4. */
export function vectorFromBytes(bytes: Uint8Array, width: number): Float32Array | null {
  if (bytes.byteLength !== width * 4) return null;
  const out = new Float32Array(width);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < width; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
