/**
 * The bitmar-r1 engine API on the fixture model: loadModel dispatch, the async generation stream and
 * its cancellation, seeded sampling with top-p, memory state save/restore, input validation, and the
 * APPROXIMATE streaming mode (bounded cache, positions clamped, first token = exact mode's).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isBitmarError } from '../../../src/errors.js';
import { loadModel, loadR1Model, type R1GeneratedToken, type R1Model } from '../../../src/model/index.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import { R1Engine } from '../../../src/model/r1/engine.js';
import { erf } from '../../../src/model/r1/ops.js';
import { FIXTURE_DIR, argmax, f32, fx, ints } from './fixture.js';

const GGUF = join(FIXTURE_DIR, fx.gguf);
const engine = (): R1Engine => R1Engine.fromReader(GgufReader.open(GGUF), tsKernels);

describe('bitmar-r1 engine API', function () {
  this.timeout(60_000);

  it('loadModel dispatches on general.architecture; the stream path is unchanged', () => {
    const m = loadModel(GGUF, { kernels: 'typescript' });
    assert.equal(m.arch, 'bitmar-r1');
    assert.equal(m.info.kernels, 'typescript');
    assert.equal((m as R1Model).info.hparams.memorySlots, 8);
    const s = loadModel(join(FIXTURE_DIR, '..', 'stream', 'random-tiny.gguf'), { kernels: 'typescript' });
    assert.equal(s.arch, 'bitmar-stream');
  });

  it('generate(): an async iterable with per-token timing and a result; the same tokens as the reference', async () => {
    const m = loadR1Model(GGUF, { kernels: 'typescript' });
    m.memoryMode = 'frozen';
    const stream = m.generate({ prompt: fx.prompt_text, visionFeatures: f32('input/vision'), maxNewTokens: fx.gen_new_tokens });
    const tokens: R1GeneratedToken[] = [];
    for await (const t of stream) tokens.push(t);
    const r = await stream.result;
    assert.deepEqual(tokens.map((t) => t.tokenId), ints('genf/tokens'));
    assert.equal(r.cancelled, false);
    assert.equal(r.forwards, fx.gen_new_tokens + 1);
    assert.equal(r.text, tokens.at(-1)!.text);
    assert.equal(tokens.map((t) => t.piece).join(''), r.text);
    for (const t of tokens) assert.ok(t.forwardMs >= 0 && t.atMs > 0);
  });

  it('an AbortSignal ends the iteration between tokens', async () => {
    const m = loadR1Model(GGUF, { kernels: 'typescript' });
    const ac = new AbortController();
    const stream = m.generate({ promptIds: [64], maxNewTokens: 40, stopAtEos: false }, ac.signal);
    let n = 0;
    for await (const _ of stream) if (++n === 3) ac.abort();
    const r = await stream.result;
    assert.equal(n, 3);
    assert.equal(r.cancelled, true);
    assert.equal(r.tokenIds.length, 3);
  });

  it('seeded sampling is reproducible, and every top-p token is in the nucleus of its logits', () => {
    const e = engine();
    e.memoryMode = 'frozen';
    const opts = { promptIds: ints('input/prompt_ids'), maxNewTokens: 10, temperature: 0.8, topP: 0.5, seed: 7, stopAtEos: false };
    const a = [...e.generate(opts)].map((t) => t.tokenId);
    const b = [...e.generate(opts)].map((t) => t.tokenId);
    assert.deepEqual(a, b);
    const c = [...e.generate({ ...opts, seed: 8 })].map((t) => t.tokenId);
    assert.notDeepEqual(a, c);
    const ids = [...opts.promptIds];
    for (const tok of a) {
      const lg = e.forward({ inputIds: ids }, { logits: 'last' }).logits;
      const p = Array.from(lg, (v) => v / 0.8);
      const max = Math.max(...p);
      const ex = p.map((v) => Math.exp(v - max));
      const sum = ex.reduce((x, y) => x + y, 0);
      const order = ex.map((v, i) => [v / sum, i] as const).sort((x, y) => y[0] - x[0]);
      const nucleus = new Set<number>();
      let cum = 0;
      for (const [q, i] of order) {
        if (nucleus.size > 0 && cum > 0.5) break; // keep tokens while the mass before them ≤ p (spec §12.5)
        nucleus.add(i);
        cum += q;
      }
      assert.ok(nucleus.has(tok), `token ${tok} outside the top-p nucleus ${[...nucleus]}`);
      ids.push(tok);
    }
  });

  it('memory: reference mode drifts, frozen does not; snapshot/restore and reset', () => {
    const e = engine();
    const start = e.memoryState();
    const input = { inputIds: ints('input/teacher_ids'), visionFeatures: f32('input/vision') };
    e.forward(input, { memory: 'frozen' });
    assert.deepEqual(e.memoryState(), start);
    const l1 = e.forward(input, { memory: 'reference' }).logits;
    const saved = e.memoryState();
    assert.notDeepEqual(saved.importance, start.importance);
    e.forward(input, { memory: 'reference' });
    e.setMemoryState(saved);
    assert.deepEqual(e.memoryState(), saved);
    e.resetMemory();
    assert.deepEqual(e.memoryState(), start);
    assert.deepEqual(e.forward(input, { memory: 'frozen' }).logits, l1, 'the first read saw the file state');
    assert.throws(() => e.setMemoryState({ usage: new Float32Array(3) }), (x: unknown) => isBitmarError(x, 'BITMAR_ERR_MEMORY_VECTOR'));
  });

  it('rejects bad inputs with messages that say what is wrong', () => {
    const e = engine();
    assert.throws(() => e.forward({ inputIds: [] }), /length 0 must be 1\.\.64/);
    assert.throws(() => e.forward({ inputIds: new Array<number>(65).fill(1) }), /1\.\.64/);
    assert.throws(() => e.forward({ inputIds: [1, 512] }), /token id 512 .*outside the vocabulary/);
    assert.throws(() => e.forward({ inputIds: [1, 2, 3], attentionMask: [1, 0, 1] }), /right padding/);
    assert.throws(() => e.forward({ inputIds: [1, 2], visionFeatures: new Float32Array(10) }), /takes 768/);
    assert.throws(() => [...e.generate({ prompt: '' })], (x: unknown) => isBitmarError(x, 'BITMAR_ERR_PROMPT_INVALID'));
    assert.throws(() => [...e.generate({ promptIds: [1], temperature: -1 })], (x: unknown) => isBitmarError(x, 'BITMAR_ERR_CONFIG_INVALID'));
    assert.throws(() => [...e.generate({ promptIds: [1], mode: 'streaming', streaming: { sinks: 4, window: 61 } })], /exceeds the model's 64 learned positions/);
  });

  it('exact mode stops at the context length (the position table) and still counts the trailing forward', () => {
    const e = engine();
    e.memoryMode = 'frozen';
    const g = e.generate({ promptIds: new Array<number>(60).fill(64), maxNewTokens: 100, stopAtEos: false });
    let n = 0;
    for (;;) {
      const r = g.next();
      if (r.done) {
        assert.equal(r.value.tokenIds.length, 4);
        assert.equal(r.value.forwards, 5);
        break;
      }
      n++;
    }
    assert.equal(n, 4);
  });

  it('streaming mode (APPROXIMATE): exact first token, bounded caches, runs past the position table', () => {
    const e = engine();
    e.memoryMode = 'frozen';
    const exact = [...e.generate({ promptIds: ints('input/prompt_ids'), visionFeatures: f32('input/vision'), maxNewTokens: 1 })];
    const g = e.generate({
      promptIds: ints('input/prompt_ids'),
      visionFeatures: f32('input/vision'),
      maxNewTokens: 150,
      stopAtEos: false,
      mode: 'streaming',
      streaming: { sinks: 2, window: 20, encoderWindow: 8 },
    });
    const toks = [...g];
    assert.equal(toks.length, 150, 'beyond the 64 learned positions (clamped)');
    assert.equal(toks[0]!.tokenId, exact[0]!.tokenId);
    for (const t of toks) assert.ok(t.tokenId >= 0 && t.tokenId < 512);
  });

  it('erf matches the C library to double precision', () => {
    // values of erf from glibc (Python math.erf)
    const ref: [number, number][] = [
      [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.7, 0.9837904585907745],
      [2.4, 0.999311486103355], [2.6, 0.9997639655834707], [3.5, 0.9999992569016276], [5, 0.9999999999984626], [-2.2, -0.9981371537020182],
    ];
    for (const [x, want] of ref) assert.ok(Math.abs(erf(x) - want) <= 4e-16, `erf(${x}) = ${erf(x)}, want ${want}`);
    assert.equal(argmax(Float32Array.of(1, 3, 2)), 1);
  });
});
