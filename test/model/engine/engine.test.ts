import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BitmarError } from '../../../src/errors.js';
import { gv } from '../../../src/model/gguf/writer.js';
import { DEFAULT_MODEL_PATH, makeRandomStreamModel } from '../../../tools/make-random-model.js';
import { expectLoadError, referenceDecoderLogits, relDiff, rewrite, testImage, tinyEngine, tinyModelBytes } from './helpers.js';

describe('bitmar-stream engine', function () {
  this.timeout(120_000);
  const base = tinyModelBytes();

  describe('load validates every tensor against the hyperparameters', () => {
    it('loads the tiny model', () => {
      const e = tinyEngine();
      assert.equal(e.config.dim, 32);
      assert.equal(e.config.patches, 4);
      assert.equal(e.weights.decoder.length, 2);
      assert.equal(e.tokenizer.kind, 'word');
    });

    it('missing tensor', () => {
      const b = rewrite(base, (_, t) => t.splice(t.findIndex((x) => x.name === 'd.blk.1.xattn_k.scale'), 1));
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "d\.blk\.1\.xattn_k\.scale" is missing \(expected F32 \[1\]\)/);
    });

    it('extra tensor', () => {
      const b = rewrite(base, (_, t) => t.push({ name: 'd.blk.2.cond.scale', type: 'F32', dims: [1], data: Float32Array.of(1) }));
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /unexpected tensor "d\.blk\.2\.cond\.scale"/);
      const c = rewrite(base, (_, t) => t.push({ name: 'd.lm_head.bias', type: 'F32', dims: [40], data: new Float32Array(40) }));
      expectLoadError(c, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "d\.lm_head\.bias" must not exist/);
    });

    it('wrong shape and wrong type', () => {
      const b = rewrite(base, (_, t) => {
        const i = t.findIndex((x) => x.name === 'v.pos_emb');
        t[i] = { ...t[i]!, dims: [32, 4], data: new Float32Array(128) };
      });
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.pos_emb": expected F32 or F16 \[32, 5\], found F32 \[32, 4\]/);
      const c = rewrite(base, (_, t) => {
        const i = t.findIndex((x) => x.name === 't.blk.0.ffn_up.weight');
        const old = t[i]!;
        t[i] = { ...old, type: 'I32', data: new Int32Array(old.data.length) };
      });
      expectLoadError(c, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "t\.blk\.0\.ffn_up\.weight": expected I8 \[8, 64\], found I32 \[8, 64\]/);
    });

    it('hyperparameters that disagree with the tensors', () => {
      const b = rewrite(base, (m) => {
        const i = m.findIndex(([k]) => k === 'bitmar-stream.feed_forward_length');
        m[i] = ['bitmar-stream.feed_forward_length', gv.u32(48)];
      });
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.blk\.0\.ffn_up\.weight": expected I8 \[8, 48\], found I8 \[8, 64\]/);
      const c = rewrite(base, (m) => m.splice(m.findIndex(([k]) => k === 'bitmar-stream.head_count'), 1));
      expectLoadError(c, 'BITMAR_ERR_MODEL_MISMATCH', /metadata key "bitmar-stream\.head_count" is missing/);
    });

    it('another architecture and a corrupt ternary code', () => {
      const b = rewrite(base, (m) => (m[0] = ['general.architecture', gv.str('llama')]));
      expectLoadError(b, 'BITMAR_ERR_MODEL_ARCH', /general\.architecture is "llama"; this engine runs "bitmar-stream" only/);
      const c = rewrite(base, (_, t) => {
        const w = t.find((x) => x.name === 'mem.proj.weight')!;
        (w.data as Uint8Array)[5] = 0xff; // code 3
      });
      expectLoadError(c, 'BITMAR_ERR_MODEL_FORMAT', /tensor "mem\.proj\.weight": .*code 3/);
    });

    it('a tokenizer that does not fit', () => {
      const b = rewrite(base, (m) => {
        const i = m.findIndex(([k]) => k === 'tokenizer.ggml.eos_token_id');
        m[i] = ['tokenizer.ggml.eos_token_id', gv.u32(999)];
      });
      expectLoadError(b, 'BITMAR_ERR_TOKENIZER', /tokenizer\.ggml\.eos_token_id = 999 is outside the vocabulary \(size 40\)/);
    });
  });

  describe('per-token quantisation makes rows independent', () => {
    it('a batch of images encodes exactly as each image alone', () => {
      const e = tinyEngine();
      const imgs = [testImage(40, 30, 1), testImage(16, 16, 2), testImage(64, 20, 3)];
      const alone = imgs.map((i) => tinyEngine().encodeImage(i));
      const batch = e.prepare(imgs, 'describe the scene').images;
      batch.forEach((b, i) => {
        assert.deepEqual(b.e, alone[i]!.e);
        assert.deepEqual(b.V, alone[i]!.V);
      });
    });

    it('feeding a sequence as one batch equals feeding it token by token (bit for bit)', () => {
      const e = tinyEngine();
      const V = e.config.vocabSize;
      const cond = e.prepare([testImage(40, 30, 4)], 'what color is the square');
      const tokens = [1, 5, 9, 30, 22, 4];
      const s = e.session('caption');
      e.condition(s, cond);
      s.resetCache();
      const batch = e.feed(s, tokens, 0, tokens.length, true).slice(0, tokens.length * V);
      s.resetCache();
      tokens.forEach((_, t) => {
        const one = e.feed(s, tokens, t, 1, false).slice(0, V);
        assert.deepEqual(one, batch.subarray(t * V, (t + 1) * V), `row ${t}`);
      });
      // and the batch agrees with the cache-free reference
      assert.ok(relDiff(batch, referenceDecoderLogits(e, cond, tokens)) <= 1e-6);
    });

    it('a batch longer than the cache falls back to single steps with the same result', () => {
      const e = tinyEngine();
      const V = e.config.vocabSize;
      const cond = e.prepare([testImage(40, 30, 5)], '');
      const tokens = Array.from({ length: 13 }, (_, i) => 1 + ((i * 7) % 35));
      const s = e.session('caption', 2, 3);
      e.condition(s, cond);
      s.resetCache();
      const batch = e.feed(s, tokens, 0, tokens.length, true).slice(0, tokens.length * V);
      s.resetCache();
      tokens.forEach((_, t) => assert.deepEqual(e.feed(s, tokens, t, 1, false).slice(0, V), batch.subarray(t * V, (t + 1) * V)));
    });
  });

  describe('generation', () => {
    it('greedy is deterministic and stops at the cap', () => {
      const img = testImage(80, 60, 9);
      const a = tinyEngine().describe({ images: [img], prompt: 'describe the scene', maxTokens: 10 });
      const b = tinyEngine().describe({ images: [img], prompt: 'describe the scene', maxTokens: 10 });
      assert.deepEqual(a.tokenIds, b.tokenIds);
      assert.equal(a.text, b.text);
      assert.ok(a.tokenIds.length <= 10);
      assert.equal(a.episodes.length, 1);
      assert.ok(Math.abs(Math.hypot(...a.episodes[0]!) - 1) < 1e-5);
      assert.ok(!a.tokenIds.includes(2), '<eos> is never part of the caption');
    });

    it('greedy picks the argmax of the reference logits at every step', () => {
      const e = tinyEngine();
      const cond = e.prepare([testImage(50, 50, 10)], 'how many shapes are there');
      const toks = [...e.generate(cond, { maxTokens: 7 })].map((t) => t.tokenId);
      const seq = [e.tokenizer.bosId, ...toks];
      const ref = referenceDecoderLogits(e, cond, seq);
      const V = e.config.vocabSize;
      toks.forEach((id, i) => {
        const row = ref.subarray(i * V, (i + 1) * V);
        assert.equal(id, row.indexOf(Math.max(...row)), `token ${i}`);
      });
    });

    it('seeded sampling is reproducible and depends on the seed', () => {
      const img = testImage(80, 60, 11);
      const run = (seed: number): number[] => tinyEngine().describe({ images: [img], prompt: '', maxTokens: 12, temperature: 1.5, topP: 0.95, seed }).tokenIds;
      assert.deepEqual(run(5), run(5));
      assert.notDeepEqual([run(1), run(2), run(3)].map(String), Array(3).fill(String(run(1))));
    });

    it('rejects bad options with the allowed range', () => {
      const e = tinyEngine();
      const img = testImage(20, 20, 1);
      assert.throws(() => e.describe({ images: [img], prompt: '', temperature: -1 }), /temperature -1 is invalid: must be a finite number ≥ 0/);
      assert.throws(() => e.describe({ images: [img], prompt: '', topP: 0 }), /topP 0 is invalid: must be in \(0, 1\]/);
      assert.throws(() => e.describe({ images: [img], prompt: '', window: 0 }), /window 0 is invalid/);
      assert.throws(() => e.describe({ images: [img], prompt: '', maxTokens: 0 }), /maxTokens 0 is invalid/);
      assert.throws(() => e.describe({ images: [], prompt: '' }), (x: unknown) => x instanceof BitmarError && x.code === 'BITMAR_ERR_IMAGE_SIZE');
      assert.throws(() => e.describe({ images: [img], prompt: 'a '.repeat(9) }), (x: unknown) => x instanceof BitmarError && x.code === 'BITMAR_ERR_PROMPT_INVALID' && /9 tokens; this model reads at most 8/.test(x.message));
    });

    it('cancellation stops between tokens with the partial caption', () => {
      const e = tinyEngine();
      let n = 0;
      const out = e.describe({ images: [testImage(30, 30, 3)], prompt: '', maxTokens: 12 }, () => n++, () => n >= 2);
      assert.equal(out.cancelled, true);
      assert.equal(out.tokenIds.length, 2);
      const full = tinyEngine().describe({ images: [testImage(30, 30, 3)], prompt: '', maxTokens: 12 });
      assert.deepEqual(out.tokenIds, full.tokenIds.slice(0, 2));
    });

    it('narration keeps one cache across frames: <bos> s1 <eos> s2 …', () => {
      const e = tinyEngine();
      const frames = [testImage(30, 30, 1), testImage(30, 30, 2), testImage(30, 30, 3)];
      const sentences = frames.map((f) => e.describe({ images: [f], prompt: '', mode: 'narration', maxTokens: 5 }));
      const sess = e.session('narration');
      // Fed: <bos>, every token of every sentence, an <eos> before sentences 2..n — except the last
      // sentence's final token when it stopped at the cap (fed when the next frame arrives).
      const tokens = sentences.reduce((a, s) => a + s.tokenIds.length, 0);
      const lastCapped = sentences[2]!.tokenIds.length === 5 ? 1 : 0;
      assert.equal(sess.fed, 1 + tokens + 2 - lastCapped);
      // A teacher-forced replay of <bos> s1 <eos> s2 <eos> s3, each sentence (and the separator before
      // it) under its own frame, predicts the same greedy tokens.
      const r = tinyEngine();
      const rs = r.session('narration');
      rs.resetCache();
      const V = r.config.vocabSize;
      sentences.forEach((s, i) => {
        r.condition(rs, r.prepare([frames[i]!], ''));
        const inputs = [i === 0 ? r.tokenizer.bosId : r.tokenizer.eosId, ...s.tokenIds];
        inputs.forEach((id, j) => {
          const logits = r.feed(rs, [id], 0, 1, false).subarray(0, V);
          const want = j < s.tokenIds.length ? s.tokenIds[j] : s.tokenIds.length < 5 ? r.tokenizer.eosId : undefined;
          if (want !== undefined) assert.equal(logits.indexOf(Math.max(...logits)), want, `sentence ${i} token ${j}`);
        });
      });
      // caption mode is unaffected by the narration state
      const cap1 = e.describe({ images: [frames[0]!], prompt: '', maxTokens: 5 });
      const cap2 = tinyEngine().describe({ images: [frames[0]!], prompt: '', maxTokens: 5 });
      assert.deepEqual(cap1.tokenIds, cap2.tokenIds);
    });

    it('memory slots change the context, and no slot means r = 0', () => {
      const e = tinyEngine();
      const img = e.encodeImage(testImage(40, 40, 1));
      const none = e.memoryRead(img.e);
      assert.deepEqual(none, e.weights.memProj.bias, 'BL(0) = bias');
      e.setMemory(img.e, 1);
      const one = e.memoryRead(img.e);
      assert.notDeepEqual(one, none);
      assert.throws(() => e.setMemory(new Float32Array(10), 1), /memory slots hold 10 floats; 1 slots of width 32 need 32/);
      assert.throws(() => e.setMemory(Float32Array.of(...new Array(31).fill(0), NaN), 1), /memory slot 0 holds NaN at column 31/);
    });
  });

  it('models/bitmar-stream-random.gguf is what tools/make-random-model.ts generates', () => {
    const committed = readFileSync(DEFAULT_MODEL_PATH);
    assert.ok(Buffer.from(makeRandomStreamModel()).equals(committed), 'regenerate: node --import tsx tools/make-random-model.ts');
  });
});
