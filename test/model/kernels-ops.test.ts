// The fp32 op kernels (LayerNorm, GELU, softmax, attention, arg-max) and the V8 Math.exp/Math.tanh
// twins: every native ISA this machine has against the TypeScript definitions BIT-EXACTLY, on random
// shapes including odd widths, tails shorter than a vector, head widths that are not a multiple of 4,
// row-index tables, aliasing and special values. (The TypeScript ops are the numerics of
// docs/bitmar-stream.md §2; their tolerance against PyTorch is test/model/engine/stream-parity.test.ts.)
import assert from 'node:assert/strict';

import type { Kernels } from '../../src/model/kernels.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { createNativeKernels } from '../../src/model/kernels-native.js';
import { rng, tryLoadNativeAddon } from '../helpers/native.js';

function randomF32(rand: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const gu = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wu = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (gu[i] !== wu[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) assert.fail(`${what}: element ${i} differs: native ${got[i]} vs typescript ${want[i]}`);
  }
}

const { addon, addonError } = tryLoadNativeAddon();
const isas = addon ? addon.kernelInfo().available : [];

describe('fp32 op kernels: native equals TypeScript bit for bit', function () {
  this.timeout(120_000);
  before(function () {
    if (!addon) {
      console.log(`      (skipped: ${addonError}; build it with \`npx node-gyp rebuild -j 1\`)`);
      this.skip();
    }
  });

  for (const isa of isas) {
    describe(`native-${isa}`, () => {
      let nk: Kernels;
      let idx: number;
      before(() => {
        nk = createNativeKernels(addon!, isa);
        idx = addon!.isaIndex(isa);
      });

      it('Math.exp and Math.tanh twins on 400k inputs (ranges, random bit patterns, specials)', () => {
        const rand = rng(11);
        const n = 400_000;
        const x = new Float64Array(n);
        const bits = new DataView(new ArrayBuffer(8));
        for (let i = 0; i < n; i++) {
          switch (i % 5) {
            case 0: x[i] = (rand() * 2 - 1) * 3; break; // GELU and softmax ranges
            case 1: x[i] = -rand() * 40; break;
            case 2: x[i] = (rand() * 2 - 1) * 800; break; // over/underflow edges
            case 3: x[i] = (rand() * 2 - 1) * 2 ** (-60 * rand()); break; // tiny
            default:
              bits.setUint32(0, (rand() * 2 ** 32) >>> 0);
              bits.setUint32(4, (rand() * 2 ** 32) >>> 0);
              x[i] = bits.getFloat64(0);
          }
        }
        const specials = [0, -0, 1, -1, Infinity, -Infinity, NaN, 709.78, 709.7827128933841, -745.13, -745.14, 22, -22, 2 ** -28, -(2 ** -54), 0.5 * Math.LN2, 1.5 * Math.LN2, 56 * Math.LN2, -56 * Math.LN2, -708.5, 5e-324];
        specials.forEach((v, i) => (x[i] = v));
        for (const [op, ref] of [['exp', Math.exp], ['tanh', Math.tanh]] as const) {
          const y = new Float64Array(n);
          addon!.mathF64(idx, op, x, y);
          for (let i = 0; i < n; i++) {
            const want = ref(x[i]!);
            if (!Object.is(y[i], want) && !(Number.isNaN(y[i]) && Number.isNaN(want))) assert.fail(`${op}(${x[i]}) = ${y[i]}, Math.${op} gives ${want}`);
          }
        }
      });

      it('layerNorm: m ∈ {1..5, 9, 65}, d ∈ {1, 3, 8, 32, 127, 128}, in place and not', () => {
        const rand = rng(2);
        for (const d of [1, 3, 8, 32, 127, 128]) {
          for (const m of [1, 2, 3, 4, 5, 9, 65]) {
            const x = randomF32(rand, m * d, rand() < 0.5 ? 1 : 300);
            const w = randomF32(rand, d);
            const b = randomF32(rand, d);
            const eps = Math.fround(1e-5);
            const want = new Float32Array(m * d);
            tsKernels.layerNorm(x, m, d, w, b, eps, want);
            const got = new Float32Array(m * d).fill(NaN);
            nk.layerNorm(x, m, d, w, b, eps, got);
            assertSameBits(got, want, `layerNorm m=${m} d=${d}`);
            const inPlace = x.slice();
            nk.layerNorm(inPlace, m, d, w, b, eps, inPlace);
            assertSameBits(inPlace, want, `layerNorm in place m=${m} d=${d}`);
          }
        }
      });

      it('gelu: lengths 1..37 and 4096, values from tiny to ±30', () => {
        const rand = rng(3);
        for (const n of [...Array.from({ length: 37 }, (_, i) => i + 1), 4096]) {
          const x = new Float32Array(n);
          for (let i = 0; i < n; i++) x[i] = (rand() * 2 - 1) * [1e-9, 0.5, 1, 3, 8, 30][i % 6]!;
          if (n > 3) x.set([0, -0, 1, -1].slice(0, Math.min(4, n)));
          const want = x.slice();
          tsKernels.gelu(want, n);
          const got = x.slice();
          nk.gelu(got, n);
          assertSameBits(got, want, `gelu n=${n}`);
        }
      });

      it('softmax: lengths 1..40, 64, 81, 1000, with offsets, wide spreads and −inf entries', () => {
        const rand = rng(4);
        for (const n of [...Array.from({ length: 40 }, (_, i) => i + 1), 64, 81, 1000]) {
          for (const spread of [0.1, 5, 60, 2000]) {
            const off = n % 3;
            const x = randomF32(rand, off + n + 2, spread);
            if (n > 5) x[off + 2] = -Infinity;
            const want = x.slice();
            tsKernels.softmax(want, off, n);
            const got = x.slice();
            nk.softmax(got, off, n);
            assertSameBits(got, want, `softmax n=${n} spread=${spread}`);
          }
        }
      });

      it('attention: head widths 2..64 (incl. not multiples of 4), 1..81 keys, row tables', () => {
        const rand = rng(5);
        const shapes: ReadonlyArray<readonly [heads: number, hd: number]> = [[1, 2], [2, 6], [4, 8], [2, 10], [4, 16], [4, 32], [2, 64], [3, 12], [1, 34]];
        for (const [heads, hd] of shapes) {
          const d = heads * hd;
          for (const nKeys of [1, 3, 4, 5, 8, 13, 64, 81]) {
            for (const mq of [1, 3]) {
              const rows = nKeys + 3;
              const q = randomF32(rand, mq * d, 2);
              const k = randomF32(rand, rows * d, 2);
              const v = randomF32(rand, rows * d);
              const useRows = rand() < 0.5;
              const kRows = useRows ? Int32Array.from({ length: nKeys }, () => Math.floor(rand() * rows)) : null;
              const vRows = useRows ? Int32Array.from({ length: nKeys }, () => Math.floor(rand() * rows)) : null;
              const want = new Float32Array(mq * d);
              tsKernels.attention(q, mq, k, kRows, v, vRows, nKeys, heads, hd, want);
              const got = new Float32Array(mq * d).fill(NaN);
              nk.attention(q, mq, k, kRows, v, vRows, nKeys, heads, hd, got);
              assertSameBits(got, want, `attention heads=${heads} hd=${hd} keys=${nKeys} mq=${mq} rows=${useRows}`);
            }
          }
        }
      });

      it('argmax: the first index of the max; ties, ±0, −inf, NaN (skipped; first wins)', () => {
        const rand = rng(6);
        const check = (x: Float32Array, off: number, n: number, what: string): void => {
          assert.equal(nk.argmax(x, off, n), tsKernels.argmax(x, off, n), what);
        };
        for (const n of [1, 2, 7, 8, 9, 31, 32, 33, 100, 50257]) {
          const x = randomF32(rand, n + 1);
          check(x, 0, n, `random n=${n}`);
          check(x, 1, n, `offset n=${n}`);
          const ties = new Float32Array(n).fill(0.5);
          if (n > 5) ties[n - 3] = ties[2] = 0.75;
          check(ties, 0, n, `ties n=${n}`);
        }
        // chunked first pass (256 values a chunk): ties in later chunks, NaN at a chunk start, x[0] the max
        const big = randomF32(rand, 5000);
        big[3 * 256 + 17] = 2;
        big[7 * 256 + 3] = 2;
        big[256] = NaN;
        big[512] = NaN;
        check(big, 0, 5000, 'ties across chunks, NaN at chunk starts');
        big[0] = 3;
        check(big, 0, 5000, 'the first value is the max');
        check(big, 1, 4999, 'offset, NaN-led chunks');
        check(Float32Array.of(-0, 0, -0), 0, 3, '−0 first');
        check(Float32Array.of(-1, 0, -0, 0), 0, 4, '+0 then −0');
        check(new Float32Array(40).fill(-Infinity), 0, 40, 'all −inf');
        const nan = randomF32(rand, 70);
        nan[5] = NaN;
        nan[40] = NaN;
        check(nan, 0, 70, 'NaN inside');
        nan[0] = NaN;
        check(nan, 0, 70, 'NaN first');
      });

      it('rejects bad arguments with BITMAR_ERR_NATIVE_ARGUMENT, never aborts', () => {
        const coded = (ctor: ErrorConstructor) => (e: unknown) => e instanceof ctor && (e as { code?: string }).code === 'BITMAR_ERR_NATIVE_ARGUMENT';
        const a = addon!;
        const x = new Float32Array(16);
        assert.throws(() => a.layerNorm(idx, x, 2, 16, new Float32Array(16), new Float32Array(16), 1e-5, x), coded(RangeError));
        assert.throws(() => a.layerNorm(idx, x, 1, 16, new Float32Array(16), new Float32Array(16), NaN, x), coded(TypeError));
        assert.throws(() => a.gelu(idx, x, 17), coded(RangeError));
        assert.throws(() => a.softmax(idx, new Float64Array(4) as unknown as Float32Array, 4), coded(TypeError));
        assert.throws(() => a.attention(idx, x, 1, x, Int32Array.of(0, 2), x, null, 2, 2, 4, new Float32Array(8)), coded(RangeError)); // row 2 of a 2-row k
        assert.throws(() => a.attention(idx, x, 1, x, null, x, Int32Array.of(-1), 1, 2, 4, new Float32Array(8)), coded(RangeError));
        assert.throws(() => a.attention(idx, x, 1, x, null, x, null, 3, 2, 4, new Float32Array(8)), coded(RangeError)); // 3 keys, 2 rows
        assert.throws(() => a.argmax(idx, x, 0), coded(RangeError));
        assert.throws(() => a.mathF64(idx, 'log' as 'exp', new Float64Array(1), new Float64Array(1)), coded(RangeError));
        assert.throws(() => a.mathF64(idx, 'exp', new Float64Array(3), new Float64Array(2)), coded(RangeError));
      });
    });
  }
});
