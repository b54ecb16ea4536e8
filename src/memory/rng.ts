/**
 * The store's seeded random stream (mulberry32: 32-bit state, period 2³²). The state is part of the
 * store's persisted metadata, so a reopened store continues the same stream.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  get seedState(): number {
    return this.state;
  }

  set seedState(state: number) {
    this.state = state >>> 0;
  }
}
