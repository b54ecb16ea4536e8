import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { watchInput, type InputStatus } from '../../src/pipeline/input-watch.js';

const frame = (id: number) => ({ id, source: 'ros2:/image_raw' });

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
