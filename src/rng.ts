/**
 * mulberry32, the one seeded generator of the project (synthetic world, memory reservoir, sampling):
 * a small, fast 32-bit generator (period 2³²); same seed → same stream.
 */

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** The state step: state ← (state + MULBERRY32_STEP) mod 2³². */
export const MULBERRY32_STEP = 0x6d2b79f5;

/** The output for an already-stepped state: uniform in [0, 1). */
export function mulberry32Output(state: number): number {
  let t = state >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + MULBERRY32_STEP) >>> 0;
    return mulberry32Output(state);
  };
}
