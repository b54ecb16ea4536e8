import assert from 'node:assert/strict';
import { Backoff } from '../../../src/sinks/mqtt/backoff.js';

describe('Backoff', () => {
  it('grows exponentially up to maxMs and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(b.attempts, 6);
    b.reset();
    assert.equal(b.next(), 100);
  });

  it('jitters each delay within [1 - jitter, 1] of the base', () => {
    const lo = new Backoff({ initialMs: 1000, jitter: 0.5 }, () => 0.999999);
    const hi = new Backoff({ initialMs: 1000, jitter: 0.5 }, () => 0);
    assert.equal(lo.next(), 500);
    assert.equal(hi.next(), 1000);
    const real = new Backoff({ initialMs: 1000, jitter: 0.5 });
    for (let i = 0; i < 50; i++) {
      real.reset();
      const d = real.next();
      assert.ok(d >= 500 && d <= 1000, String(d));
    }
  });

  it('rejects options out of range instead of clamping them', () => {
    assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
    assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
    assert.throws(() => new Backoff({ factor: 0.5 }), RangeError);
    assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
  });
});
