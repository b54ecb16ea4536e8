import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildRecallStore, evaluateRecall, scoreRecall, tsEvalItem, type RecallEpisode } from '../../src/eval/index.js';
import { InferenceWorker } from '../../src/model/inference-worker.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
}

describe('recall eval', function () {
  this.timeout(60_000);

  it('ranks by cosine over the store: each query finds its own episode first', () => {
    const eps: RecallEpisode[] = [
      { vector: unit([1, 0, 0, 0]), caption: 'a' },
      { vector: unit([0, 1, 0, 0]), caption: 'b' },
      { vector: unit([0, 0, 1, 0]), caption: 'c' },
    ];
    const { store, ids } = buildRecallStore(eps, 4);
    const r = scoreRecall(store, ids, [unit([1, 0.1, 0, 0]), unit([0, 1, 0.2, 0]), unit([0.9, 0, 0.1, 0])], ['a', 'b', 'c']);
    store.close();
    assert.equal(r.top1.correct, 2);
    assert.equal(r.top5.correct, 3);
    assert.deepEqual(r.misses, [{ caption: 'c', retrieved: 'a', rank: 2 }]);
    assert.ok(Math.abs(r.meanReciprocalRank - (1 + 1 + 0.5) / 3) < 1e-9);
  });

  it('keeps every episode (no merge, no eviction) even when vectors are identical', () => {
    const same = unit([1, 2, 3, 4]);
    const { store, ids } = buildRecallStore(Array.from({ length: 50 }, (_, i) => ({ vector: same, caption: `s${i}` })), 4);
    assert.equal(new Set(ids).size, 50);
    assert.equal(store.stats().used, 50);
    store.close();
  });

  describe('through the model', () => {
    let worker: InferenceWorker;
    before(async () => {
      worker = await InferenceWorker.start({ modelPath: join(PACKAGE_ROOT, 'models', 'bitmar-stream-random.gguf') });
    });
    after(async () => {
      await worker?.close();
    });

    it("ranks a planted exact match first: an episode equal to the caption's text vector", async () => {
      const items = Array.from({ length: 12 }, (_, i) => tsEvalItem(77, i, ['describe']));
      const eps: RecallEpisode[] = [];
      for (const it of items) eps.push({ vector: await worker.encodeImage(it.image), caption: it.truth.caption });
      const queries = await Promise.all(items.map((it) => worker.encodeText(it.truth.caption)));
      const planted = 7;
      eps[planted] = { ...eps[planted]!, vector: queries[planted]! };
      const { store, ids } = buildRecallStore(eps, worker.info.episodeDim);
      const hit = store.query(queries[planted]!, 1)[0]!;
      assert.equal(hit.episodeId, ids[planted]);
      assert.ok(Math.abs(hit.score - 1) < 1e-5);
      const r = scoreRecall(store, ids, queries, eps.map((e) => e.caption));
      store.close();
      assert.ok(!r.misses.some((m) => m.caption === eps[planted]!.caption), 'the planted scene is not a miss');
      assert.ok(r.top1.correct >= 1);
    });

    it('draws scenes with different captions and reports top-1 / top-5', async () => {
      const r = await evaluateRecall(worker, { seed: 5, count: 20 });
      assert.equal(r.scenes, 20);
      assert.equal(r.top1.n, 20);
      assert.ok(r.top5.correct >= r.top1.correct);
      assert.equal(r.misses.length, 20 - r.top1.correct);
      assert.equal(new Set(r.misses.map((m) => m.caption)).size, r.misses.length);
    });
  });
});
