import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jpegRoundTrip, jpegRoundTripCodec } from '../../../src/sources/synthetic/jpeg-round-trip.js';
import { renderScene } from '../../../src/sources/synthetic/render.js';
import { mulberry32, sampleScene } from '../../../src/sources/synthetic/shapes-world.js';

describe('jpeg-round-trip', () => {
  it('is bit-exact with a real jpeg-js encode → decode (random pixels, any size, any quality)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer(),
        (width, height, quality, seed) => {
          const rng = mulberry32(seed);
          const rgb = new Uint8Array(width * height * 3).map(() => Math.floor(rng() * 256));
          assert.deepEqual(jpegRoundTrip(rgb, width, height, quality), jpegRoundTripCodec(rgb, width, height, quality));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('is bit-exact on rendered scenes at the qualities the contract allows', () => {
    for (const [w, h, q] of [[160, 120, 70], [203, 131, 85], [96, 200, 100]] as const) {
      const rng = mulberry32(w + q);
      const img = renderScene(sampleScene(rng, { width: Math.max(w, 160), height: Math.max(h, 120) }), w, h, rng);
      const fast = jpegRoundTrip(img, w, h, q);
      assert.deepEqual(fast, jpegRoundTripCodec(img, w, h, q));
      let err = 0;
      for (let k = 0; k < img.length; k++) err += Math.abs(fast[k]! - img[k]!);
      assert.ok(err / img.length < 8, `mean abs error ${err / img.length}`);
    }
  });

  it('rejects bad arguments', () => {
    assert.throws(() => jpegRoundTrip(new Uint8Array(12), 2, 2, 101), /quality 101/);
    assert.throws(() => jpegRoundTrip(new Uint8Array(11), 2, 2, 80), /does not match/);
    assert.throws(() => jpegRoundTrip(new Uint8Array(0), 0, 2, 80), RangeError);
  });
});
