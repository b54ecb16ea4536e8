/** Top-k selection for recall (cosine scores, best first). */

/** Keeps the k best (score, key) pairs; ties keep the earlier pushed. */
export class TopK {
  readonly scores: Float64Array;
  readonly keys: Float64Array;
  size = 0;

  constructor(readonly k: number) {
    this.scores = new Float64Array(k);
    this.keys = new Float64Array(k);
  }

  /** The score a new pair must beat to enter (−Infinity until full). */
  get floor(): number {
    return this.size < this.k ? -Infinity : this.scores[this.k - 1]!;
  }

  push(score: number, key: number): void {
    if (this.k === 0 || score <= this.floor) return;
    let i = this.size < this.k ? this.size++ : this.k - 1;
    while (i > 0 && this.scores[i - 1]! < score) {
      this.scores[i] = this.scores[i - 1]!;
      this.keys[i] = this.keys[i - 1]!;
      i--;
    }
    this.scores[i] = score;
    this.keys[i] = key;
  }
}

/** Checks recall's k: an integer ≥ 1 (reject, never clamp). */
export function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`recall k must be an integer ≥ 1, got ${String(k)}`);
}
