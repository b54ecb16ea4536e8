/**
 * Jittered exponential backoff for reconnects. mqtt.js retries every `reconnectPeriod` ms with no
 * backoff (ecosystem-conventions.md, MQTT); a fleet that loses its broker then hammers it in lock
 * step. Delay n is `min(maxMs, initialMs·factor^n)`, scaled by a random factor in [1−jitter, 1].
 */

export interface BackoffOptions {
  /** First delay, milliseconds. Default 500. */
  readonly initialMs?: number;
  /** Upper bound of any delay, milliseconds. Default 30 000. */
  readonly maxMs?: number;
  /** Growth per attempt. Default 2. */
  readonly factor?: number;
  /** Fraction of the delay that is random, 0..1. Default 0.5 ("equal jitter"). */
  readonly jitter?: number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;

  /** Throws a RangeError for an option out of range. `random` returns [0, 1) (injected by tests). */
  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.5;
    if (!(this.initialMs > 0)) throw new RangeError(`backoff.initialMs must be > 0, got ${this.initialMs}`);
    if (!(this.maxMs >= this.initialMs)) throw new RangeError(`backoff.maxMs must be >= initialMs, got ${this.maxMs}`);
    if (!(this.factor >= 1)) throw new RangeError(`backoff.factor must be >= 1, got ${this.factor}`);
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new RangeError(`backoff.jitter must be in [0, 1], got ${this.jitter}`);
  }

  /** The delay before the next attempt, milliseconds; each call advances one attempt. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** Math.min(this.attempt, 64));
    this.attempt++;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  /** Attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** Back to the first delay (after a successful connect). */
  reset(): void {
    this.attempt = 0;
  }
}
