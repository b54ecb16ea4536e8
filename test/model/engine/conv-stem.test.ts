/**
 * The convolutional stem (docs/bitmar-stream.md §1, §3, §5): conv3x3 as im2col + matmul against a
 * direct convolution written here, the stem inside the engine, and the loader's checks of
 * `vision.stem_channels` and the v.stem* tensors.
 */
import assert from 'node:assert/strict';
import { conv3x3, conv3x3OutSize, im2col3x3, im2col3x3Size, type Conv3x3Weights } from '../../../src/model/engine/conv.js';
import type { Trace } from '../../../src/model/engine/forward.js';
import { gv } from '../../../src/model/gguf/writer.js';
import { loadKernels, type Kernels } from '../../../src/model/kernels.js';
import { tsKernels } from '../../../src/model/kernels-ts.js';
import { cutPatches, preprocessFrame, preprocessImage } from '../../../src/model/preprocess.js';
import { expectLoadError, rewrite, testImage, tinyEngine, tinyModelBytes } from './helpers.js';

const KEY = 'bitmar-stream.vision.stem_channels';
const STEM: [number, number] = [4, 6];

function nativeKernels(): Kernels | null {
  try {
    return loadKernels('native').kernels;
  } catch {
    return null;
  }
}

/** Deterministic values in [−1, 1). */
function randoms(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function convWeights(cin: number, cout: number, seed: number): Conv3x3Weights {
  return { weight: randoms(cout * 9 * cin, seed), bias: randoms(cout, seed + 1), inChannels: cin, outChannels: cout };
}

/** The direct convolution of docs §3, in fp64: out[oy][ox][o], zero outside the image. */
function directConv(x: Float32Array, H: number, W: number, p: Conv3x3Weights, s: number): Float64Array {
  const cin = p.inChannels;
  const cout = p.outChannels;
  const OH = Math.floor((H - 1) / s) + 1;
  const OW = Math.floor((W - 1) / s) + 1;
  const out = new Float64Array(OH * OW * cout);
  for (let oy = 0; oy < OH; oy++) {
    for (let ox = 0; ox < OW; ox++) {
      for (let o = 0; o < cout; o++) {
        let acc = p.bias[o]!;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            for (let c = 0; c < cin; c++) {
              const iy = s * oy + ky - 1;
              const ix = s * ox + kx - 1;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              acc += p.weight[o * 9 * cin + (ky * 3 + kx) * cin + c]! * x[(iy * W + ix) * cin + c]!;
            }
          }
        }
        out[(oy * OW + ox) * cout + o] = acc;
      }
    }
  }
  return out;
}

function gelu64(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** max |a − b| / max |b| */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? m : m / s;
}

/** The stem of docs §3 written directly (fp64 convolutions, fp32 between the steps): C2o [(S/2)², C2]. */
function directStem(x: Float32Array, S: number, w1: Conv3x3Weights, w2: Conv3x3Weights): { c1o: Float32Array; c2o: Float32Array } {
  const c1o = Float32Array.from(directConv(x, S, S, w1, 1), gelu64);
  const c2o = Float32Array.from(directConv(c1o, S, S, w2, 2), gelu64);
  return { c1o, c2o };
}

describe('convolutional stem', function () {
  this.timeout(120_000);
  const native = nativeKernels();
  const backends: [string, Kernels | null][] = [['typescript', tsKernels], ['native', native]];

  describe('conv3x3 = im2col + matmul', () => {
    // odd and even sides, 1×1, a single row/column, strides 1–3, channel counts below and above 8
    const cases: [number, number, number, number, number][] = [
      // H, W, Cin, Cout, stride
      [7, 5, 3, 5, 1],
      [7, 5, 3, 5, 2],
      [5, 7, 16, 9, 2],
      [6, 6, 3, 16, 1],
      [9, 8, 4, 3, 2],
      [1, 1, 3, 2, 1],
      [1, 4, 2, 3, 2],
      [5, 1, 3, 2, 2],
      [8, 7, 5, 4, 3],
      [2, 2, 1, 1, 2],
    ];

    it('im2col rows hold the (ky, kx, c) window, 0 outside the image', () => {
      for (const [H, W, C, , s] of cases) {
        const x = randoms(H * W * C, H * 100 + W);
        const col = new Float32Array(im2col3x3Size(H, W, C, s) + 5).fill(NaN);
        im2col3x3(x, 0, H, W, C, s, col);
        const OH = conv3x3OutSize(H, s);
        const OW = conv3x3OutSize(W, s);
        let k = 0;
        for (let oy = 0; oy < OH; oy++)
          for (let ox = 0; ox < OW; ox++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++)
                for (let c = 0; c < C; c++) {
                  const iy = s * oy + ky - 1;
                  const ix = s * ox + kx - 1;
                  const want = iy < 0 || iy >= H || ix < 0 || ix >= W ? 0 : x[(iy * W + ix) * C + c]!;
                  assert.equal(col[k++], want, `${H}×${W}×${C} s${s}: pixel (${oy}, ${ox}) ky ${ky} kx ${kx} c ${c}`);
                }
        assert.equal(k, OH * OW * 9 * C);
        assert.ok(Number.isNaN(col[k]!), 'writes nothing past the columns');
      }
    });

    for (const [name, k] of backends) {
      it(`matches the direct convolution (${name} kernels)`, function () {
        if (k === null) this.skip();
        for (const [H, W, cin, cout, s] of cases) {
          const x = randoms(H * W * cin, H * 31 + W * 7 + cin);
          const p = convWeights(cin, cout, cout * 13 + s);
          const OH = conv3x3OutSize(H, s);
          const OW = conv3x3OutSize(W, s);
          const out = new Float32Array(OH * OW * cout);
          conv3x3(k!, x, 0, H, W, p, s, new Float32Array(im2col3x3Size(H, W, cin, s)), out);
          const e = relErr(out, directConv(x, H, W, p, s));
          assert.ok(e <= 1e-6, `${H}×${W}×${cin}→${cout} stride ${s}: relative error ${e}`);
        }
      });
    }

    it('an input stored behind the columns (the copyWithin path) gives the same columns and output', () => {
      for (const [H, W, cin, cout, s] of [...cases, [9, 11, 16, 4, 2], [6, 5, 8, 3, 1], [64, 64, 16, 32, 2]] as [number, number, number, number, number][]) {
        const x = randoms(H * W * cin, H * 17 + W + cin);
        const p = convWeights(cin, cout, H + cout);
        const cols = im2col3x3Size(H, W, cin, s);
        const n = conv3x3OutSize(H, s) * conv3x3OutSize(W, s) * cout;
        const apart = new Float32Array(cols);
        const want = new Float32Array(n);
        conv3x3(tsKernels, x, 0, H, W, p, s, apart, want);
        for (const gap of [0, 3]) {
          const shared = new Float32Array(cols + gap + x.length).fill(NaN);
          shared.set(x, cols + gap);
          const got = new Float32Array(n);
          conv3x3(tsKernels, shared, cols + gap, H, W, p, s, shared, got);
          assert.deepEqual(shared.subarray(0, cols), apart, `${H}×${W}×${cin} stride ${s}: columns`);
          assert.deepEqual(shared.subarray(cols + gap), x, 'the input is left as it was');
          assert.deepEqual(got, want, `${H}×${W}×${cin} stride ${s}: output`);
        }
      }
    });

    it('the TypeScript and native kernels give the same bits', function () {
      if (native === null) this.skip();
      const [H, W, cin, cout] = [11, 9, 16, 32];
      const x = randoms(H * W * cin, 5);
      const p = convWeights(cin, cout, 6);
      for (const s of [1, 2]) {
        const n = conv3x3OutSize(H, s) * conv3x3OutSize(W, s) * cout;
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        conv3x3(tsKernels, x, 0, H, W, p, s, new Float32Array(im2col3x3Size(H, W, cin, s)), a);
        conv3x3(native!, x, 0, H, W, p, s, new Float32Array(im2col3x3Size(H, W, cin, s)), b);
        assert.deepEqual(a, b, `stride ${s}`);
      }
    });

    it('checks its buffers', () => {
      const p = convWeights(3, 4, 1);
      const x = randoms(5 * 5 * 3, 2);
      const col = new Float32Array(im2col3x3Size(5, 5, 3, 2));
      assert.throws(() => conv3x3(tsKernels, x, 0, 5, 5, p, 2, col.subarray(1), new Float32Array(36)), /im2col scratch holds/);
      assert.throws(() => conv3x3(tsKernels, x, 0, 5, 5, p, 2, col, new Float32Array(35)), /output holds 35 floats, need 36/);
      assert.throws(() => conv3x3(tsKernels, x.subarray(1), 0, 5, 5, p, 2, col, new Float32Array(36)), /input holds 74 floats, need 5·5·3 from offset 0/);
      assert.throws(() => conv3x3(tsKernels, x, 1, 5, 5, p, 2, col, new Float32Array(36)), /input holds 75 floats, need 5·5·3 from offset 1/);
      assert.throws(() => conv3x3(tsKernels, x, 0, 5, 5, p, 0, col, new Float32Array(36)), /stride 0/);
      const shared = new Float32Array(col.length + x.length);
      assert.throws(() => conv3x3(tsKernels, shared, col.length - 1, 5, 5, p, 2, shared, new Float32Array(36)), /an input inside the scratch must start at or after the 243 column floats, not at 242/);
    });
  });

  describe('the stem in the engine', () => {
    // C1 = 4 and 8: channel counts below and at one vector of the native kernels (native/conv/)
    for (const [[name, k], STEM] of backends.flatMap((b) => [[b, [4, 6]], [b, [8, 4]]] as [[string, Kernels | null], [number, number]][])) {
      it(`encodeImage = direct stem, cut into (P/2)² patches, then the ViT (stem [${STEM.join(', ')}], ${name} kernels)`, function () {
        if (k === null) this.skip();
        const e = tinyEngine({ stem: STEM }, k!);
        const { imageSize: S, patchSize: P, patches: N, patchDim } = e.config;
        assert.deepEqual(e.config.stemChannels, STEM);
        assert.equal(patchDim, STEM[1] * (P / 2) ** 2);
        const img = testImage(40, 27, 3);
        const x = preprocessImage(img, S);
        const traced = new Map<string, { data: Float32Array; rows: number; width: number }>();
        const trace: Trace = (n, data, rows, width) => traced.set(n, { data: data.slice(0, rows * width), rows, width });
        const got = e.encodeImage(img, trace);
        const stem = e.weights.stem!;
        const want = directStem(x, S, stem.conv1, stem.conv2);
        assert.equal(traced.get('v.stem/conv1')!.rows, S * S);
        assert.equal(traced.get('v.stem/conv1')!.width, STEM[0]);
        assert.ok(relErr(traced.get('v.stem/conv1')!.data, want.c1o) <= 1e-6, 'v.stem/conv1');
        assert.equal(traced.get('v.stem/conv2')!.rows, (S / 2) ** 2);
        assert.equal(traced.get('v.stem/conv2')!.width, STEM[1]);
        assert.ok(relErr(traced.get('v.stem/conv2')!.data, want.c2o) <= 1e-6, 'v.stem/conv2');
        // the patch vectors: C2o cut like preprocess step 4, written out index by index
        const half = S / 2;
        const Q = P / 2;
        const patches = e.state.patches.slice();
        assert.equal(patches.length, N * patchDim);
        const grid = half / Q;
        for (let py = 0; py < grid; py++)
          for (let px = 0; px < grid; px++)
            for (let dy = 0; dy < Q; dy++)
              for (let dx = 0; dx < Q; dx++)
                for (let c = 0; c < STEM[1]; c++) {
                  const n = py * grid + px;
                  const src = ((py * Q + dy) * half + px * Q + dx) * STEM[1] + c;
                  assert.equal(patches[n * patchDim + (dy * Q + dx) * STEM[1] + c], traced.get('v.stem/conv2')!.data[src]);
                }
        assert.deepEqual(traced.get('v.stem/y')!.data, patches);
        const again = e.encodePatches(patches);
        assert.deepEqual(got.V, again.V);
        assert.deepEqual(got.e, again.e);
        assert.deepEqual(e.encodePixels(x).e, got.e, 'encodePixels on the normalised image');
      });
    }

    it('the TypeScript and native kernels encode a frame to the same bits', function () {
      if (native === null) this.skip();
      const img = testImage(33, 41, 9);
      const a = tinyEngine({ stem: STEM }, tsKernels).encodeImage(img);
      const b = tinyEngine({ stem: STEM }, native!).encodeImage(img);
      assert.deepEqual(a.V, b.V);
      assert.deepEqual(a.e, b.e);
    });

    it('the linear stem encodes exactly as before: preprocessFrame patches', () => {
      const e = tinyEngine();
      assert.equal(e.config.stemChannels, null);
      assert.equal(e.weights.stem, null);
      const img = testImage(48, 32, 1);
      const { imageSize: S, patchSize: P } = e.config;
      const before = e.encodePatches(preprocessFrame(img, S, P));
      const now = e.encodeImage(img);
      assert.deepEqual(now.V, before.V);
      assert.deepEqual(now.e, before.e);
      assert.deepEqual(cutPatches(preprocessImage(img, S), S, P, 3), preprocessFrame(img, S, P));
    });

    it('encodePixels and encodePatches check their input size', () => {
      const e = tinyEngine({ stem: STEM });
      assert.throws(() => e.encodePixels(new Float32Array(10)), /image holds 10 floats, expected S·S·3 = 16·16·3/);
      assert.throws(() => e.encodePatches(new Float32Array(10)), /patches hold 10 floats, expected N·patch_dim = 4·96/);
    });
  });

  describe('load checks vision.stem_channels and the v.stem* tensors', () => {
    const base = tinyModelBytes({ stem: STEM });
    const setKey = (bytes: Uint8Array, value: Parameters<typeof gv.array>[0] | ReturnType<typeof gv.u32>): Uint8Array =>
      rewrite(bytes, (m) => {
        const v = 'itemType' in value ? gv.array(value) : value;
        const i = m.findIndex(([k]) => k === KEY);
        if (i >= 0) m[i] = [KEY, v];
        else m.push([KEY, v]);
      });

    it('loads the stem tensors with their shapes', () => {
      const e = tinyEngine({ stem: STEM });
      const st = e.weights.stem!;
      assert.equal(st.conv1.weight.length, 27 * 4);
      assert.equal(st.conv1.bias.length, 4);
      assert.equal(st.conv2.weight.length, 9 * 4 * 6);
      assert.equal(st.conv2.bias.length, 6);
      assert.deepEqual([st.conv1.inChannels, st.conv1.outChannels, st.conv2.inChannels, st.conv2.outChannels], [3, 4, 4, 6]);
    });

    it('a missing stem tensor', () => {
      for (const n of ['v.stem1.weight', 'v.stem1.bias', 'v.stem2.weight', 'v.stem2.bias']) {
        const b = rewrite(base, (_, t) => t.splice(t.findIndex((x) => x.name === n), 1));
        const ne = { 'v.stem1.weight': '27, 4', 'v.stem1.bias': '4', 'v.stem2.weight': '36, 6', 'v.stem2.bias': '6' }[n];
        expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', new RegExp(`tensor "${n.replace(/\./g, '\\.')}" is missing \\(expected F32 or F16 \\[${ne}\\]\\); bitmar-stream\\.vision\\.stem_channels = \\[4, 6\\] asks for the convolutional stem`));
      }
      // the key on a model made without a stem
      const c = setKey(tinyModelBytes(), { itemType: 'u32', items: [4, 6] });
      expectLoadError(c, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.stem1\.weight" is missing/);
    });

    it('a stem tensor with the wrong ne', () => {
      const b = rewrite(base, (_, t) => {
        const i = t.findIndex((x) => x.name === 'v.stem2.weight');
        t[i] = { ...t[i]!, dims: [6, 36] }; // PyTorch-style [out, in] written without reversing
      });
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.stem2\.weight": expected F32 or F16 \[36, 6\], found F32 \[6, 36\]; bitmar-stream\.vision\.stem_channels = \[4, 6\]/);
      const c = rewrite(base, (_, t) => {
        const i = t.findIndex((x) => x.name === 'v.stem1.weight');
        t[i] = { ...t[i]!, dims: [9, 12] };
      });
      expectLoadError(c, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.stem1\.weight": expected F32 or F16 \[27, 4\], found F32 \[9, 12\]/);
      // channel counts in the key that disagree with the tensors
      const d = setKey(base, { itemType: 'u32', items: [4, 8] });
      expectLoadError(d, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.stem2\.weight": expected F32 or F16 \[36, 8\], found F32 \[36, 6\]/);
      // the linear patch embedding's width is C2·(P/2)² with the stem
      const e = rewrite(base, (_, t) => {
        const i = t.findIndex((x) => x.name === 'v.patch_embed.weight');
        t[i] = { ...t[i]!, dims: [192, 32], data: new Float32Array(192 * 32) };
      });
      expectLoadError(e, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.patch_embed\.weight": expected F32 or F16 \[96, 32\], found F32 \[192, 32\]/);
    });

    it('stem tensors without the key', () => {
      const b = rewrite(base, (m) => m.splice(m.findIndex(([k]) => k === KEY), 1));
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /tensor "v\.stem1\.weight", "v\.stem1\.bias", "v\.stem2\.weight", "v\.stem2\.bias" present but metadata bitmar-stream\.vision\.stem_channels is missing: add/);
    });

    it('a malformed key', () => {
      const fix = /write it as a u32 array \[C1, C2\] of positive channel counts ≤ 1024 \(e\.g\. \[16, 32\]\), or leave it out for the linear patch stem/;
      const bad: [Parameters<typeof setKey>[1], RegExp][] = [
        [{ itemType: 'u32', items: [4, 6, 8] }, /stem_channels = \[4, 6, 8\] is invalid/],
        [{ itemType: 'u32', items: [4] }, /stem_channels = \[4\] is invalid/],
        [{ itemType: 'u32', items: [0, 6] }, /stem_channels = \[0, 6\] is invalid/],
        [{ itemType: 'u32', items: [4, 5000] }, /stem_channels = \[4, 5000\] is invalid/],
        [{ itemType: 'f32', items: [4, 6] }, /stem_channels is an array of f32, must be an array of 2 u32/],
        [{ itemType: 'string', items: ['4', '6'] }, /stem_channels is an array of string/],
        [gv.u32(16), /stem_channels is a u32, must be an array of 2 u32/],
      ];
      for (const [value, pattern] of bad) {
        const b = setKey(base, value);
        expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', pattern);
        expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', fix);
      }
    });

    it('an odd patch size', () => {
      const b = rewrite(base, (m) => {
        m[m.findIndex(([k]) => k === 'bitmar-stream.image_size')] = ['bitmar-stream.image_size', gv.u32(15)];
        m[m.findIndex(([k]) => k === 'bitmar-stream.patch_size')] = ['bitmar-stream.patch_size', gv.u32(5)];
      });
      expectLoadError(b, 'BITMAR_ERR_MODEL_MISMATCH', /stem_channels is set \(convolutional stem\) but bitmar-stream\.patch_size 5 \/ image_size 15 must both be even/);
    });
  });
});
