import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { createSampler, sampleFrames } from '../../src/pipeline/sample-frames.js';

const f = (receivedMs: number) => ({ receivedMs });

describe('sampleFrames', () => {
  const ts = () => new TestScheduler((a, b) => assert.deepEqual(a, b));

  it('keeps every Nth frame and reports the others as dropped', () => {
    const drops: number[] = [];
    ts().run(({ cold, expectObservable }) => {
      const vals = { a: f(0), b: f(10), c: f(20), d: f(30), e: f(40) };
      const out = cold('abcde|', vals).pipe(sampleFrames(() => ({ everyN: 2, minIntervalMs: 0 }), (x) => drops.push(x.receivedMs)));
      expectObservable(out).toBe('a-c-e|', vals);
    });
    assert.deepEqual(drops, [10, 30]);
  });

  it('enforces the minimum interval on arrival times', () => {
    ts().run(({ cold, expectObservable }) => {
      const vals = { a: f(0), b: f(40), c: f(100), d: f(150), e: f(205) };
      const out = cold('abcde|', vals).pipe(sampleFrames(() => ({ everyN: 1, minIntervalMs: 100 }), () => {}));
      expectObservable(out).toBe('a-c-e|', vals);
    });
  });

  it('reads options per frame, so a runtime change applies at once', () => {
    let everyN = 1;
    const kept: number[] = [];
    from([0, 1, 2, 3, 4, 5, 6].map(f))
      .pipe(sampleFrames(() => ({ everyN, minIntervalMs: 0 }), () => {}))
      .subscribe((v) => {
        kept.push(v.receivedMs);
        if (v.receivedMs === 1) everyN = 3;
      });
    // index 2 is not a multiple of 3; 3 and 6 are.
    assert.deepEqual(kept, [0, 1, 3, 6]);
  });

  it('passes errors and completion through', () => {
    ts().run(({ cold, expectObservable }) => {
      expectObservable(cold('a#', { a: f(0) }).pipe(sampleFrames(() => ({ everyN: 1, minIntervalMs: 0 }), () => {}))).toBe('a#', { a: f(0) });
      expectObservable(cold('|').pipe(sampleFrames(() => ({ everyN: 3, minIntervalMs: 0 }), () => {}))).toBe('|');
    });
  });

  it('createSampler, asked before decoding, keeps exactly the frames the sample stage would', () => {
    const opts = () => ({ everyN: 3, minIntervalMs: 50 });
    const arrivals = [0, 10, 20, 30, 40, 55, 60, 70, 130, 131, 132, 133, 200, 201, 260, 300];
    const staged: number[] = [];
    from(arrivals.map(f))
      .pipe(sampleFrames(opts, () => {}))
      .subscribe((v) => staged.push(v.receivedMs));
    const keep = createSampler(opts);
    assert.deepEqual(arrivals.filter((t) => keep(t)), staged);
    assert.ok(staged.length > 1 && staged.length < arrivals.length);
  });
});
