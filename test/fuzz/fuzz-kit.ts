/**
 * Shared pieces of the fuzz suite (issue 9): byte mutators as fast-check arbitraries, a tally of
 * outcomes per error code, and a retained-memory check.
 *
 * Every input path gets FUZZ_RUNS inputs (default 10,000; `BITMAR_FUZZ_RUNS=200000 npm test -- --grep fuzz`
 * for a long run). A failure prints fast-check's seed and path; rerun it exactly with
 * `BITMAR_FUZZ_SEED=<seed>`. The contract checked everywhere: an input is accepted, or refused with
 * a BitmarError whose code is in src/errors.ts, or dropped with a documented DropReason — never any
 * other exception, and the memory retained afterwards stays under a bound.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { ERROR_CODES, isBitmarError, type ErrorCode } from '../../src/errors.js';
import type { DropReason } from '../../src/types.js';

/** Inputs per path. */
export const FUZZ_RUNS = Number(process.env.BITMAR_FUZZ_RUNS ?? 10_000);
/** One seed per test process, printed first, so even a crash that kills the process can be replayed. */
export const FUZZ_SEED = process.env.BITMAR_FUZZ_SEED !== undefined ? Number(process.env.BITMAR_FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
let announced = false;

/** fast-check parameters for one path: the run count and the process's seed. */
export function fuzzParams(): fc.Parameters<unknown> {
  if (!announced) {
    announced = true;
    process.stdout.write(`      fuzz seed ${FUZZ_SEED} (replay: BITMAR_FUZZ_SEED=${FUZZ_SEED}), ${FUZZ_RUNS} inputs per path\n`);
  }
  return { numRuns: FUZZ_RUNS, seed: FUZZ_SEED };
}

/** Every reason a counted drop may carry (src/types.ts DropReason). */
export const DROP_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  'decode_error',
  'invalid_input',
  'too_large',
  'sampled_out',
  'queue_full',
  'stale',
  'cancelled',
  'rate_limited',
  'unknown_topic',
]);

// ---------------------------------------------------------------------------------------------
// Mutations

/** One edit of a byte string. Positions are taken modulo the length, so any number fits. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'u32'; readonly at: number; readonly value: number; readonly bigEndian: boolean }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number }
  | { readonly kind: 'truncate'; readonly at: number };

/** Values that sit on the edges of length and size checks. */
const EDGE_U32 = [0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x100000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/**
 * A mutation arbitrary. `focus` (bytes) makes 85% of the positions land in [0, focus): the
 * headers and metadata, where a parser makes its decisions (a GGUF's tensor data is 80% of it).
 */
export function mutationArb(focus?: number): fc.Arbitrary<Mutation> {
  const pos = focus === undefined ? fc.nat() : fc.oneof({ arbitrary: fc.nat({ max: Math.max(0, focus - 1) }), weight: 85 }, { arbitrary: fc.nat(), weight: 15 });
  return fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }), weight: 4 },
    { arbitrary: fc.record({ kind: fc.constant('set' as const), at: pos, value: fc.oneof(fc.constantFrom(0, 0xff, 0x7f, 0x80), fc.nat({ max: 255 })) }), weight: 3 },
    {
      arbitrary: fc.record({ kind: fc.constant('u32' as const), at: pos, value: fc.oneof(fc.constantFrom(...EDGE_U32), fc.nat({ max: 0xffffffff })), bigEndian: fc.boolean() }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, length: fc.integer({ min: 1, max: 64 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: pos, length: fc.integer({ min: 1, max: 64 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }), weight: 1 },
  );
}

/** Applies the edits in order to a copy of `seed`. */
export function applyMutations(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = new Uint8Array(seed);
  for (const m of mutations) {
    const n = b.length;
    if (n === 0 && m.kind !== 'insert') continue;
    const at = m.at % (m.kind === 'insert' || m.kind === 'truncate' ? n + 1 : n);
    switch (m.kind) {
      case 'flip':
        b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'u32':
        for (let i = 0; i < 4 && at + i < n; i++) b[at + i] = (m.value >>> (8 * (m.bigEndian ? 3 - i : i))) & 0xff;
        break;
      case 'insert':
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      case 'delete':
        b = concat(b.subarray(0, at), b.subarray(Math.min(n, at + m.length)));
        break;
      case 'duplicate':
        b = concat(b.subarray(0, Math.min(n, at + m.length)), b.subarray(at, Math.min(n, at + m.length)), b.subarray(Math.min(n, at + m.length)));
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Which recipe made an input (reported in the tally so a skewed mix shows). */
export type Recipe = 'mutated' | 'truncated' | 'random';

/**
 * Inputs built from a corpus of valid files: 70% mutated (1–4 edits), 15% truncated at a random
 * point, 15% random bytes (up to `randomMaxBytes`, default 512).
 */
export function bytesFrom(corpus: readonly Uint8Array[], opts: { focus?: number; randomMaxBytes?: number } = {}): fc.Arbitrary<{ recipe: Recipe; bytes: Uint8Array }> {
  const pick = fc.nat({ max: corpus.length - 1 }).map((i) => corpus[i]!);
  return fc.oneof(
    {
      arbitrary: fc.tuple(pick, fc.array(mutationArb(opts.focus), { minLength: 1, maxLength: 4 })).map(([seed, muts]) => ({ recipe: 'mutated' as const, bytes: applyMutations(seed, muts) })),
      weight: 70,
    },
    { arbitrary: fc.tuple(pick, fc.nat()).map(([seed, at]) => ({ recipe: 'truncated' as const, bytes: seed.slice(0, at % (seed.length + 1)) })), weight: 15 },
    { arbitrary: fc.uint8Array({ maxLength: opts.randomMaxBytes ?? 512 }).map((bytes) => ({ recipe: 'random' as const, bytes })), weight: 15 },
  );
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** Counts of accepted inputs and of rejections by code (or drop reason). */
export class Tally {
  accepted = 0;
  readonly rejected = new Map<string, number>();
  readonly recipes = new Map<string, number>();

  get total(): number {
    let n = this.accepted;
    for (const v of this.rejected.values()) n += v;
    return n;
  }

  accept(recipe?: string): void {
    this.accepted++;
    if (recipe !== undefined) this.recipes.set(recipe, (this.recipes.get(recipe) ?? 0) + 1);
  }

  reject(code: string, recipe?: string): void {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    if (recipe !== undefined) this.recipes.set(recipe, (this.recipes.get(recipe) ?? 0) + 1);
  }

  /** One line: totals, rejections by code, recipes. */
  summary(): string {
    const codes = [...this.rejected].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k.replace('BITMAR_ERR_', '')} ${v}`);
    const recipes = [...this.recipes].map(([k, v]) => `${k} ${v}`).join(', ');
    return `${this.total} inputs: ${this.accepted} accepted, rejected {${codes.join(', ')}}${recipes ? ` [${recipes}]` : ''}`;
  }
}

/**
 * Runs `fn`; a return is an acceptance, a BitmarError with a catalogued code (and one of `allowed`,
 * when given) a rejection. Anything else fails the property with the offending error.
 */
export function expectBitmar(tally: Tally, fn: () => unknown, allowed?: readonly ErrorCode[], recipe?: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isBitmarError(e), `not a BitmarError: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e)}`);
    assert.ok(e.code in ERROR_CODES, `uncatalogued code ${e.code}`);
    if (allowed !== undefined) assert.ok(allowed.includes(e.code), `unexpected code ${e.code}: ${e.message}`);
    assert.ok(e.message.length > 0, `${e.code} without a message`);
    tally.reject(e.code, recipe);
    return;
  }
  tally.accept(recipe);
}

// ---------------------------------------------------------------------------------------------
// Memory

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (opts?: { type: 'major' }) => void;

function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Default bound on what one path may retain after its inputs: 16 MiB. */
export const RETAINED_BOUND_BYTES = 16 * 1024 * 1024;

/** Starts a memory watch; `check` asserts retained growth and a peak-RSS bound and returns a summary. */
export function watchMemory(): { sample(): void; check(boundBytes?: number, peakRssBoundBytes?: number): string } {
  const before = retainedBytes();
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  return {
    sample() {
      const r = process.memoryUsage.rss();
      if (r > peak) peak = r;
    },
    check(boundBytes = RETAINED_BOUND_BYTES, peakRssBoundBytes = 1024 * 1024 * 1024) {
      const grown = retainedBytes() - before;
      assert.ok(grown <= boundBytes, `retained memory grew by ${(grown / 1048576).toFixed(1)} MiB (bound ${(boundBytes / 1048576).toFixed(0)} MiB)`);
      assert.ok(peak - rss0 <= peakRssBoundBytes, `RSS peaked ${((peak - rss0) / 1048576).toFixed(0)} MiB above its start (bound ${(peakRssBoundBytes / 1048576).toFixed(0)} MiB)`);
      return `retained ${grown >= 0 ? '+' : ''}${(grown / 1048576).toFixed(1)} MiB, peak RSS +${((peak - rss0) / 1048576).toFixed(0)} MiB`;
    },
  };
}

/** Prints one result line per path (mocha shows it under the test). */
export function report(path: string, tally: Tally, memory: string, ms: number): void {
  process.stdout.write(`      fuzz ${path}: ${tally.summary()}; ${memory}; ${(ms / 1000).toFixed(1)} s\n`);
}
