/**
 * One helper for both architectures' in-thread generation APIs (src/model/index.ts for bitmar-stream,
 * src/model/r1/index.ts for bitmar-r1): a synchronous token generator becomes an AsyncIterable that
 * yields to the event loop between tokens (so an AbortSignal can land), plus a `result` promise that
 * settles once the iteration ends — on its own, by the signal, or because the consumer stopped early.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** What every generated token carries that the helper reads. */
export interface StreamedToken {
  readonly tokenId: number;
  /** Generated text so far. */
  readonly text: string;
  /** performance.now() when the token was sampled. */
  readonly atMs: number;
}

/** How an iteration ended: handed to `finish`, which builds the result. */
export interface StreamEnd<S> {
  /** The generator's return value when it ran to its end (undefined when cancelled). */
  readonly summary: S | undefined;
  readonly tokenIds: number[];
  readonly text: string;
  /** True when the signal (or the consumer stopping early) ended it. */
  readonly cancelled: boolean;
  /** performance.now() at the start of the iteration, after `begin`, and at the end. */
  readonly t0: number;
  readonly t1: number;
  readonly t2: number;
  /** atMs of the first token, or t2 when there was none. */
  readonly firstAt: number;
}

/** An async token stream with its summary. */
export interface TokenStream<T, R> extends AsyncIterable<T> {
  /** Resolves after the last token (or the abort); rejects with the error the iteration threw. */
  readonly result: Promise<R>;
}

/**
 * Wrap a synchronous generator. `begin` runs when the iteration starts (its time is t1 − t0) and
 * returns the generator; it is always called, even when the signal is already aborted, but the
 * generator is then never stepped. `finish` builds the result (it may compute more, e.g. episodes;
 * an error there rejects `result`). Iterable once.
 */
export function tokenStream<T extends StreamedToken, S, R>(
  begin: () => Iterator<T, S, undefined>,
  finish: (end: StreamEnd<S>) => R,
  signal: AbortSignal | undefined,
  what = 'a generation stream',
): TokenStream<T, R> {
  let settle: { resolve(r: R): void; reject(e: unknown): void } | undefined;
  const result = new Promise<R>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined); // the iterator rethrows; an unobserved `result` must not crash the process
  let started = false;
  let settled = false;
  const isAborted = (): boolean => signal?.aborted === true;
  async function* run(): AsyncGenerator<T, void, undefined> {
    if (started) throw new Error(`${what} can be iterated once`);
    started = true;
    const t0 = performance.now();
    let t1 = t0;
    let firstAt = -1;
    const tokenIds: number[] = [];
    let text = '';
    let summary: S | undefined;
    let cancelled = true; // until the generator finishes on its own
    const end = (): StreamEnd<S> => {
      const t2 = performance.now();
      return { summary, tokenIds, text, cancelled, t0, t1, t2, firstAt: firstAt < 0 ? t2 : firstAt };
    };
    try {
      const it = begin();
      t1 = performance.now();
      if (!isAborted()) {
        for (;;) {
          const n = it.next();
          if (n.done) {
            summary = n.value;
            cancelled = false;
            break;
          }
          const t = n.value;
          if (firstAt < 0) firstAt = t.atMs;
          tokenIds.push(t.tokenId);
          text = t.text;
          yield t;
          await nextTurn(); // let timers and I/O (and so an abort) run between tokens
          if (isAborted()) break;
        }
      }
      settled = true;
      settle?.resolve(finish(end()));
    } catch (e) {
      settled = true;
      settle?.reject(e);
      throw e;
    } finally {
      // Reached without settling when the consumer stops iterating early (counted as cancelled).
      if (!settled) {
        settled = true;
        try {
          settle?.resolve(finish(end()));
        } catch (e) {
          settle?.reject(e);
        }
      }
    }
  }
  return { result, [Symbol.asyncIterator]: run };
}
