import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBitmarError } from '../../src/errors.js';
import { cutPatches, normalizeImage, patchify, preprocessFrame, preprocessImage, resizeArea, resizeAreaU8 } from '../../src/model/preprocess.js';

/**
 * Slow, independent reference: for every output pixel, integrate the source over the output's
 * rectangle in real coordinates (float64 interval overlaps per source pixel, no separability, no
 * integer scaling), divided by the rectangle's area.
 */
function referenceResize(rgb: Uint8Array, w: number, h: number, size: number): Float64Array {
  const out = new Float64Array(size * size * 3);
  const sx = w / size;
  const sy = h / size;
  const overlap = (a0: number, a1: number, b0: number, b1: number): number => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      const x0 = ox * sx, x1 = (ox + 1) * sx, y0 = oy * sy, y1 = (oy + 1) * sy;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let j = 0; j < h; j++) {
          const cy = overlap(j, j + 1, y0, y1);
          if (cy === 0) continue;
          for (let i = 0; i < w; i++) acc += cy * overlap(i, i + 1, x0, x1) * rgb[(j * w + i) * 3 + c]!;
        }
        out[(oy * size + ox) * 3 + c] = acc / (sx * sy);
      }
    }
  }
  return out;
}

const imageArb = fc
  .record({ w: fc.integer({ min: 1, max: 40 }), h: fc.integer({ min: 1, max: 30 }), size: fc.integer({ min: 1, max: 24 }), seed: fc.integer() })
  .map(({ w, h, size, seed }) => {
    const rgb = new Uint8Array(w * h * 3);
    let s = seed | 1;
    for (let k = 0; k < rgb.length; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      rgb[k] = s & 255;
    }
    return { rgb, w, h, size };
  });

describe('preprocess', () => {
  describe('resizeArea', () => {
    it('matches the float64 coverage integral (down, up, non-integer factors, any aspect)', () => {
      fc.assert(
        fc.property(imageArb, ({ rgb, w, h, size }) => {
          const got = resizeArea(rgb, w, h, size);
          const want = referenceResize(rgb, w, h, size);
          for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) < 1e-9, `k=${k} ${got[k]} vs ${want[k]}`);
        }),
        { numRuns: 150 },
      );
    });

    it('handles named awkward cases exactly', () => {
      for (const [w, h, size] of [[320, 240, 64], [160, 120, 64], [1280, 720, 64], [7, 5, 3], [3, 5, 7], [100, 30, 64]] as const) {
        const rgb = new Uint8Array(w * h * 3).map((_, k) => (k * 37 + (k >> 5)) & 255);
        const got = resizeArea(rgb, w, h, size);
        const want = w * h <= 160 * 120 ? referenceResize(rgb, w, h, size) : undefined;
        if (want) for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) < 1e-9);
        // area resize preserves the mean of every channel
        for (let c = 0; c < 3; c++) {
          let a = 0;
          let b = 0;
          for (let k = c; k < rgb.length; k += 3) a += rgb[k]!;
          for (let k = c; k < got.length; k += 3) b += got[k]!;
          assert.ok(Math.abs(a / (w * h) - b / (size * size)) < 1e-9);
        }
      }
    });

    it('keeps a constant image constant and is the identity at the same size', () => {
      const rgb = new Uint8Array(37 * 23 * 3).fill(77);
      assert.ok(resizeAreaU8(rgb, 37, 23, 16).every((v) => v === 77));
      const img = new Uint8Array(8 * 8 * 3).map((_, k) => k);
      assert.deepEqual(resizeAreaU8(img, 8, 8, 8), img);
    });

    it('resizeAreaU8 rounds halves up', () => {
      // 2×1 → 1×1: (10 + 11) / 2 = 10.5 → 11
      const rgb = Uint8Array.from([10, 10, 10, 11, 11, 11]);
      assert.deepEqual([...resizeAreaU8(rgb, 2, 1, 1)], [11, 11, 11]);
      fc.assert(
        fc.property(imageArb, ({ rgb: src, w, h, size }) => {
          const f = referenceResize(src, w, h, size);
          const u = resizeAreaU8(src, w, h, size);
          for (let k = 0; k < f.length; k++) {
            const frac = f[k]! - Math.floor(f[k]!);
            if (Math.abs(frac - 0.5) > 1e-9) assert.equal(u[k], Math.floor(f[k]! + 0.5));
          }
        }),
        { numRuns: 50 },
      );
    });

    it('rejects a mismatched buffer with BITMAR_ERR_IMAGE_SIZE', () => {
      assert.throws(() => resizeArea(new Uint8Array(10), 2, 2, 4), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE'));
      assert.throws(() => resizeArea(new Uint8Array(0), 0, 0, 4), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE'));
      assert.throws(() => resizeArea(new Uint8Array(12), 2, 2, 0), RangeError);
    });
  });

  describe('preprocessFrame', () => {
    it('lays patches out row-major, each in (dy, dx, channel) order, as v/127.5 − 1', () => {
      const S = 8;
      const P = 4;
      // pixel (x, y) channel c holds a value that encodes its position
      const code = (x: number, y: number, c: number): number => (y * S + x) * 3 + c;
      const data = new Uint8Array(S * S * 3).map((_, k) => k);
      const out = preprocessFrame({ width: S, height: S, data }, S, P);
      assert.equal(out.length, (S / P) ** 2 * 3 * P * P);
      for (let py = 0; py < S / P; py++)
        for (let px = 0; px < S / P; px++)
          for (let dy = 0; dy < P; dy++)
            for (let dx = 0; dx < P; dx++)
              for (let c = 0; c < 3; c++) {
                const n = py * (S / P) + px;
                const got = out[n * 3 * P * P + (dy * P + dx) * 3 + c]!;
                assert.equal(got, Math.fround(code(px * P + dx, py * P + dy, c) / 127.5 - 1));
              }
    });

    it('is patchify of the rounded area resize, in [−1, 1]', () => {
      const data = new Uint8Array(320 * 240 * 3).map((_, k) => (k * 13) & 255);
      const out = preprocessFrame({ width: 320, height: 240, data }, 64, 8);
      assert.equal(out.length, 64 * 3 * 64);
      assert.deepEqual(out, patchify(resizeAreaU8(data, 320, 240, 64), 64, 8));
      assert.ok(out.every((v) => v >= -1 && v <= 1));
      assert.equal(preprocessFrame({ width: 1, height: 1, data: Uint8Array.from([255, 0, 0]) }, 8, 8)[0], 1);
    });

    it('is cutPatches of preprocessImage (the normalised HWC image of the convolutional stem)', () => {
      const data = new Uint8Array(50 * 30 * 3).map((_, k) => (k * 29 + 7) & 255);
      const frame = { width: 50, height: 30, data };
      const x = preprocessImage(frame, 16);
      assert.equal(x.length, 16 * 16 * 3);
      assert.deepEqual(x, normalizeImage(resizeAreaU8(data, 50, 30, 16), 16));
      const into = new Float32Array(16 * 16 * 3).fill(9);
      assert.equal(normalizeImage(resizeAreaU8(data, 50, 30, 16), 16, into), into, 'writes into the given buffer');
      assert.deepEqual(into, x);
      assert.throws(() => normalizeImage(resizeAreaU8(data, 50, 30, 16), 16, new Float32Array(10)), RangeError);
      resizeAreaU8(data, 50, 30, 16).forEach((v, k) => assert.equal(x[k], Math.fround(v / 127.5 - 1)));
      for (const P of [1, 2, 4, 8, 16]) assert.deepEqual(cutPatches(x, 16, P, 3), preprocessFrame(frame, 16, P));
      assert.throws(() => preprocessImage(frame, 0), RangeError);
      assert.throws(() => preprocessImage({ ...frame, data: new Uint8Array(5) }, 16), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE'));
    });

    it('validates sizes', () => {
      const frame = { width: 4, height: 4, data: new Uint8Array(48) };
      assert.throws(() => preprocessFrame(frame, 64, 7), /multiple of patch size/);
      assert.throws(() => preprocessFrame(frame, 0, 8), RangeError);
      assert.throws(() => preprocessFrame({ ...frame, data: new Uint8Array(47) }, 64, 8), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE'));
    });
  });

  describe('cutPatches (step 4 for any channel count: the stem output)', () => {
    it('lays a C-channel map out in row-major patches, each in (dy, dx, channel) order', () => {
      for (const [S, P, C] of [[8, 4, 5], [6, 3, 1], [4, 4, 32], [9, 1, 2]] as const) {
        const x = Float32Array.from({ length: S * S * C }, (_, k) => k + 0.5);
        const out = new Float32Array(S * S * C + 3).fill(-1);
        assert.equal(cutPatches(x, S, P, C, out), out);
        const g = S / P;
        for (let py = 0; py < g; py++)
          for (let px = 0; px < g; px++)
            for (let dy = 0; dy < P; dy++)
              for (let dx = 0; dx < P; dx++)
                for (let c = 0; c < C; c++) {
                  const n = py * g + px;
                  assert.equal(out[n * C * P * P + (dy * P + dx) * C + c], x[((py * P + dy) * S + px * P + dx) * C + c]);
                }
        assert.deepEqual(Array.from(out.subarray(S * S * C)), [-1, -1, -1], 'writes nothing past the patches');
        assert.deepEqual(cutPatches(x, S, P, C), out.subarray(0, S * S * C));
      }
    });

    it('validates sizes', () => {
      assert.throws(() => cutPatches(new Float32Array(75), 5, 2, 3), /multiple of patch size/);
      assert.throws(() => cutPatches(new Float32Array(74), 5, 5, 3), /image holds 74 floats, expected 75/);
      assert.throws(() => cutPatches(new Float32Array(75), 5, 5, 3, new Float32Array(74)), /patch buffer holds 74 floats, need 75/);
      assert.throws(() => cutPatches(new Float32Array(75), 5, 5, 0), RangeError);
    });
  });
});
