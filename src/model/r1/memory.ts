/**
 * The live episodic memory of a bitmar-r1 engine (spec §3.7): K slots of width d and their
 * per-slot statistics. A read in "reference" mode updates usage and importance after the read, as
 * the authors' code does on every forward (spec §12.9); "frozen" leaves everything untouched.
 * The state starts as the file's buffers and can be saved and restored (`snapshot` / `restore`).
 */
import { BitmarError } from '../../errors.js';
import type { R1MemoryBuffers } from './weights.js';

/** "reference": reads update usage/importance (the authors' behaviour); "frozen": reads change nothing. */
export type R1MemoryMode = 'reference' | 'frozen';

export function checkMemoryMode(mode: unknown): R1MemoryMode {
  if (mode === 'reference' || mode === 'frozen') return mode;
  throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `memory mode ${JSON.stringify(mode)} is invalid: use "reference" (reads update usage/importance) or "frozen"`);
}

export class R1Memory {
  memory: Float32Array;
  age: Float32Array;
  usage: Float32Array;
  quality: Float32Array;
  importance: Float32Array;
  mean: Float32Array;
  std: Float32Array;
  updateCount: number;
  temperature: number;
  /** Kᴹ = KN(M) + M and Vᴹ = VN(M) + M, cached until `memory` changes (reads never change it). */
  keys: Float32Array | null = null;
  values: Float32Array | null = null;

  constructor(
    readonly slots: number,
    readonly dim: number,
    init: R1MemoryBuffers,
  ) {
    this.memory = init.memory.slice();
    this.age = init.age.slice();
    this.usage = init.usage.slice();
    this.quality = init.quality.slice();
    this.importance = init.importance.slice();
    this.mean = init.mean.slice();
    this.std = init.std.slice();
    this.updateCount = init.updateCount;
    this.temperature = init.temperature;
  }

  /** A copy of every buffer (persist it, e.g. as JSON or binary, and `restore` it later). */
  snapshot(): R1MemoryBuffers {
    return {
      memory: this.memory.slice(),
      age: this.age.slice(),
      usage: this.usage.slice(),
      quality: this.quality.slice(),
      importance: this.importance.slice(),
      mean: this.mean.slice(),
      std: this.std.slice(),
      updateCount: this.updateCount,
      temperature: this.temperature,
    };
  }

  /** Replace some or all buffers (copied; lengths and values checked: BITMAR_ERR_MEMORY_VECTOR). */
  restore(b: Partial<R1MemoryBuffers>): void {
    const K = this.slots;
    const d = this.dim;
    const want: Record<string, number> = { memory: K * d, age: K, usage: K, quality: K, importance: K, mean: d, std: d };
    for (const [name, n] of Object.entries(want)) {
      const a = b[name as keyof R1MemoryBuffers];
      if (a === undefined) continue;
      if (!(a instanceof Float32Array) || a.length !== n) {
        throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory buffer ${name} must be a Float32Array of ${n} values (K=${K}, d=${d})`);
      }
      if (a.some((v) => !Number.isFinite(v))) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory buffer ${name} holds a non-finite value`);
    }
    for (const [name, v] of [['updateCount', b.updateCount], ['temperature', b.temperature]] as const) {
      if (v !== undefined && !Number.isFinite(v)) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory ${name} = ${v} must be finite`);
    }
    if (b.memory) {
      this.memory = b.memory.slice();
      this.keys = null;
      this.values = null;
    }
    if (b.age) this.age = b.age.slice();
    if (b.usage) this.usage = b.usage.slice();
    if (b.quality) this.quality = b.quality.slice();
    if (b.importance) this.importance = b.importance.slice();
    if (b.mean) this.mean = b.mean.slice();
    if (b.std) this.std = b.std.slice();
    if (b.updateCount !== undefined) this.updateCount = b.updateCount;
    if (b.temperature !== undefined) this.temperature = b.temperature;
  }
}
