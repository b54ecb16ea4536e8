// The hand-written ONNX encoder (tools/onnx/onnx-proto.ts) and the bitmar graphs built with it
// (tools/onnx/bitmar-onnx.ts), checked by loading them in onnxruntime-node and comparing with a JS
// matmul and with the engine's own decoder. onnxruntime-node is not a dependency: those cases skip
// with a message where it is not installed (`npm i --no-save --ignore-scripts onnxruntime-node@1.23`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadOnnxruntime, type OrtModule } from '../../bench/onnx.js';
import { benchImage, engineFrom, PROMPT } from '../../bench/model.js';
import { randomCodes } from '../../bench/kernels.js';
import { GgufReader } from '../../src/model/gguf/reader.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { decoderModels, gemvModel, ternaryF32, ternaryTransposedInt8 } from '../../tools/onnx/bitmar-onnx.js';
import { encodeModel, GraphBuilder, DataType, PbWriter } from '../../tools/onnx/onnx-proto.js';

const SHAPES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'bitmar-stream-shapes.gguf');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const OPTS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };

type Feeds = Record<string, { readonly data: unknown; readonly dims: readonly number[] }>;
interface Session {
  run(feeds: Feeds): Promise<Feeds>;
  release(): Promise<void>;
}
const open = (ort: OrtModule, bytes: Uint8Array): Promise<Session> =>
  (ort.InferenceSession as unknown as { create(b: Uint8Array, o: object): Promise<Session> }).create(bytes, OPTS);

describe('ONNX writer (tools/onnx)', function () {
  this.timeout(120_000);
  let ort: OrtModule | undefined;
  before(function () {
    const o = loadOnnxruntime();
    if (typeof o === 'string') console.log(`      (onnxruntime cases ${o})`);
    else ort = o;
  });
  const needOrt = (ctx: Mocha.Context): OrtModule => {
    if (!ort) ctx.skip();
    return ort!;
  };

  it('encodes protobuf varints, negative int64, floats and nested messages on the wire', function () {
    assert.equal(hex(new PbWriter().varint(1, 300).finish()), '08ac02');
    assert.equal(hex(new PbWriter().varint(3, -1).finish()), '18ffffffffffffffffff01');
    assert.equal(hex(new PbWriter().float(2, 1).finish()), '150000803f');
    assert.equal(hex(new PbWriter().string(4, 'Add').finish()), '2203416464');
    assert.equal(hex(new PbWriter().message(7, new PbWriter().varint(1, 2)).finish()), '3a020802');
    const g = new GraphBuilder('g');
    g.input('a', DataType.FLOAT, ['n', 2]);
    g.node('Neg', ['a'], undefined, 'b');
    g.output('b', DataType.FLOAT, ['n', 2]);
    const m = encodeModel({ graph: g.graph(), opsets: { '': 17 } });
    assert.equal(hex(m.subarray(0, 2)), '0808'); // ir_version 8 first
  });

  it('without onnxruntime-node the baselines skip with a one-line note', function () {
    const note = loadOnnxruntime('onnxruntime-node-absent-for-this-test');
    assert.equal(typeof note, 'string');
    assert.match(note as string, /^skipped: .* is not installed .*npm i --no-save --ignore-scripts onnxruntime-node@1\.23/);
    assert.ok(!(note as string).includes('\n'));
  });

  it('unpacks t2-row-v1 codes into transposed int8 and fp32 matrices', function () {
    // one row, 5 columns: codes t+1 = 0, 1, 2, 2 | 0, then padding 1s
    const codes = Uint8Array.of(0b10_10_01_00, 0b01_01_01_00);
    assert.deepEqual([...ternaryTransposedInt8(codes, 1, 5)], [-1, 0, 1, 1, -1]);
    assert.deepEqual([...ternaryF32(codes, 1, 5, 0.5)], [-0.5, 0, 0.5, 0.5, -0.5]);
  });

  it('fp32 and int8 GEMV graphs give the JS matmul on the same ternary weights', async function () {
    const o = needOrt(this);
    const rows = 200, cols = 70, m = 3, scale = 0.01;
    const codes = randomCodes(rows, cols, 99);
    const t = ternaryTransposedInt8(codes, rows, cols);
    const x = new Float32Array(m * cols).map((_, i) => Math.sin(i * 0.37) * 3);
    const ref = new Float64Array(m * rows);
    for (let i = 0; i < m; i++) for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) ref[i * rows + r] += x[i * cols + j]! * t[j * rows + r]! * scale;
    // DynamicQuantizeLinear: per-tensor uint8, range including 0
    let lo = 0, hi = 0;
    for (const v of x) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const xs = Math.fround((hi - lo) / 255);
    const zp = Math.min(255, Math.max(0, Math.round(-lo / xs)));
    const q = Array.from(x, (v) => Math.min(255, Math.max(0, Math.round(v / xs) + zp)) - zp);
    for (const kind of ['fp32', 'int8'] as const) {
      const s = await open(o, gemvModel(codes, rows, cols, scale, kind));
      const y = (await s.run({ x: new o.Tensor('float32', x, [m, cols]) })).y!;
      assert.deepEqual([...y.dims], [m, rows]);
      const yd = y.data as Float32Array;
      for (let i = 0; i < m; i++) {
        for (let r = 0; r < rows; r++) {
          let want = ref[i * rows + r]!;
          if (kind === 'int8') {
            let acc = 0;
            for (let j = 0; j < cols; j++) acc += q[i * cols + j]! * t[j * rows + r]!;
            want = acc * xs * scale;
          }
          assert.ok(Math.abs(yd[i * rows + r]! - want) <= 1e-5, `${kind} y[${i}][${r}] = ${yd[i * rows + r]} ≠ ${want}`);
        }
      }
      await s.release();
    }
  });

  it('the decoder graphs (fp32, int8) give the engine\'s logits step by step, through cache eviction', async function () {
    const o = needOrt(this);
    const bytes = new Uint8Array(readFileSync(SHAPES));
    const e = engineFrom(bytes, 'random', tsKernels);
    const c = e.config;
    const cond = e.prepare([benchImage(c.imageSize, c.imageSize, 3)], PROMPT);
    const img = cond.images[0]!;
    const X = new Float32Array(img.V.length + cond.fused.length);
    X.set(img.V, 0);
    X.set(cond.fused, img.V.length);
    const steps = c.sinkCount + c.windowLength + 6; // past the first eviction
    for (const kind of ['fp32', 'int8'] as const) {
      const m = decoderModels(GgufReader.fromBytes(bytes), kind);
      const sc = await open(o, m.cond);
      const ss = await open(o, m.step);
      const feeds: Feeds = { ...(await sc.run({ X: new o.Tensor('float32', X, [X.length / c.dim, c.dim]), c: new o.Tensor('float32', cond.c, [1, c.dim]) })) };
      const sess = e.session('caption');
      e.condition(sess, cond);
      sess.resetCache();
      const ids = Int32Array.of(e.tokenizer.bosId);
      const rel: number[] = [];
      let agree = 0;
      // Each step starts from the engine's own cache (logical order, keys before RoPE), so an int8
      // rounding flip of one step (fp32 vs the engine's fp64 LayerNorm) does not carry into the next.
      const fromCache = (l: number, which: 'keys' | 'values'): Float32Array => {
        const kv = sess.caches[l]!;
        const out = new Float32Array(kv.length * c.dim);
        for (let r = 0; r < kv.length; r++) out.set(kv[which].subarray(kv.order[r]! * c.dim, (kv.order[r]! + 1) * c.dim), r * c.dim);
        return out;
      };
      for (let i = 0; i < steps; i++) {
        for (let l = 0; l < c.decoderLayers; l++) {
          const n = sess.caches[l]!.length;
          feeds[`past_k_${l}`] = new o.Tensor('float32', fromCache(l, 'keys'), [n, c.dim]);
          feeds[`past_v_${l}`] = new o.Tensor('float32', fromCache(l, 'values'), [n, c.dim]);
        }
        feeds.token = new o.Tensor('int64', BigInt64Array.of(BigInt(ids[0]!)), [1]);
        const out = await ss.run(feeds);
        const ours = e.feed(sess, ids, 0, 1, false).subarray(0, c.vocabSize);
        const theirs = out.logits!.data as Float32Array;
        let diff = 0, scale = 0, best = 0;
        for (let j = 0; j < ours.length; j++) {
          diff = Math.max(diff, Math.abs(theirs[j]! - ours[j]!));
          scale = Math.max(scale, Math.abs(ours[j]!));
          if (ours[j]! > ours[best]!) best = j;
        }
        rel.push(diff / scale);
        if (Number((out.next_token!.data as BigInt64Array)[0]) === best) agree++;
        const cap = c.sinkCount + c.windowLength;
        assert.equal(out.present_k_0!.dims[0], Math.min(i + 1, cap));
        if (kind === 'fp32' && i === cap + 2) {
          // after an eviction the graph's cache is the engine's: sinks, then the window minus its oldest
          const theirK = out.present_k_1!.data as Float32Array;
          const ourK = fromCache(1, 'keys');
          assert.equal(theirK.length, ourK.length);
          let same = 0;
          for (let r = 0; r < cap; r++) if (ourK.subarray(r * c.dim, (r + 1) * c.dim).every((v, j) => Math.abs(v - theirK[r * c.dim + j]!) <= 1e-4 * (1 + Math.abs(v)))) same++;
          assert.ok(same >= cap - 1, `present_k rows equal to the engine's cache: ${same} of ${cap}`);
        }
        ids[0] = best; // teacher-forced on our tokens
      }
      // fp32: the same fake-quantised model, so fp32 rounding, and now and then one activation that
      // lands on the other side of an int8 rounding step (≈ 1/127 of a row, ≲ 1e-2 of the logits);
      // int8: ORT's per-tensor uint8 activation quantisation instead of the model's per-row int8.
      if (kind === 'fp32') {
        const close = rel.filter((v) => v < 1e-5).length;
        assert.ok(close >= steps * 0.8, `fp32: logits within 1e-5 (relative) at ${close} of ${steps} steps`);
      }
      rel.sort((a, b) => a - b);
      assert.ok(rel[rel.length >> 1]! < (kind === 'fp32' ? 1e-5 : 5e-2), `${kind}: median relative logit difference ${rel[rel.length >> 1]}`);
      assert.ok(rel[rel.length - 1]! < (kind === 'fp32' ? 3e-2 : 1e-1), `${kind}: worst relative logit difference ${rel[rel.length - 1]}`);
      assert.ok(agree >= steps * (kind === 'fp32' ? 0.95 : 0.8), `${kind}: arg-max agrees on ${agree} of ${steps} steps`);
      await sc.release();
      await ss.release();
    }
  });
});
