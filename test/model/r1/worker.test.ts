/**
 * bitmar-r1 in the InferenceWorker: feature-vector frames, R1's exact generation through the worker
 * protocol (the reference's greedy tokens), episodes and recall keys, R1's memory modes, the errors
 * of the wrong input for each architecture, and (with onnxruntime-node) image frames through the
 * DINOv2 ONNX stand-in.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BitmarError } from '../../../src/errors.js';
import { InferenceWorker, type R1WorkerInfo, type WorkerModelInfo, type WorkerToken } from '../../../src/model/inference-worker.js';
import { loadR1Model } from '../../../src/model/r1/index.js';
import { unit } from '../../../src/model/r1/node-session.js';
import { loadVisionOnnx } from '../../../src/model/r1/vision-onnx.js';
import { FIXTURE_DIR, f32, fx, ints, standInImage } from './fixture.js';

const GGUF = join(FIXTURE_DIR, fx.gguf);
const STREAM = join(FIXTURE_DIR, '..', 'stream', 'random-tiny.gguf');
const ONNX = join(FIXTURE_DIR, 'dinov2-standin.onnx');

function isCode(code: string, pattern?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BitmarError, `expected BitmarError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

let ortMissing: string | null = null;
try {
  await import('onnxruntime-node' as string);
} catch {
  ortMissing = 'onnxruntime-node is not installed (optional; npm install onnxruntime-node)';
}

describe('InferenceWorker with a bitmar-r1 model', function () {
  this.timeout(60_000);
  let worker: InferenceWorker<WorkerModelInfo>;
  const vision = f32('input/vision');

  before(async () => {
    worker = await InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript' });
  });
  after(async () => {
    await worker?.close();
  });

  it('reports an R1 model without a vision extractor', () => {
    assert.ok(worker.isR1());
    assert.ok(!worker.isStream());
    const info = worker.info as R1WorkerInfo;
    assert.equal(info.arch, 'bitmar-r1');
    assert.equal(info.episodeDim, 32);
    assert.equal(info.hparams.visionInput, 768);
    assert.equal(info.vision, null);
    assert.equal(info.memoryMode, 'reset');
  });

  it('captions a feature vector with the reference greedy tokens, streaming each; episodes are unit e', async () => {
    const tokens: WorkerToken[] = [];
    const r = await worker.describe({ images: [], features: [vision], prompt: fx.prompt_text, maxTokens: fx.gen_new_tokens }, (t) => tokens.push(t));
    assert.deepEqual(r.tokenIds, ints('gen/tokens'));
    assert.deepEqual(tokens.map((t) => t.tokenId), r.tokenIds);
    assert.equal(tokens.map((t) => t.piece).join(''), r.text);
    assert.equal(r.cancelled, false);
    // reset mode: the same caption again (R1's reads changed its memory during the first one)
    const again = await worker.describe({ images: [], features: [vision], prompt: fx.prompt_text, maxTokens: fx.gen_new_tokens }, () => undefined);
    assert.deepEqual(again.tokenIds, r.tokenIds);
    // episodes: one per frame, the unit e R1 computes for (prompt, frame)
    const m = loadR1Model(GGUF, { kernels: 'typescript' });
    const zero = new Float32Array(768);
    const batch = await worker.describe({ images: [], features: [zero, vision], prompt: fx.prompt_text, maxTokens: 2 }, () => undefined);
    assert.equal(batch.episodes.length, 2);
    const want = m.episodes(fx.prompt_text, [zero, vision]).map(unit);
    batch.episodes.forEach((e, i) => {
      assert.deepEqual(e, want[i]);
      const n = Math.hypot(...e);
      assert.ok(Math.abs(n - 1) < 1e-6, `episode ${i} norm ${n}`);
    });
    // the episode equals the forward's own (the memory-read query)
    const fwd = m.forward({ inputIds: ints('input/prompt_ids'), visionFeatures: vision }, { memory: 'frozen' });
    assert.deepEqual(m.episodes(fx.prompt_text, [vision])[0], fwd.episode);
  });

  it('recall keys: encodeText = unit text-only episode; encodeFeatures = unit episode with the prompt', async () => {
    const m = loadR1Model(GGUF, { kernels: 'typescript' });
    assert.deepEqual(await worker.encodeText('the man is'), unit(m.episodes('the man is', [null])[0]!));
    assert.deepEqual(await worker.encodeFeatures(vision), unit(m.episodes('a', [vision])[0]!));
    assert.deepEqual(await worker.encodeFeatures(vision, 'the man is'), unit(m.episodes('the man is', [vision])[0]!));
  });

  it('an empty prompt means "a"; no frame captions the prompt alone; an aborted request is cancelled', async () => {
    const a = await worker.describe({ images: [], features: [vision], prompt: '', maxTokens: 4 }, () => undefined);
    const b = await worker.describe({ images: [], features: [vision], prompt: 'a', maxTokens: 4 }, () => undefined);
    assert.deepEqual(a.tokenIds, b.tokenIds);
    const text = await worker.describe({ images: [], prompt: 'the man is', maxTokens: 3 }, () => undefined);
    assert.equal(text.episodes.length, 0);
    assert.equal(text.tokenIds.length, 3);
    const ac = new AbortController();
    ac.abort();
    const c = await worker.describe({ images: [], features: [vision], prompt: 'a', maxTokens: 8 }, () => undefined, ac.signal);
    assert.equal(c.cancelled, true);
    assert.equal(c.tokenIds.length, 0);
  });

  it('frozen memory matches the in-thread engine in frozen mode', async () => {
    const w = await InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript', r1Memory: 'frozen' });
    try {
      const r = await w.describe({ images: [], features: [vision], prompt: fx.prompt_text, maxTokens: fx.gen_new_tokens }, () => undefined);
      assert.deepEqual(r.tokenIds, ints('genf/tokens'));
    } finally {
      await w.close();
    }
  });

  it('wrong input for the architecture: clear errors, and the worker stays usable', async () => {
    await assert.rejects(worker.describe({ images: [standInImage(20, 10)], prompt: 'a' }, () => undefined), isCode('BITMAR_ERR_CONFIG_INVALID', /takes 768-d feature vectors, not images; to caption images set model\.visionOnnx/));
    await assert.rejects(worker.describe({ images: [], features: [new Float32Array(10)], prompt: 'a' }, () => undefined), isCode('BITMAR_ERR_IMAGE_SIZE', /has 10 values; this bitmar-r1 model takes 768/));
    const nan = new Float32Array(768);
    nan[3] = NaN;
    await assert.rejects(worker.describe({ images: [], features: [nan], prompt: 'a' }, () => undefined), isCode('BITMAR_ERR_IMAGE_SIZE', /NaN at 3/));
    // the node's memory does not feed R1: setMemory is checked, then ignored
    worker.setMemory(new Float32Array(64), 2);
    assert.throws(() => worker.setMemory(new Float32Array(10), 2), isCode('BITMAR_ERR_MEMORY_VECTOR'));
    const r = await worker.describe({ images: [], features: [vision], prompt: fx.prompt_text, maxTokens: fx.gen_new_tokens }, () => undefined);
    assert.deepEqual(r.tokenIds, ints('gen/tokens'));
    const s = await InferenceWorker.start({ modelPath: STREAM, kernels: 'typescript' });
    try {
      assert.ok(s.isStream());
      await assert.rejects(s.describe({ images: [], features: [vision], prompt: '' }, () => undefined), isCode('BITMAR_ERR_MODEL_ARCH', /feature vectors are bitmar-r1 input/));
    } finally {
      await s.close();
    }
  });

  describe('image frames through the DINOv2 ONNX extractor', () => {
    before(function () {
      if (ortMissing !== null) this.skip();
    });
    if (ortMissing !== null) it(`skipped: ${ortMissing}`, function () { this.skip(); });

    it('loads the extractor in the worker; images caption as their extracted feature vectors do', async () => {
      const w = await InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript', visionOnnx: ONNX });
      const x = await loadVisionOnnx(ONNX, { width: 768 });
      try {
        const info = w.info as R1WorkerInfo;
        assert.equal(info.vision?.output, 'pooler_output');
        const imgs = [standInImage(448, 448), standInImage(672, 224)];
        const feats = await x.extract(imgs);
        const fromImages = await w.describe({ images: imgs.map((i) => ({ ...i, data: i.data.slice() })), prompt: 'a', maxTokens: 6 }, () => undefined);
        const fromFeatures = await w.describe({ images: [], features: feats, prompt: 'a', maxTokens: 6 }, () => undefined);
        assert.deepEqual(fromImages.tokenIds, fromFeatures.tokenIds);
        assert.equal(fromImages.episodes.length, 2);
        fromImages.episodes.forEach((e, i) => assert.ok(Math.max(...e.map((v, j) => Math.abs(v - fromFeatures.episodes[i]![j]!))) < 1e-6));
        const e = await w.encodeImage(standInImage(448, 448));
        const ef = await w.encodeFeatures(feats[0]!);
        assert.ok(Math.max(...e.map((v, j) => Math.abs(v - ef[j]!))) < 1e-6);
      } finally {
        await x.close();
        await w.close();
      }
    });

    it('extraction runs in the worker: the main thread\'s timers keep running', async () => {
      const w = await InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript', visionOnnx: ONNX });
      try {
        const imgs = Array.from({ length: 24 }, () => standInImage(448, 448));
        let last = performance.now();
        let maxGap = 0;
        let ticks = 0;
        const timer = setInterval(() => {
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
          ticks++;
        }, 2);
        const t0 = performance.now();
        await w.describe({ images: imgs, prompt: 'a', maxTokens: 1 }, () => undefined);
        const elapsed = performance.now() - t0;
        clearInterval(timer);
        assert.ok(ticks >= 3 && maxGap < Math.max(50, elapsed / 2), `main thread: ${ticks} ticks, longest gap ${maxGap.toFixed(1)} ms in ${elapsed.toFixed(1)} ms`);
      } finally {
        await w.close();
      }
    });

    it('a model that is not a DINOv2 extractor fails the start with its reason', async () => {
      await assert.rejects(
        InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript', visionOnnx: join(FIXTURE_DIR, 'dinov2-bad.onnx') }),
        isCode('BITMAR_ERR_MODEL_MISMATCH', /needs an output "pooler_output"/),
      );
      await assert.rejects(InferenceWorker.start({ modelPath: GGUF, kernels: 'typescript', visionOnnx: join(FIXTURE_DIR, 'nope.onnx') }), isCode('BITMAR_ERR_MODEL_NOT_FOUND', /nope\.onnx does not exist/));
    });
  });
});
