import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { watchInput, type InputStatus } from '../../src/pipeline/input-watch.js';

const frame = (id: number) => ({ id, source: 'ros2:/image_raw' });

/** A marble string (run mode: a value takes 1 ms) with `char` at each time in `at`, then `|` at `endAt`. */
function marbles(at: readonly { t: number; c: string }[], endAt?: number): string {
  let pos = 0;
  let out = '';
  const put = (t: number, c: string): void => {
    if (t < pos) throw new Error(`marbles: ${t} ms comes before ${pos} ms`);
    if (t > pos) out += `${t - pos}ms `;
    out += `${c} `;
    pos = t + 1;
  };
  for (const e of at) put(e.t, e.c);
  if (endAt !== undefined) put(endAt, '|');
  return out.trim();
}
const range = (from: number, to: number, step: number): number[] => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

describe('watchInput', () => {
  const ts = () => new TestScheduler((a, b) => assert.deepEqual(a, b));

  it('passes frames through, reports a silence once and the frames coming back', () => {
    const seen: (InputStatus & { at: number })[] = [];
    const t = ts();
    t.run(({ cold, expectObservable }) => {
      // frames at 0, 100, 200 ms; silence; frames again at 2000 and 2100 ms; silence until the end
      const vals = { a: frame(0), b: frame(1), c: frame(2), d: frame(3), e: frame(4) };
      const src = cold('a 99ms b 99ms c 1799ms d 99ms e 3000ms |', vals);
      const out = src.pipe(watchInput(1000, (s) => seen.push({ ...s, at: t.now() }), t));
      expectObservable(out).toBe('a 99ms b 99ms c 1799ms d 99ms e 3000ms |', vals);
    });
    assert.deepEqual(
      seen.map((s) => [s.state, s.at, s.silentMs, s.frame?.id]),
      [
        ['silent', 1200, 1000, 2],
        ['resumed', 2000, 1800, 3],
        ['silent', 3100, 1000, 4],
      ],
    );
    assert.match(seen[0]!.message, /^no frames for 1\.0 s since frame 2 from ros2:\/image_raw; still listening/);
    assert.match(seen[1]!.message, /^frames again from ros2:\/image_raw after 1\.8 s without$/);
  });

  it('counts from subscription before the first frame; a steady stream reports nothing', () => {
    const seen: InputStatus[] = [];
    const t = ts();
    t.run(({ cold, expectObservable }) => {
      const vals = { a: frame(0) };
      const steady = Array.from({ length: 30 }, () => 'a 99ms').join(' ') + ' |';
      expectObservable(cold(steady, vals).pipe(watchInput(500, (s) => seen.push(s), t))).toBe(steady, vals);
    });
    assert.deepEqual(seen, []);
    const t2 = ts();
    t2.run(({ cold, expectObservable }) => {
      const vals = { a: frame(7) };
      expectObservable(cold('800ms a |', vals).pipe(watchInput(500, (s) => seen.push(s), t2))).toBe('800ms a |', vals);
    });
    assert.deepEqual(seen.map((s) => [s.state, s.silentMs, s.frame?.id]), [['silent', 500, undefined], ['resumed', 800, 7]]);
    assert.match(seen[0]!.message, /^no frames yet after 0\.5 s/);
  });

  // A 1 fps camera sampled every 30th frame at the source (before decoding): the watch sees one
  // frame in 30 s; the 29 sampled-out arrivals in between come in as `arrivals$`.
  const KEPT = [0, 30_000, 60_000];
  const sampledOut = (from: number, to: number) => range(from, to, 1000).filter((t) => !KEPT.includes(t) && t !== 90_000);
  const keptVals = { a: frame(0), b: frame(1), c: frame(2), d: frame(3) };
  const keptMarbles = (endAt: number, extra: { t: number; c: string }[] = []) =>
    marbles([...KEPT.map((t, i) => ({ t, c: 'abc'[i]! })), ...extra], endAt);

  it('counts arrivals that never reach it: kept frames rarer than the threshold are not a silence', () => {
    const seen: InputStatus[] = [];
    const t = ts();
    t.run(({ cold, expectObservable }) => {
      const frames = keptMarbles(65_000);
      const arrivals = cold(marbles(sampledOut(1000, 64_000).map((at) => ({ t: at, c: 'x' }))));
      const out = cold(frames, keptVals).pipe(watchInput(2000, (st) => seen.push(st), t, arrivals));
      expectObservable(out).toBe(frames, keptVals);
    });
    assert.deepEqual(seen, []);

    // The same frames without their arrivals: the watch reports silences that are not there.
    const without: InputStatus[] = [];
    const t2 = ts();
    t2.run(({ cold, expectObservable }) => {
      const frames = keptMarbles(65_000);
      expectObservable(cold(frames, keptVals).pipe(watchInput(2000, (st) => without.push(st), t2))).toBe(frames, keptVals);
    });
    assert.deepEqual(without.map((st) => st.state), ['silent', 'resumed', 'silent', 'resumed', 'silent']);
  });

  it('reports a silence once when the arrivals stop too, and its end at the next arrival', () => {
    const seen: (InputStatus & { at: number })[] = [];
    const t = ts();
    let arrivalsObserved = true;
    t.run(({ cold, expectObservable }) => {
      // Arrivals until 65 s; nothing from 65 to 70 s; arrivals again from 70 s, the next kept frame at 90 s.
      const frames = keptMarbles(95_500, [{ t: 90_000, c: 'd' }]);
      const arrivals = new Subject<string>();
      cold(marbles([...sampledOut(1000, 65_000), ...sampledOut(70_000, 95_000)].map((at) => ({ t: at, c: 'x' })))).subscribe(arrivals);
      const out = cold(frames, keptVals).pipe(watchInput(2000, (st) => seen.push({ ...st, at: t.now() }), t, arrivals));
      expectObservable(out).toBe(frames, keptVals);
      t.schedule(() => (arrivalsObserved = arrivals.observed), 96_000);
    });
    assert.deepEqual(
      seen.map((st) => [st.state, st.at, st.silentMs, st.frame?.id]),
      [
        ['silent', 67_000, 2000, 2],
        ['resumed', 70_000, 5000, undefined],
      ],
    );
    assert.match(seen[0]!.message, /^no frames for 2\.0 s \(last passed on: frame 2 from ros2:\/image_raw\); still listening/);
    assert.equal(seen[1]!.message, 'frames arriving again after 5.0 s without');
    assert.equal(arrivalsObserved, false, 'the arrivals are unsubscribed with the frames');
  });

  it('is off for 0, and leaves no timer behind when unsubscribed', () => {
    const seen: InputStatus[] = [];
    const t = ts();
    t.run(({ cold, expectObservable }) => {
      expectObservable(cold('a 5000ms |', { a: frame(1) }).pipe(watchInput(0, (s) => seen.push(s), t))).toBe('a 5000ms |', { a: frame(1) });
    });
    assert.deepEqual(seen, []);
    const src = new Subject<{ id: number; source: string }>();
    const sub = src.pipe(watchInput(50, (s) => seen.push(s))).subscribe();
    sub.unsubscribe();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        assert.deepEqual(seen, []);
        resolve();
      }, 120),
    );
  });
});
