// Timing helpers shared by the benchmarks (docs/performance.md, "How to measure honestly"): this
// process's CPU time next to wall time (on the shared 2-core machine the thread is often descheduled,
// so rates come from CPU time and wall time is shown alongside), medians, percentiles, and A-B-B-A
// interleaving summarised as the median of the per-pair ratios.
import { cpuUsage, hrtime } from 'node:process';

/** One timed sample: milliseconds of this process's CPU time and of wall time. */
export interface Sample {
  readonly cpuMs: number;
  readonly wallMs: number;
}

/** Runs `fn` once and times it. */
export function timeOnce(fn: () => void): Sample {
  const c0 = cpuUsage();
  const t0 = hrtime.bigint();
  fn();
  const wallMs = Number(hrtime.bigint() - t0) / 1e6;
  const c = cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1e3, wallMs };
}

/** Runs `fn` `reps` times; per-call CPU and wall milliseconds. */
export function timePerCall(fn: () => void, reps: number): Sample {
  const s = timeOnce(() => {
    for (let i = 0; i < reps; i++) fn();
  });
  return { cpuMs: s.cpuMs / reps, wallMs: s.wallMs / reps };
}

/** Repetitions so that one sample takes about `targetMs` of CPU (after one warm-up call). */
export function repsFor(fn: () => void, targetMs: number): number {
  fn();
  const one = Math.max(timeOnce(fn).cpuMs, timePerCall(fn, 3).cpuMs, 1e-4);
  return Math.max(1, Math.round(targetMs / one));
}

export function median(a: readonly number[]): number {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The q-quantile (0..1) by nearest rank. */
export function quantile(a: readonly number[], q: number): number {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Median per-call sample over `n` samples of `reps` calls each. */
export function medianSample(fn: () => void, reps: number, n: number): Sample {
  const s = Array.from({ length: n }, () => timePerCall(fn, reps));
  return { cpuMs: median(s.map((v) => v.cpuMs)), wallMs: median(s.map((v) => v.wallMs)) };
}

/** Result of an A-B-B-A comparison: per-run costs of each side and the median of the B/A pair ratios. */
export interface PairResult {
  readonly a: readonly number[];
  readonly b: readonly number[];
  /** median over pairs of cost(B) / cost(A): how many times faster A is. */
  readonly ratio: number;
}

/**
 * Interleaves A-B-B-A `pairs` times (each run returns its cost, e.g. CPU ms per token) and reports
 * the median of the ratios b/a, pairing each B with its neighbouring A.
 */
export async function abba(a: () => number | Promise<number>, b: () => number | Promise<number>, pairs: number): Promise<PairResult> {
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const a1 = await a();
    const b1 = await b();
    const b2 = await b();
    const a2 = await a();
    as.push(a1, a2);
    bs.push(b1, b2);
    ratios.push(b1 / a1, b2 / a2);
  }
  return { a: as, b: bs, ratio: median(ratios) };
}

/** Fixed-width number formatting for the tables. */
export function fmt(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}
