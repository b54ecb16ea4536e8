/**
 * Feature-vector files: bitmar-r1's vision input (one `width`-float vector per image, 768 for
 * DINOv2-B) read from disk for `bitmar-node caption --features FILE` (docs/bitmar-r1.md §7).
 *
 * | format | recognised by | content |
 * |---|---|---|
 * | NumPy `.npy` (v1–v3) | the `\x93NUMPY` magic | dtype `<f4` or `<f8` (also `>f4`/`>f8`), C order, shape `(W,)` or `(N, W)` |
 * | JSON | `.json`, or text starting with `[` | `[v0, …, vW−1]` or `[[…], …]` (N rows) |
 * | raw | `.bin`, `.f32`, anything else | little-endian float32, N·W values, no header |
 *
 * Every value must be finite. A file holds N ≥ 1 rows: N captions.
 */
import { readFile } from 'node:fs/promises';
import { BitmarError } from '../../errors.js';

export type FeatureFileFormat = 'npy' | 'json' | 'f32';

const decodeError = (name: string, why: string): BitmarError => new BitmarError('BITMAR_ERR_IMAGE_DECODE', `${name}: ${why}`);

function rowsOf(values: ArrayLike<number>, width: number, name: string, shapeText: string): Float32Array[] {
  if (values.length === 0 || values.length % width !== 0) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${name}: ${shapeText} is not N×${width}: this bitmar-r1 model takes ${width}-d feature vectors`);
  }
  const rows: Float32Array[] = [];
  for (let r = 0; r < values.length / width; r++) {
    const v = new Float32Array(width);
    for (let i = 0; i < width; i++) {
      const x = values[r * width + i]!;
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${name}: row ${r} value ${i} is ${String(x)}`);
      v[i] = x;
    }
    rows.push(v);
  }
  return rows;
}

function parseNpy(b: Uint8Array, name: string, width: number): Float32Array[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 10) throw decodeError(name, 'truncated .npy header');
  const major = b[6]!;
  const [hlen, hstart] = major === 1 ? [dv.getUint16(8, true), 10] : major === 2 || major === 3 ? [b.length >= 12 ? dv.getUint32(8, true) : -1, 12] : [-1, 0];
  if (hlen < 0) throw decodeError(name, `unsupported .npy version ${major}`);
  if (hstart + hlen > b.length) throw decodeError(name, 'truncated .npy header');
  const header = new TextDecoder().decode(b.subarray(hstart, hstart + hlen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw decodeError(name, `cannot read the .npy header ${JSON.stringify(header.trim())}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((n) => !Number.isInteger(n) || n < 0)) throw decodeError(name, `bad .npy shape (${shapeText})`);
  const shown = `shape (${shape.join(', ')})`;
  if (shape.length < 1 || shape.length > 2 || shape[shape.length - 1] !== width) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${name}: ${shown} is not (${width},) or (N, ${width}): this bitmar-r1 model takes ${width}-d feature vectors`);
  }
  if (fortran === 'True' && shape.length === 2 && shape[0] !== 1) throw decodeError(name, 'Fortran-order arrays are not supported: save with np.ascontiguousarray');
  const m = /^([<>|=])f([48])$/.exec(descr);
  if (m === null) throw decodeError(name, `dtype ${descr} is not supported: save float32 or float64`);
  const little = m[1] !== '>';
  const size = Number(m[2]);
  const n = shape.reduce((a, c) => a * c, 1);
  const start = hstart + hlen;
  if (start + n * size > b.length) throw decodeError(name, `truncated: ${shown} needs ${n * size} data bytes, the file has ${b.length - start}`);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = size === 4 ? dv.getFloat32(start + i * 4, little) : dv.getFloat64(start + i * 8, little);
  return rowsOf(values, width, name, shown);
}

function parseJson(b: Uint8Array, name: string, width: number): Float32Array[] {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(b));
  } catch (e) {
    throw decodeError(name, `not JSON: ${(e as Error).message}`);
  }
  const isRow = (x: unknown): x is number[] => Array.isArray(x) && x.every((y) => typeof y === 'number');
  if (isRow(v)) return rowsOf(v, width, name, `an array of ${v.length} numbers`);
  if (Array.isArray(v) && v.length > 0 && v.every(isRow)) {
    const rows = v as number[][];
    const bad = rows.findIndex((r) => r.length !== width);
    if (bad >= 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${name}: row ${bad} has ${rows[bad]!.length} numbers: this bitmar-r1 model takes ${width}-d feature vectors`);
    return rowsOf(rows.flat(), width, name, `${rows.length} rows`);
  }
  throw decodeError(name, `expected [${width} numbers] or [[${width} numbers], …]`);
}

/** The format of a file by its magic, else its first byte, else its extension. */
export function featureFileFormat(bytes: Uint8Array, name: string): FeatureFileFormat {
  if (bytes.length >= 6 && bytes[0] === 0x93 && String.fromCharCode(...bytes.subarray(1, 6)) === 'NUMPY') return 'npy';
  if (/\.json$/i.test(name)) return 'json';
  if (/\.(bin|f32|raw)$/i.test(name)) return 'f32';
  const first = bytes.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
  return first === 0x5b ? 'json' : 'f32';
}

/** Parse a feature file's bytes into rows of `width` floats. BitmarError IMAGE_DECODE / IMAGE_SIZE. */
export function parseFeatureFile(bytes: Uint8Array, name: string, width: number): Float32Array[] {
  const format = featureFileFormat(bytes, name);
  if (format === 'npy') return parseNpy(bytes, name, width);
  if (format === 'json') return parseJson(bytes, name, width);
  if (bytes.length % 4 !== 0) throw decodeError(name, `raw float32 file of ${bytes.length} bytes (not a multiple of 4)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = dv.getFloat32(i * 4, true);
  return rowsOf(values, width, name, `${values.length} float32 values`);
}

/** Read a feature file (see the module comment). */
export async function readFeatureFile(path: string, width: number): Promise<Float32Array[]> {
  const bytes = await readFile(path);
  return parseFeatureFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, width);
}
