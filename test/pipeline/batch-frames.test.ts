import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { batchFrames } from '../../src/pipeline/batch-frames.js';

describe('batchFrames', () => {
  const ts = () => new TestScheduler((a, b) => assert.deepEqual(a, b));

  it('emits a batch as soon as it is full', () => {
    const s = ts();
    s.run(({ hot, expectObservable }) => {
      const out = hot('abcd', { a: 1, b: 2, c: 3, d: 4 }).pipe(batchFrames(2, 100, s));
      expectObservable(out, '^ 50ms !').toBe('-x-y', { x: [1, 2], y: [3, 4] });
    });
  });

  it('emits a partial batch after the max wait, and nothing for empty windows', () => {
    const s = ts();
    s.run(({ hot, expectObservable }) => {
      const out = hot('a 300ms b', { a: 1, b: 2 }).pipe(batchFrames(4, 100, s));
      expectObservable(out, '^ 450ms !').toBe('100ms x 299ms y', { x: [1], y: [2] });
    });
  });

  it('never emits a batch larger than maxSize', () => {
    const s = ts();
    s.run(({ hot, expectObservable }) => {
      const vals = Object.fromEntries('abcdefghij'.split('').map((c, i) => [c, i]));
      const out = hot('abcdefghij', vals).pipe(batchFrames(3, 1000, s));
      expectObservable(out, '^ 20ms !').toBe('--x--y--z', { x: [0, 1, 2], y: [3, 4, 5], z: [6, 7, 8] });
    });
  });
});
