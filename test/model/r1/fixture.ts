/**
 * The R1 golden fixture (tools/reference/r1_reference.py fixtures): a random tiny model converted by
 * `bitmar-node convert` from the reference's pytorch_model.bin, and the reference's recorded inputs
 * and outputs. Helpers for comparing against it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernels, type Kernels } from '../../../src/model/kernels.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import type { RgbImage } from '../../../src/model/preprocess.js';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'r1');

interface Entry {
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: 'f32' | 'i32';
}

export interface R1Fixture {
  readonly schema: string;
  readonly gguf: string;
  readonly safetensors: string;
  readonly bin: string;
  readonly config: Record<string, number>;
  readonly teacher_text: string;
  readonly prompt_text: string;
  readonly eos: number;
  readonly gen_new_tokens: number;
  readonly bitlinears: readonly string[];
  readonly blocks: readonly string[];
  readonly weight_scales: Readonly<Record<string, number>>;
  readonly index: Readonly<Record<string, Entry>>;
}

export const fx = JSON.parse(readFileSync(join(FIXTURE_DIR, 'tiny-r1.json'), 'utf8')) as R1Fixture;
const bin = readFileSync(join(FIXTURE_DIR, fx.bin));

export function arr(key: string): { data: Float32Array; shape: readonly number[] } {
  const e = fx.index[key];
  if (e === undefined) throw new Error(`fixture has no ${key}`);
  const n = e.shape.reduce((a, b) => a * b, 1);
  const copy = new Uint8Array(bin.subarray(e.offset, e.offset + n * 4));
  if (e.dtype === 'f32') return { data: new Float32Array(copy.buffer), shape: e.shape };
  return { data: Float32Array.from(new Int32Array(copy.buffer)), shape: e.shape };
}
export const f32 = (key: string): Float32Array => arr(key).data;
export const ints = (key: string): number[] => Array.from(arr(key).data);

/** max |a − b| / max |b| */
export function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? m : m / s;
}

export function expectClose(got: Float32Array, want: Float32Array, what: string, tol = 1e-5): number {
  const e = relErr(got, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
  return e;
}

export function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

export function top5(x: Float32Array): number[] {
  return Array.from(x.keys())
    .sort((a, b) => x[b]! - x[a]! || a - b)
    .slice(0, 5);
}

/**
 * End-to-end comparison of logits [rows, V]: identical argmax at every row and mean top-5 overlap
 * ≥ 0.95 (spec §12.1); returns the relative error (reported, up to 1e-1 is normal).
 */
export function expectSameRanking(got: Float32Array, want: Float32Array, V: number, what: string): { rel: number; overlap: number } {
  assert.equal(got.length, want.length, `${what}: lengths differ`);
  const rows = want.length / V;
  let overlap = 0;
  for (let i = 0; i < rows; i++) {
    const g = got.subarray(i * V, (i + 1) * V);
    const w = want.subarray(i * V, (i + 1) * V);
    assert.equal(argmax(g), argmax(w), `${what}: argmax at row ${i}`);
    const a = new Set(top5(g));
    overlap += top5(w).filter((t) => a.has(t)).length / 5;
  }
  overlap /= rows;
  assert.ok(overlap >= 0.95, `${what}: top-5 overlap ${overlap} < 0.95`);
  const rel = relErr(got, want);
  assert.ok(rel <= 1e-1, `${what}: relative logit error ${rel.toExponential(2)} > 1e-1`);
  return { rel, overlap };
}

/** The kernel backends to run every suite with: TypeScript, and native when the addon is built. */
export const BACKENDS: readonly [string, () => Kernels | string][] = [
  ['typescript', () => tsKernels],
  [
    'native',
    () => {
      try {
        return loadKernels('native').kernels;
      } catch (e) {
        return `native kernels not built (${(e as Error).message.split(';')[0]})`;
      }
    },
  ],
];

/** The DINOv2 stand-in generator's test image (tools/reference/dinov2_standin.py): (x·7 + y·13 + c·50 + (x·y) mod 31) mod 256. */
export function standInImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = (x * 7 + y * 13 + c * 50 + ((x * y) % 31)) % 256;
  return { width, height, data };
}
