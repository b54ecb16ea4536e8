/**
 * Parity with the numpy reference (tools/reference/stream_reference.py fixtures): golden inputs and
 * outputs of a random tiny GGUF, recorded per BitLinear, per block and end to end. Run for both
 * fixtures (random-tiny: the linear patch stem; random-tiny-conv: the same model with the
 * convolutional stem, plus its stem intermediates), each with the TypeScript kernels and, when the
 * addon is built, the native ones.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamEngine, type Conditioning } from '../../../src/model/engine/engine.js';
import { decoderBlock, encoderBlock, fusionBlock, visionStem, type Trace } from '../../../src/model/engine/forward.js';
import type { BitLinearWeights } from '../../../src/model/engine/weights.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import { loadKernels, type Kernels } from '../../../src/model/kernels.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import { preprocessFrame, preprocessImage } from '../../../src/model/preprocess.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'stream');

interface Entry {
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: 'f32' | 'i32' | 'u8';
}
interface Fixture {
  readonly schema: string;
  readonly gguf: string;
  readonly bin: string;
  readonly prompt: string;
  readonly bitlinears: readonly string[];
  readonly blocks: readonly string[];
  readonly index: Readonly<Record<string, Entry>>;
}

/** A fixture's JSON and its arrays. */
interface LoadedFixture {
  readonly fx: Fixture;
  arr(key: string): { data: Float32Array; shape: readonly number[] };
  f32(key: string): Float32Array;
  ints(key: string): number[];
  has(key: string): boolean;
}

function loadFixture(json: string): LoadedFixture {
  const fx = JSON.parse(readFileSync(join(DIR, json), 'utf8')) as Fixture;
  const bin = readFileSync(join(DIR, fx.bin));
  const arr = (key: string): { data: Float32Array; shape: readonly number[] } => {
    const e = fx.index[key];
    if (e === undefined) throw new Error(`fixture ${json} has no ${key}`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const bytes = bin.subarray(e.offset, e.offset + n * (e.dtype === 'u8' ? 1 : 4));
    const copy = new Uint8Array(bytes); // aligned copy
    if (e.dtype === 'f32') return { data: new Float32Array(copy.buffer), shape: e.shape };
    if (e.dtype === 'i32') return { data: Float32Array.from(new Int32Array(copy.buffer)), shape: e.shape };
    return { data: Float32Array.from(copy), shape: e.shape };
  };
  return { fx, arr, f32: (key) => arr(key).data, ints: (key) => Array.from(arr(key).data), has: (key) => fx.index[key] !== undefined };
}

/** max |a − b| / max |b| */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? m : m / s;
}

function expectClose(got: Float32Array, want: Float32Array, what: string, tol = 1e-5): void {
  const e = relErr(got, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}

function rows(V: number, data: Float32Array, i: number): Float32Array {
  return data.subarray(i * V, (i + 1) * V);
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

function top5(x: Float32Array): number[] {
  return Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b).slice(0, 5);
}

/** Run the fixture's decoder inputs one token at a time through a session; logits per step. */
function stepLogits(engine: StreamEngine, cond: Conditioning, tokens: readonly number[], sinks: number, window: number): Float32Array[] {
  const sess = engine.session('caption', sinks, window);
  engine.condition(sess, cond);
  sess.resetCache();
  return tokens.map((t) => engine.feed(sess, [t], 0, 1, false).slice(0, engine.config.vocabSize));
}

/** The stem intermediates of random-tiny-conv (fixture key → engine trace name; the same names). */
const STEM_TRACES = ['v.stem/conv1', 'v.stem/conv2', 'v.stem/y'] as const;

function suite(fixture: string, name: string, kernels: () => Kernels | string): void {
  describe(`stream parity with the numpy reference (${fixture}, ${name} kernels)`, function () {
    this.timeout(120_000);
    const { fx, arr, f32, ints, has } = loadFixture(`${fixture}.json`);
    const conv = has('v.stem/x');
    let engine: StreamEngine;
    let cond: Conditioning;

    before(function () {
      const k = kernels();
      if (typeof k === 'string') {
        console.log(`      skipped: ${k}`);
        this.skip();
      }
      engine = StreamEngine.fromReader(GgufReader.open(join(DIR, fx.gguf)), k as Kernels);
      const d = engine.config.dim;
      engine.setMemory(f32('input/memory'), f32('input/memory').length / d);
      // the linear stem starts from the fixture's patches, the convolutional one from its normalised image
      const image = conv ? engine.encodePixels(f32('v.stem/x')) : engine.encodePatches(f32('input/patches'));
      cond = engine.conditionOn([image], engine.encodeIds(ints('input/prompt_ids')));
    });

    it('fixture schema and model', () => {
      assert.equal(fx.schema, 'bitmar-stream-fixture-v1');
      assert.equal(engine.config.dim, 32);
      const stem = (fx as { config?: { stem_channels?: number[] } }).config?.stem_channels ?? null;
      assert.deepEqual(engine.config.stemChannels, stem);
      assert.equal(conv, stem !== null, 'a stem fixture records v.stem/*');
    });

    it('preprocess: raw frame → patches (and → the normalised image)', () => {
      const raw = arr('input/raw_frame');
      const [h, w] = raw.shape as [number, number, number];
      const frame = { width: w, height: h, data: Uint8Array.from(raw.data) };
      const got = preprocessFrame(frame, engine.config.imageSize, engine.config.patchSize);
      assert.deepEqual(got, f32('input/patches'));
      if (conv) assert.deepEqual(preprocessImage(frame, engine.config.imageSize), f32('v.stem/x'));
    });

    if (conv) it('convolutional stem, teacher-forced (≤ 1e-5 relative)', () => {
      const traced = new Map<string, Float32Array>();
      const trace: Trace = (n, data, rows, width) => traced.set(n, data.slice(0, rows * width));
      const patches = new Float32Array(engine.config.patches * engine.config.patchDim);
      visionStem(engine, f32('v.stem/x'), patches, trace);
      for (const key of STEM_TRACES) {
        const got = traced.get(key);
        assert.ok(got, `the engine traced no ${key}`);
        expectClose(got, f32(key), key);
      }
      expectClose(patches, f32('v.stem/y'), 'stem patches');
      // the ViT on the reference's own stem output gives its V as well
      expectClose(engine.encodePatches(f32('v.stem/y')).V, f32('out/V'), 'V from v.stem/y');
      // and a raw frame goes through preprocess + stem to the same episode
      const raw = arr('input/raw_frame');
      const [h, w] = raw.shape as [number, number, number];
      expectClose(engine.encodeImage({ width: w, height: h, data: Uint8Array.from(raw.data) }).e, f32('out/e'), 'e from the raw frame');
    });

    it('tokenizer: prompt → ids', () => {
      assert.deepEqual(engine.promptIds(fx.prompt), ints('input/prompt_ids'));
    });

    it('every BitLinear, teacher-forced (≤ 1e-5 relative)', () => {
      const byName = new Map<string, BitLinearWeights>();
      const w = engine.weights;
      const addAttn = (p: string, a: { q: BitLinearWeights; k: BitLinearWeights; v: BitLinearWeights; o: BitLinearWeights }): void => {
        byName.set(`${p}_q`, a.q).set(`${p}_k`, a.k).set(`${p}_v`, a.v).set(`${p}_o`, a.o);
      };
      const addFfn = (p: string, f: { up: BitLinearWeights; down: BitLinearWeights }): void => {
        byName.set(`${p}.ffn_up`, f.up).set(`${p}.ffn_down`, f.down);
      };
      w.vision.forEach((b, i) => (addAttn(`v.blk.${i}.attn`, b.attn), addFfn(`v.blk.${i}`, b.ffn)));
      w.text.forEach((b, i) => (addAttn(`t.blk.${i}.attn`, b.attn), addFfn(`t.blk.${i}`, b.ffn)));
      w.fusion.forEach((b, i) => (addAttn(`f.blk.${i}.xattn`, b.xattn), addFfn(`f.blk.${i}`, b.ffn)));
      w.decoder.forEach((b, i) => {
        addAttn(`d.blk.${i}.attn`, b.attn);
        addAttn(`d.blk.${i}.xattn`, b.xattn);
        addFfn(`d.blk.${i}`, b.ffn);
        byName.set(`d.blk.${i}.cond`, b.cond);
      });
      byName.set('v.img_proj', w.imgProj).set('t.txt_proj', w.txtProj).set('mem.proj', w.memProj).set('d.lm_head', w.lmHead);
      assert.ok(fx.bitlinears.length >= 40);
      for (const n of fx.bitlinears) {
        const p = byName.get(n);
        assert.ok(p, `no BitLinear ${n} in the engine`);
        const x = arr(`bl/${n}/x`);
        const m = x.shape[0]!;
        const y = new Float32Array(m * p.w.rows);
        engine.kernels.bitlinearI8(p.w, x.data, m, y, p.bias);
        expectClose(y, f32(`bl/${n}/y`), `BitLinear ${n}`);
      }
    });

    it('every block, teacher-forced (≤ 1e-5 relative)', () => {
      const w = engine.weights;
      for (const n of fx.blocks) {
        const x = arr(`blk/${n}/x`);
        const rowsN = x.shape[0]!;
        const h = x.data.slice();
        const [kind, , li] = n.split('.');
        const l = Number(li);
        if (kind === 'v') encoderBlock(engine, w.vision[l]!, h, rowsN);
        else if (kind === 't') encoderBlock(engine, w.text[l]!, h, rowsN);
        else if (kind === 'f') fusionBlock(engine, w.fusion[l]!, h, rowsN, f32('out/V'));
        else {
          // the fixture's conditioning (its V, Fused and c), a fresh cache, positions 0..n−1
          const sess = engine.session('caption', 2, 64);
          const T = f32('out/Fused').length / engine.config.dim;
          engine.condition(sess, { images: [{ V: f32('out/V'), e: f32('out/e') }], text: { ids: new Array<number>(T).fill(0), Z: f32('out/Z'), u: f32('out/u') }, fused: f32('out/Fused'), c: f32('out/c') });
          sess.resetCache();
          decoderBlock(engine, sess, l, h, rowsN);
        }
        expectClose(h, f32(`blk/${n}/y`), `block ${n}`);
      }
    });

    it('frame encode, prompt encode, fusion, memory read and context', () => {
      expectClose(cond.images[0]!.V, f32('out/V'), 'V');
      expectClose(cond.images[0]!.e, f32('out/e'), 'e');
      expectClose(cond.text.Z, f32('out/Z'), 'Z');
      expectClose(cond.text.u, f32('out/u'), 'u');
      expectClose(cond.fused, f32('out/Fused'), 'Fused');
      expectClose(cond.c, f32('out/c'), 'c');
    });

    it('teacher-forced logits: same argmax at every position, top-5 overlap ≥ 0.95', () => {
      const V = engine.config.vocabSize;
      const ids = ints('input/teacher_ids');
      const want = f32('out/teacher_logits');
      const sess = engine.session('caption', 2, 64);
      engine.condition(sess, cond);
      sess.resetCache();
      const got = engine.feed(sess, ids, 0, ids.length, true).slice(0, ids.length * V);
      let overlap = 0;
      ids.forEach((_, i) => {
        assert.equal(argmax(rows(V, got, i)), argmax(rows(V, want, i)), `argmax at position ${i}`);
        const a = new Set(top5(rows(V, got, i)));
        overlap += top5(rows(V, want, i)).filter((t) => a.has(t)).length / 5;
      });
      assert.ok(overlap / ids.length >= 0.95, `top-5 overlap ${overlap / ids.length}`);
      expectClose(got, want, 'teacher-forced logits', 1e-4);
    });

    it('greedy: the same 12 tokens (no <eos> stop), and the same caption up to <eos>', () => {
      const tokens = ints('out/greedy12_tokens');
      const wantLogits = f32('out/greedy12_logits');
      const V = engine.config.vocabSize;
      const got = stepLogits(engine, cond, [engine.tokenizer.bosId, ...tokens.slice(0, -1)], 2, 64);
      got.forEach((g, i) => {
        assert.equal(argmax(g), tokens[i], `greedy token ${i}`);
        expectClose(g, rows(V, wantLogits, i), `greedy logits ${i}`, 1e-4);
      });
      const untilEos = ints('out/greedy_until_eos_tokens');
      const caption = [...engine.generate(cond, { maxTokens: 12, sinks: 2, window: 64 })].map((t) => t.tokenId);
      const eos = engine.tokenizer.eosId;
      assert.deepEqual(caption, untilEos.filter((t) => t !== eos).slice(0, caption.length));
      assert.deepEqual(untilEos.at(-1) === eos ? [...caption, eos] : caption, untilEos);
    });

    it('sink + window cache S=2, W=4: 16 greedy steps with the same logits', () => {
      const tokens = ints('out/kv_s2_w4_tokens');
      const want = f32('out/kv_s2_w4_logits');
      const lens = ints('out/kv_s2_w4_cache_len');
      const V = engine.config.vocabSize;
      const sess = engine.session('caption', 2, 4);
      engine.condition(sess, cond);
      sess.resetCache();
      [engine.tokenizer.bosId, ...tokens.slice(0, -1)].forEach((t, i) => {
        const g = engine.feed(sess, [t], 0, 1, false).slice(0, V);
        assert.equal(sess.caches[0]!.length, lens[i], `cache length at step ${i}`);
        assert.equal(argmax(g), tokens[i], `token ${i}`);
        expectClose(g, rows(V, want, i), `kv step ${i}`, 1e-4);
      });
    });

    it('no live memory slot: r = 0', () => {
      engine.setMemory(new Float32Array(0), 0);
      try {
        const c0 = engine.conditionOn(cond.images, cond.text);
        expectClose(c0.c, f32('out/empty_memory/c'), 'c without memory');
        const ids = ints('input/teacher_ids');
        const V = engine.config.vocabSize;
        const sess = engine.session('caption', 2, 64);
        engine.condition(sess, c0);
        sess.resetCache();
        const got = engine.feed(sess, ids, 0, ids.length, true).slice(0, ids.length * V);
        const want = f32('out/empty_memory/teacher_logits');
        ids.forEach((_, i) => assert.equal(argmax(rows(V, got, i)), argmax(rows(V, want, i)), `argmax at ${i}`));
        expectClose(got, want, 'logits without memory', 1e-4);
      } finally {
        const d = engine.config.dim;
        engine.setMemory(f32('input/memory'), f32('input/memory').length / d);
      }
    });
  });
}

function nativeKernels(): Kernels | string {
  try {
    return loadKernels('native').kernels;
  } catch (e) {
    return `native kernels not built (${(e as Error).message.split(';')[0]})`;
  }
}

for (const fixture of ['random-tiny', 'random-tiny-conv']) {
  suite(fixture, 'typescript', () => tsKernels);
  suite(fixture, 'native', nativeKernels);
}
