/**
 * bitmar-r1 parity with the PyTorch reference (tools/reference/r1_reference.py): a random tiny model
 * converted from the reference's pytorch_model.bin by `bitmar-node convert`, fed the reference's
 * recorded inputs. Per layer (teacher-forced) ≤ 1e-5 relative; end to end identical argmax, top-5
 * overlap ≥ 0.95 and identical greedy tokens; memory side effects equal after the same number of
 * forwards (spec §12). Runs with the TypeScript kernels and, when built, the native ones.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import type { Kernels } from '../../../src/model/kernels.js';
import { R1Engine, type R1GenerationSummary } from '../../../src/model/r1/engine.js';
import { decodeBatch, encodeVisionBatch, episodeBatch, fuseBatch, memoryRead, transformerBlock } from '../../../src/model/r1/forward.js';
import { BACKENDS, FIXTURE_DIR, arr, expectClose, expectSameRanking, f32, fx, ints } from './fixture.js';

function drain<T, R>(g: Generator<T, R, undefined>): { items: T[]; result: R } {
  const items: T[] = [];
  for (;;) {
    const n = g.next();
    if (n.done) return { items, result: n.value };
    items.push(n.value);
  }
}

for (const [backend, kernels] of BACKENDS) {
  describe(`bitmar-r1 parity with the PyTorch reference (${backend} kernels)`, function () {
    this.timeout(120_000);
    let engine: R1Engine;
    const report: string[] = [];

    before(function () {
      const k = kernels();
      if (typeof k === 'string') {
        console.log(`      skipped: ${k}`);
        this.skip();
      }
      engine = R1Engine.fromReader(GgufReader.open(join(FIXTURE_DIR, fx.gguf)), k as Kernels);
    });
    beforeEach(() => engine?.resetMemory());
    after(() => {
      if (report.length > 0) console.log(`      ${backend}: ${report.join('; ')}`);
    });

    it('fixture schema; hyperparameters inferred by the converter', () => {
      assert.equal(fx.schema, 'bitmar-r1-fixture-v1');
      const c = engine.config;
      assert.equal(c.vocabSize, fx.config.vocab_size);
      assert.equal(c.dim, fx.config.text_encoder_dim);
      assert.equal(c.encoderLayers, fx.config.text_encoder_layers);
      assert.equal(c.decoderLayers, fx.config.text_decoder_layers);
      assert.equal(c.memorySlots, fx.config.memory_size);
      assert.equal(c.contextLength, fx.config.max_seq_len);
      assert.equal(c.visionInput, 768);
      assert.equal(c.visionHidden, fx.config.vision_hidden_size);
      assert.equal(engine.tokenizer.eosId, fx.eos);
    });

    it('tokenizer: the fixture texts give the reference ids', () => {
      assert.deepEqual(engine.tokenize(fx.teacher_text), ints('input/teacher_ids'));
      assert.deepEqual(engine.tokenize(fx.prompt_text), ints('input/prompt_ids'));
    });

    it('every weight scale s_w equals the reference (fp64 mean, spec §12.2)', () => {
      assert.equal(engine.weights.bitLinears.size, Object.keys(fx.weight_scales).length);
      for (const [name, s] of Object.entries(fx.weight_scales)) assert.equal(engine.weights.bitLinears.get(name)?.w.scale, s, name);
    });

    it('every BitLinear, teacher-forced (≤ 1e-5 relative)', () => {
      assert.equal(fx.bitlinears.length, 49, '73 run in the paper model; 49 at these depths (fusion q/k included)');
      let worst = 0;
      for (const name of fx.bitlinears) {
        const p = engine.weights.bitLinears.get(name);
        assert.ok(p, `no BitLinear ${name} in the engine`);
        const x = arr(`bl/${name}/x`);
        const m = x.shape[0]!;
        const y = new Float32Array(m * p.w.rows);
        engine.kernels.bitlinearU8(p.w, x.data, m, y, p.bias);
        worst = Math.max(worst, expectClose(y, f32(`bl/${name}/y`), `BitLinear ${name}`));
      }
      report.push(`BitLinear worst ${worst.toExponential(1)}`);
    });

    it('every transformer block, teacher-forced (≤ 1e-5 relative)', () => {
      assert.equal(fx.blocks.length, 4);
      let worst = 0;
      const c = engine.config;
      for (const name of fx.blocks) {
        const x = arr(`blk/${name}/x`);
        const T = x.shape[0]!;
        const h = x.data.slice();
        const dec = name.startsWith('text_decoder');
        const list = dec ? engine.weights.decoder : engine.weights.encoder;
        const blk = list.find((b) => b.name === name)!;
        transformerBlock(engine, blk, h, 1, T, null, dec, dec ? c.decoderHeads : c.encoderHeads, dec ? c.decoderFfn : c.encoderFfn);
        worst = Math.max(worst, expectClose(h, f32(`blk/${name}/y`), `block ${name}`));
      }
      report.push(`block worst ${worst.toExponential(1)}`);
    });

    it('vision MLP, fusion, episode, memory read and decoder, each teacher-forced (≤ 1e-5 relative)', () => {
      const d = engine.config.dim;
      const T = ints('input/teacher_ids').length;
      const vis = new Float32Array(d);
      encodeVisionBatch(engine, f32('input/vision'), Uint8Array.of(1), 1, vis);
      expectClose(vis, f32('a/vis'), 'vision encoder');
      const fused = new Float32Array(T * d);
      fuseBatch(engine, f32('a/Z'), f32('a/vis'), 1, T, fused);
      expectClose(fused, f32('a/fused'), 'fusion');
      const e = new Float32Array(d);
      episodeBatch(engine, f32('a/Z'), f32('a/vis'), Uint8Array.of(1), 1, T, e);
      expectClose(e, f32('a/episode'), 'episode');
      const r = new Float32Array(d);
      const w = new Float32Array(engine.config.memorySlots);
      memoryRead(engine, f32('a/episode'), 1, r, w, false);
      expectClose(w, f32('a/w'), 'memory read weights');
      expectClose(r, f32('a/r'), 'memory read r');
      const seen: Record<string, Float32Array> = {};
      const logits = decodeBatch(engine, f32('a/fused'), f32('a/r'), null, 1, T, 'all', (n, data) => (seen[n] = data.slice()));
      expectClose(seen.c!, f32('a/c'), 'memory_to_decoder');
      expectClose(seen.dec_in!, f32('a/dec_in'), 'decoder_input_proj');
      expectClose(logits, f32('a/logits'), 'decoder + lm_head');
    });

    it('end to end with an image (reference memory): same argmax everywhere, top-5 ≥ 0.95, same memory updates', () => {
      const V = engine.config.vocabSize;
      const out = engine.forward({ inputIds: ints('input/teacher_ids'), visionFeatures: f32('input/vision') }, { memory: 'reference' });
      const { rel, overlap } = expectSameRanking(out.logits, f32('a/logits'), V, 'logits');
      report.push(`e2e logits rel ${rel.toExponential(1)}, top-5 ${overlap.toFixed(3)}`);
      expectClose(out.Z, f32('a/Z'), 'Z', 1e-3);
      const m = engine.memoryState();
      expectClose(m.usage, f32('a/memory_usage'), 'usage after one read', 1e-5);
      expectClose(m.importance, f32('a/memory_importance'), 'importance after one read', 1e-5);
    });

    it('"last" logits equal row T−1 of "all" exactly (lm_head range over all positions)', () => {
      const input = { inputIds: ints('input/teacher_ids'), visionFeatures: f32('input/vision') };
      const all = engine.forward(input, { memory: 'frozen' });
      const last = engine.forward(input, { memory: 'frozen', logits: 'last' });
      const V = engine.config.vocabSize;
      assert.deepEqual(last.logits, all.logits.subarray(all.logits.length - V));
    });

    it('text-only (vis := 0), zero vector without the mask, and fresh memory statistics', () => {
      const V = engine.config.vocabSize;
      const ids = ints('input/teacher_ids');
      const b = engine.forward({ inputIds: ids, hasVision: false }, { memory: 'frozen' });
      expectSameRanking(b.logits, f32('b/logits'), V, 'text only');
      const c = engine.forward({ inputIds: ids, visionFeatures: new Float32Array(768) }, { memory: 'frozen' });
      expectSameRanking(c.logits, f32('c/logits'), V, 'zero vision, no mask');
      engine.setMemoryState({ updateCount: 0 });
      const e = engine.forward({ inputIds: ids, visionFeatures: f32('input/vision') }, { memory: 'frozen' });
      expectSameRanking(e.logits, f32('e/logits'), V, 'update_count 0');
      expectClose(e.r, f32('e/r'), 'r without episode normalisation', 1e-3);
    });

    it('a padded batch with a text-only row: one per-tensor range over the batch, memory updated with Σ_batch w', () => {
      const V = engine.config.vocabSize;
      const ids = arr('d/input_ids');
      const [B, T] = ids.shape as [number, number];
      const mask = ints('d/attention_mask');
      const vis = f32('d/vision');
      const rows = Array.from({ length: B }, (_, b) => ({
        inputIds: Array.from(ids.data.subarray(b * T, (b + 1) * T)),
        attentionMask: mask.slice(b * T, (b + 1) * T),
        visionFeatures: vis.subarray(b * 768, (b + 1) * 768),
        hasVision: b === 0,
      }));
      const out = engine.forwardRows(rows, { memory: 'reference' });
      expectSameRanking(out.logits, f32('d/logits'), V, 'batch');
      const m = engine.memoryState();
      expectClose(m.usage, f32('d/memory_usage'), 'usage after a batch read', 1e-5);
      expectClose(m.importance, f32('d/memory_importance'), 'importance after a batch read', 1e-5);
    });

    it('greedy generation, reference memory: same tokens, same forwards (N+1), same usage/importance', () => {
      const V = engine.config.vocabSize;
      const want = ints('gen/tokens');
      const g = drain(engine.generate({ promptIds: ints('input/prompt_ids'), visionFeatures: f32('input/vision'), maxNewTokens: fx.gen_new_tokens, memory: 'reference' }));
      const summary: R1GenerationSummary = g.result;
      assert.deepEqual(summary.tokenIds, want);
      assert.equal(summary.forwards, ints('gen/forwards')[0]);
      assert.equal(summary.memoryUpdates, summary.forwards);
      const m = engine.memoryState();
      const ue = expectClose(m.usage, f32('gen/memory_usage'), 'usage after generate', 1e-5);
      const ie = expectClose(m.importance, f32('gen/memory_importance'), 'importance after generate', 1e-5);
      report.push(`memory after ${summary.forwards} forwards: usage ${ue.toExponential(1)}, importance ${ie.toExponential(1)}`);
      assert.equal(summary.text, engine.tokenizer.decode(want));
      // the logits each token was drawn from, for the record
      const first = engine.forward({ inputIds: ints('input/prompt_ids'), visionFeatures: f32('input/vision') }, { memory: 'frozen', logits: 'last' });
      assert.ok(first.logits.length === V);
    });

    it('greedy generation, frozen memory: same tokens, memory untouched; zero-vision prompt too', () => {
      const before = engine.memoryState();
      const g = drain(engine.generate({ promptIds: ints('input/prompt_ids'), visionFeatures: f32('input/vision'), maxNewTokens: fx.gen_new_tokens, memory: 'frozen' }));
      assert.deepEqual(g.result.tokenIds, ints('genf/tokens'));
      assert.equal(g.result.memoryUpdates, 0);
      assert.deepEqual(engine.memoryState(), before);
      const z = drain(engine.generate({ prompt: fx.prompt_text, visionFeatures: new Float32Array(768), maxNewTokens: 8, memory: 'frozen' }));
      assert.deepEqual(z.result.tokenIds, ints('genz/tokens'));
    });
  });
}
