/**
 * Fuzz: still-image bytes through `decodeImage` (src/sources/image/decode.ts), the decoder behind
 * MQTT images, ROS CompressedImage and files. Mutated PNG (RGB, grey, grey+alpha, RGBA, palette,
 * 16-bit), JPEG and PPM/PGM (P6, P5, P3, P2, 16-bit), truncations and random bytes.
 * Contract: RGB8 of width·height·3 within the limits, or BITMAR_ERR_IMAGE_DECODE / _SIZE.
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { PNG, type PNGOptions } from 'pngjs';
import { decodeImage, encodePng, encodePpm, type ImageFormat } from '../../src/sources/image/decode.js';
import { bytesFrom, expectBitmar, FUZZ_RUNS, fuzzParams, report, Tally, watchMemory } from './fuzz-kit.js';

function rgb(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < d.length; i++) d[i] = (i * 37 + (i >> 5)) & 0xff;
  return d;
}

function rgba(w: number, h: number): Buffer {
  const d = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) d.set([(i * 7) & 255, (i * 3) & 255, 128, i & 1 ? 255 : 40], i * 4);
  return d;
}

function png(w: number, h: number, opts: PNGOptions): Uint8Array {
  const p = new PNG({ width: w, height: h });
  rgba(w, h).copy(p.data);
  return new Uint8Array(PNG.sync.write(p, opts));
}

function jpg(w: number, h: number, quality: number): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba(w, h) }, quality).data);
}

function ascii(kind: 'P3' | 'P2', w: number, h: number, maxval: number): Uint8Array {
  const n = w * h * (kind === 'P3' ? 3 : 1);
  const samples = Array.from({ length: n }, (_, i) => (i * 13) % (maxval + 1));
  return new TextEncoder().encode(`${kind}\n# fuzz seed\n${w} ${h}\n${maxval}\n${samples.join(' ')}\n`);
}

function binary(kind: 'P6' | 'P5', w: number, h: number, maxval: number): Uint8Array {
  const n = w * h * (kind === 'P6' ? 3 : 1) * (maxval > 255 ? 2 : 1);
  const head = new TextEncoder().encode(`${kind} ${w} ${h} ${maxval}\n`);
  const out = new Uint8Array(head.length + n);
  out.set(head);
  const wide = maxval > 255;
  for (let k = 0; k < n / (wide ? 2 : 1); k++) {
    const v = (k * 29) % (maxval + 1);
    if (wide) out.set([v >> 8, v & 0xff], head.length + 2 * k);
    else out[head.length + k] = v;
  }
  return out;
}

/**
 * Recomputes the CRC of every whole PNG chunk, so a mutation inside IHDR, PLTE or IDAT reaches the
 * decoder instead of stopping at pngjs's CRC check.
 */
function fixPngCrcs(b: Uint8Array): Uint8Array {
  if (b.length < 8 || b[0] !== 0x89 || b[1] !== 0x50) return b;
  const out = new Uint8Array(b);
  const view = new DataView(out.buffer);
  for (let at = 8; at + 12 <= out.length; ) {
    const length = view.getUint32(at);
    if (at + 12 + length > out.length) break;
    view.setUint32(at + 8 + length, crc32(out.subarray(at + 4, at + 8 + length)));
    at += 12 + length;
  }
  return out;
}

const CORPUS: readonly Uint8Array[] = [
  encodePng({ width: 7, height: 5, data: rgb(7, 5) }),
  png(6, 4, { colorType: 0 }),
  png(5, 3, { colorType: 4 }),
  png(8, 8, { colorType: 6 }),
  png(4, 4, { colorType: 2, bitDepth: 16 }),
  png(3, 3, { colorType: 0, bitDepth: 16 }),
  jpg(16, 16, 80),
  jpg(33, 17, 50),
  jpg(1, 1, 95),
  jpg(24, 9, 10),
  encodePpm({ width: 6, height: 4, data: rgb(6, 4) }),
  binary('P5', 5, 5, 255),
  binary('P6', 3, 2, 65535),
  binary('P5', 4, 3, 1000),
  ascii('P3', 3, 2, 255),
  ascii('P2', 4, 2, 15),
];

describe('fuzz: image bytes → decodeImage', function () {
  this.timeout(120_000);

  it('decodes or refuses with IMAGE_DECODE / IMAGE_SIZE, retaining nothing', () => {
    for (const seed of CORPUS) assert.doesNotThrow(() => decodeImage(seed), 'every corpus image must decode');
    const tally = new Tally();
    const mem = watchMemory();
    const t0 = performance.now();
    const hint = fc.constantFrom<ImageFormat | undefined>(undefined, 'png', 'jpeg', 'ppm');
    fc.assert(
      fc.property(bytesFrom(CORPUS), hint, fc.boolean(), ({ recipe, bytes: raw }, h, fixCrc) => {
        const bytes = fixCrc ? fixPngCrcs(raw) : raw;
        expectBitmar(
          tally,
          () => {
            const img = decodeImage(bytes, h);
            assert.ok(img.width >= 1 && img.height >= 1 && img.width <= 4096 && img.height <= 4096, `${img.width}×${img.height}`);
            assert.equal(img.data.length, img.width * img.height * 3);
          },
          ['BITMAR_ERR_IMAGE_DECODE', 'BITMAR_ERR_IMAGE_SIZE'],
          recipe,
        );
        if (tally.total % 256 === 0) mem.sample();
      }),
      fuzzParams(),
    );
    report('image bytes (decodeImage)', tally, mem.check(), performance.now() - t0);
    assert.ok(tally.total >= FUZZ_RUNS);
  });
});
