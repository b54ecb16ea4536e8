/**
 * The RAM cache recall scans: every archived episode's unit vector in one contiguous [rows, d] block
 * (WebAssembly memory, see dot-kernel.ts), with its archiveId. Rows are appended at the end and dropped
 * from the front (oldest first), so the live range is [start, end); the block is compacted or grown
 * (×2) when the end reaches its capacity.
 */
import { CHUNK_ROWS, createDotKernel, type DotKernel } from './dot-kernel.js';
import type { TopK } from './recall.js';

export class ArchiveIndex {
  private readonly kernel: DotKernel;
  private ids = new Float64Array(1024);
  private capacityRows = 1024;
  private start = 0;
  private end = 0;

  constructor(
    readonly width: number,
    prefer: 'auto' | 'js' = 'auto',
  ) {
    this.kernel = createDotKernel(width, prefer);
    this.kernel.ensureBytes(this.kernel.rowsOffset + this.capacityRows * width * 4);
  }

  /** 'wasm-simd' or 'js'. */
  get kernelKind(): string {
    return this.kernel.kind;
  }

  get size(): number {
    return this.end - this.start;
  }

  /** The oldest archiveId, or undefined when empty. */
  get firstId(): number | undefined {
    return this.size > 0 ? this.ids[this.start] : undefined;
  }

  /** Appends `unit` (width d, already normalised) under `id` (ids must increase). */
  append(id: number, unit: Float32Array): void {
    if (this.end === this.capacityRows) this.makeRoom();
    const base = this.kernel.rowsOffset / 4 + this.end * this.width;
    this.kernel.f32().set(unit, base);
    this.ids[this.end] = id;
    this.end++;
  }

  /** Appends v/‖v‖ (zeros stay zeros) under `id`, normalising straight into the block. */
  appendNormalized(id: number, v: Float32Array): void {
    if (this.end === this.capacityRows) this.makeRoom();
    const base = this.kernel.rowsOffset / 4 + this.end * this.width;
    const f32 = this.kernel.f32();
    let sq = 0;
    for (let j = 0; j < this.width; j++) sq += v[j]! * v[j]!;
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let j = 0; j < this.width; j++) f32[base + j] = v[j]! * inv;
    this.ids[this.end] = id;
    this.end++;
  }

  /** Removes and returns the oldest id. */
  dropOldest(): number | undefined {
    if (this.size === 0) return undefined;
    return this.ids[this.start++];
  }

  clear(): void {
    this.start = 0;
    this.end = 0;
  }

  /** Pushes (cosine, archiveId) of every row into `top`; `unitQuery` must be normalised. */
  search(unitQuery: Float32Array, top: TopK): void {
    const f32 = this.kernel.f32();
    f32.set(unitQuery, 0);
    const sBase = this.kernel.scoresOffset / 4;
    for (let r = this.start; r < this.end; r += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, this.end - r);
      this.kernel.dots(r, n);
      const scores = this.kernel.f32();
      let floor = top.floor;
      for (let i = 0; i < n; i++) {
        const s = scores[sBase + i]!;
        if (s > floor) {
          top.push(s, this.ids[r + i]!);
          floor = top.floor;
        }
      }
    }
  }

  private makeRoom(): void {
    const w = this.width;
    if (this.start >= this.capacityRows / 4) {
      const f32 = this.kernel.f32();
      const base = this.kernel.rowsOffset / 4;
      f32.copyWithin(base, base + this.start * w, base + this.end * w);
      this.ids.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      return;
    }
    this.capacityRows *= 2;
    this.kernel.ensureBytes(this.kernel.rowsOffset + this.capacityRows * w * 4);
    const ids = new Float64Array(this.capacityRows);
    ids.set(this.ids);
    this.ids = ids;
  }
}
