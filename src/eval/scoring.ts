/**
 * Scoring (../shared/docs/shapes-world.md "Robustness": exact string match after lower-casing and
 * collapsing spaces), tallies per prompt kind with a 95% interval, and the caption parser that turns
 * a wrong caption into field-level confusion hints (which word was wrong, and what it became).
 */
import { COLOURS, SHAPES, SIZES, type Colour, type Shape, type Size } from '../sources/synthetic/shapes-world.js';

/** Lower-case, every run of whitespace → one space, no leading or trailing space. */
export function normalizeAnswer(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** The contract's scoring: exact match of the normalised strings. */
export function isExactMatch(got: string, expected: string): boolean {
  return normalizeAnswer(got) === normalizeAnswer(expected);
}

/** Correct answers out of n, with the accuracy and its Wilson 95% interval. */
export interface Accuracy {
  readonly n: number;
  readonly correct: number;
  /** correct / n (0 when n = 0). */
  readonly accuracy: number;
  /** Wilson score interval at 95%: [low, high]. */
  readonly ci95: readonly [number, number];
}

export function accuracyOf(correct: number, n: number): Accuracy {
  if (n === 0) return { n, correct, accuracy: 0, ci95: [0, 1] };
  const p = correct / n;
  const z = 1.959964;
  const den = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / den;
  return { n, correct, accuracy: p, ci95: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}

/** Counts right/total per key (a prompt kind, a condition bucket, …). */
export class Tally {
  private readonly counts = new Map<string, { n: number; correct: number }>();

  add(key: string, isCorrect: boolean): void {
    let c = this.counts.get(key);
    if (!c) {
      c = { n: 0, correct: 0 };
      this.counts.set(key, c);
    }
    c.n++;
    if (isCorrect) c.correct++;
  }

  get(key: string): Accuracy {
    const c = this.counts.get(key);
    return accuracyOf(c?.correct ?? 0, c?.n ?? 0);
  }

  keys(): string[] {
    return [...this.counts.keys()];
  }

  /** Every key's accuracy, keys in insertion order. */
  toJSON(): Record<string, Accuracy> {
    return Object.fromEntries(this.keys().map((k) => [k, this.get(k)]));
  }
}

/** Counts of `from → to` confusions, e.g. `colour purple → blue`. */
export class Confusions {
  private readonly counts = new Map<string, number>();

  add(field: string, expected: string, got: string): void {
    const key = `${field}: ${expected} → ${got}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** The most frequent confusions first (ties by name). */
  top(limit = Infinity): { confusion: string; count: number }[] {
    return [...this.counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, limit)
      .map(([confusion, count]) => ({ confusion, count }));
  }
}

// ---------------------------------------------------------------------------------------------
// Captions as structures

export type ParsedCaption =
  | { readonly objects: 1; readonly size: Size; readonly colour: Colour; readonly shape: Shape; readonly place: string }
  | {
      readonly objects: 2;
      readonly relation: 'to the left of' | 'above';
      readonly first: { readonly colour: Colour; readonly shape: Shape };
      readonly second: { readonly colour: Colour; readonly shape: Shape };
    };

const ALT = (words: readonly string[]): string => `(${words.join('|')})`;
const ONE_RE = new RegExp(`^a ${ALT(SIZES)} ${ALT(COLOURS)} ${ALT(SHAPES)} (on the left|in the middle|on the right)$`);
const TWO_RE = new RegExp(`^a ${ALT(COLOURS)} ${ALT(SHAPES)} (to the left of|above) a ${ALT(COLOURS)} ${ALT(SHAPES)}$`);

/** The structure of a well-formed caption of the world, or undefined for anything else. */
export function parseCaption(text: string): ParsedCaption | undefined {
  const t = normalizeAnswer(text);
  const one = ONE_RE.exec(t);
  if (one) return { objects: 1, size: one[1] as Size, colour: one[2] as Colour, shape: one[3] as Shape, place: one[4]! };
  const two = TWO_RE.exec(t);
  if (two) {
    return {
      objects: 2,
      relation: two[3] as 'to the left of' | 'above',
      first: { colour: two[1] as Colour, shape: two[2] as Shape },
      second: { colour: two[4] as Colour, shape: two[5] as Shape },
    };
  }
  return undefined;
}

/**
 * Field-level differences between a wrong caption and the right one, as [field, expected, got]:
 * `malformed` (not a caption of the world), `objects` (one vs two), `size`, `colour`, `shape`,
 * `place`, `relation`, `order` (the pair named the other way round). Empty when they are equal.
 */
export function captionDiff(expected: string, got: string): [string, string, string][] {
  const e = parseCaption(expected);
  const g = parseCaption(got);
  if (!e) return [];
  if (!g) return [['malformed', 'caption', normalizeAnswer(got) === '' ? '(empty)' : 'not a world caption']];
  if (e.objects !== g.objects) return [['objects', String(e.objects), String(g.objects)]];
  const out: [string, string, string][] = [];
  if (e.objects === 1 && g.objects === 1) {
    if (e.size !== g.size) out.push(['size', e.size, g.size]);
    if (e.colour !== g.colour) out.push(['colour', e.colour, g.colour]);
    if (e.shape !== g.shape) out.push(['shape', e.shape, g.shape]);
    if (e.place !== g.place) out.push(['place', e.place, g.place]);
    return out;
  }
  if (e.objects === 2 && g.objects === 2) {
    if (e.relation !== g.relation) out.push(['relation', e.relation, g.relation]);
    const same = (a: { colour: string; shape: string }, b: { colour: string; shape: string }): boolean => a.colour === b.colour && a.shape === b.shape;
    if (same(e.first, g.second) && same(e.second, g.first) && !same(e.first, e.second)) {
      out.push(['order', 'as drawn', 'swapped']);
      return out;
    }
    for (const [a, b] of [[e.first, g.first], [e.second, g.second]] as const) {
      if (a.colour !== b.colour) out.push(['colour', a.colour, b.colour]);
      if (a.shape !== b.shape) out.push(['shape', a.shape, b.shape]);
    }
  }
  return out;
}
