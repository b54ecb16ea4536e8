import assert from 'node:assert/strict';
import { RepeatLimiter } from '../src/log.js';

describe('RepeatLimiter', () => {
  it('lets one line per key through per interval and reports how many were suppressed', () => {
    let now = 0;
    const lim = new RepeatLimiter(1000, () => now);
    assert.equal(lim.admit('decode'), 0);
    assert.equal(lim.admit('decode'), -1);
    assert.equal(lim.admit('decode'), -1);
    assert.equal(lim.admit('other'), 0, 'keys are independent');
    now = 999;
    assert.equal(lim.admit('decode'), -1);
    now = 1000;
    assert.equal(lim.admit('decode'), 3, 'the next line carries the suppressed count');
    assert.equal(lim.admit('decode'), -1);
  });

  it('stays bounded with many distinct keys', () => {
    const lim = new RepeatLimiter(1000, () => 0);
    for (let i = 0; i < 5000; i++) lim.admit(`k${i}`);
    assert.ok((lim as unknown as { last: Map<string, unknown> }).last.size <= 1001);
  });
});
