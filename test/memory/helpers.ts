/** Shared helpers of the memory tests: seeded vectors, temp directories, manual timers. */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncTimers } from '../../src/memory/sqlite-store.js';

export { mulberry32 as rng } from '../../src/rng.js';

/** A random unit vector of width d. */
export function unitVector(d: number, random: () => number): Float32Array {
  const v = new Float32Array(d);
  let n = 0;
  for (let i = 0; i < d; i++) {
    v[i] = random() * 2 - 1;
    n += v[i]! * v[i]!;
  }
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < d; i++) v[i]! /= n;
  return v;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

const dirs: string[] = [];

/** RAM-backed when the machine has /dev/shm: fsyncs cost nothing there, so the suite stays fast. */
const TMP_ROOT = ((): string => {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
})();

/** A fresh temporary directory, removed by `removeTempDirs` (call it in an `after` hook). */
export function tempDir(prefix = 'bitmar-mem-'): string {
  const d = mkdtempSync(join(TMP_ROOT, prefix));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Timers that fire only when the test says so. */
export class ManualTimers implements SyncTimers {
  private readonly fns = new Map<number, () => void>();
  private next = 1;

  setInterval(fn: () => void): unknown {
    const id = this.next++;
    this.fns.set(id, fn);
    return id;
  }

  clearInterval(handle: unknown): void {
    this.fns.delete(handle as number);
  }

  get active(): number {
    return this.fns.size;
  }

  fire(): void {
    for (const fn of [...this.fns.values()]) fn();
  }
}
