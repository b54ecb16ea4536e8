import assert from 'node:assert/strict';
import { SinkWindowKvCache } from '../../../src/model/engine/kv-cache.js';
import { argmaxOf, referenceDecoderLogits, relDiff, testImage, tinyEngine } from './helpers.js';

describe('sink + window KV cache', () => {
  it('keeps the first S tokens and the last W, in order', () => {
    const c = new SinkWindowKvCache(2, 3, 1);
    const seen: number[][] = [];
    for (let t = 0; t < 9; t++) {
      const pos = c.append(Float32Array.of(t), 0, Float32Array.of(100 + t), 0);
      assert.equal(pos, Math.min(t, 4));
      seen.push(Array.from({ length: c.length }, (_, i) => c.keys[c.order[i]!]!));
      assert.deepEqual(Array.from({ length: c.length }, (_, i) => c.values[c.order[i]!]! - 100), seen[t]);
    }
    assert.deepEqual(seen[3], [0, 1, 2, 3]);
    assert.deepEqual(seen[4], [0, 1, 2, 3, 4]);
    assert.deepEqual(seen[5], [0, 1, 3, 4, 5]);
    assert.deepEqual(seen[8], [0, 1, 6, 7, 8]);
    assert.equal(c.totalFed, 9);
    assert.ok(c.hasEvicted);
    c.reset();
    assert.equal(c.length, 0);
  });

  it('rejects S < 0 and W < 1', () => {
    assert.throws(() => new SinkWindowKvCache(-1, 3, 4), /sinks -1/);
    assert.throws(() => new SinkWindowKvCache(0, 0, 4), /window 0/);
  });

  describe('decoder with the cache against a cache-free reference', function () {
    this.timeout(120_000);

    it('equals plain causal full-recompute attention while the cache is not full', () => {
      const engine = tinyEngine({ hparams: { 'decoder.block_count': 2 } });
      const cond = engine.prepare([testImage(40, 30, 1)], 'is there a red circle');
      const sess = engine.session('caption', 2, 6);
      engine.condition(sess, cond);
      sess.resetCache();
      const tokens = [1, 7, 12, 4, 30, 9, 5, 22]; // 8 = S + W tokens: never evicts
      for (let t = 0; t < tokens.length; t++) {
        const logits = engine.feed(sess, tokens, t, 1, false).slice(0, engine.config.vocabSize);
        const ref = referenceDecoderLogits(engine, cond, tokens.slice(0, t + 1));
        const last = ref.subarray(t * engine.config.vocabSize);
        assert.ok(relDiff(logits, last) <= 1e-6, `step ${t}: rel diff ${relDiff(logits, last)}`);
        assert.equal(argmaxOf(logits), argmaxOf(last));
      }
    });

    it('after the cache fills, a step equals a full recompute over [sinks + last W] with re-based positions', () => {
      // One decoder layer: its K/V depend on the token alone, so the reference over the kept
      // tokens is exact, not an approximation.
      const engine = tinyEngine({ hparams: { 'decoder.block_count': 1 } });
      const cond = engine.prepare([testImage(64, 48, 2)], 'describe the scene');
      const S = 2;
      const W = 3;
      const sess = engine.session('caption', S, W);
      engine.condition(sess, cond);
      sess.resetCache();
      const tokens = [1, 5, 9, 13, 17, 21, 25, 29, 33, 4, 8, 12];
      const V = engine.config.vocabSize;
      for (let t = 0; t < tokens.length; t++) {
        const logits = engine.feed(sess, tokens, t, 1, false).slice(0, V);
        const kept = t < S + W ? tokens.slice(0, t + 1) : [...tokens.slice(0, S), ...tokens.slice(t - W + 1, t + 1)];
        assert.ok(kept.length <= S + W);
        const ref = referenceDecoderLogits(engine, cond, kept).subarray((kept.length - 1) * V);
        assert.ok(relDiff(logits, ref) <= 1e-6, `step ${t}: rel diff ${relDiff(logits, ref)}`);
        assert.equal(argmaxOf(logits), argmaxOf(ref));
        if (t >= S + W) {
          // And it is NOT the same as attending over everything with absolute positions.
          const full = referenceDecoderLogits(engine, cond, tokens.slice(0, t + 1)).subarray(t * V);
          assert.ok(relDiff(logits, full) > 1e-4, `step ${t}: the window had no effect`);
        }
      }
    });

    it('with two layers, stays within the window and keeps generating past S + W', () => {
      const engine = tinyEngine();
      const cond = engine.prepare([testImage(40, 30, 3)], '');
      const sess = engine.session('narration', 1, 2);
      engine.condition(sess, cond);
      sess.resetCache();
      for (let t = 0; t < 20; t++) engine.feed(sess, [1 + (t % 30)], 0, 1, false);
      assert.equal(sess.caches[0]!.length, 3);
      assert.equal(sess.fed, 20);
      assert.ok(engine.state.logits.slice(0, engine.config.vocabSize).every(Number.isFinite));
    });
  });
});
