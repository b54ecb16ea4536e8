import { MULBERRY32_STEP, mulberry32Output } from '../rng.js';

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
    this.state = (this.state + MULBERRY32_STEP) >>> 0;
    return mulberry32Output(this.state);
  }

  get seedState(): number {
    return this.state;
  }

  set seedState(state: number) {
    this.state = state >>> 0;
  }
}
