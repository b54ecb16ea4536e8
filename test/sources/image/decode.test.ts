import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { isBitmarError } from '../../../src/errors.js';
import { decodeImage, encodePng, encodePpm, sniffFormat } from '../../../src/sources/image/decode.js';

function pattern(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height * 3).map((_, k) => (k * 29 + (k >> 7)) & 255);
}

/** A hand-built PNG: IHDR (no interlace), optional PLTE, one IDAT of filter-0 rows. */
function makePng(width: number, height: number, colorType: number, bitDepth: number, rows: number[][], plte?: number[]): Uint8Array {
  const chunk = (type: string, body: Uint8Array): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const raw = Buffer.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(plte ? [chunk('PLTE', Buffer.from(plte))] : []),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function isDecodeOrSize(e: unknown): boolean {
  return isBitmarError(e, 'BITMAR_ERR_IMAGE_DECODE') || isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE');
}

function expectCode(fn: () => unknown, code: 'BITMAR_ERR_IMAGE_DECODE' | 'BITMAR_ERR_IMAGE_SIZE', message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isBitmarError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

describe('decodeImage', () => {
  describe('PNG', () => {
    it('round-trips RGB8 through encodePng', () => {
      const data = pattern(37, 21);
      const img = decodeImage(encodePng({ width: 37, height: 21, data }));
      assert.deepEqual([img.width, img.height, img.format], [37, 21, 'png']);
      assert.deepEqual(img.data, data);
    });
    it('decodes palette, grey, low bit depth, 16-bit and alpha, dropping alpha', () => {
      const palette = decodeImage(makePng(2, 1, 3, 8, [[1, 0]], [10, 20, 30, 200, 100, 50]));
      assert.deepEqual([...palette.data], [200, 100, 50, 10, 20, 30]);
      const grey = decodeImage(makePng(2, 1, 0, 8, [[7, 250]]));
      assert.deepEqual([...grey.data], [7, 7, 7, 250, 250, 250]);
      const grey2 = decodeImage(makePng(4, 1, 0, 2, [[0b00011011]]));
      assert.deepEqual([...grey2.data], [0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
      const rgb16 = decodeImage(makePng(1, 1, 2, 16, [[0x12, 0x34, 0xff, 0xff, 0x00, 0x00]]));
      assert.deepEqual([...rgb16.data], [18, 255, 0]);
      const rgba = decodeImage(makePng(2, 1, 6, 8, [[1, 2, 3, 0, 4, 5, 6, 128]]));
      assert.deepEqual([...rgba.data], [1, 2, 3, 4, 5, 6]);
      const greyAlpha = decodeImage(makePng(1, 1, 4, 8, [[99, 0]]));
      assert.deepEqual([...greyAlpha.data], [99, 99, 99]);
    });
    it('rejects oversized images from the header, before decoding', () => {
      const png = makePng(5000, 1, 0, 8, [new Array(5000).fill(0)]);
      expectCode(() => decodeImage(png), 'BITMAR_ERR_IMAGE_SIZE', /5000×1, over the 4096×4096 limit/);
      expectCode(() => decodeImage(encodePng({ width: 20, height: 20, data: pattern(20, 20) }), undefined, { maxWidth: 10 }), 'BITMAR_ERR_IMAGE_SIZE');
    });
    it('turns every truncation and corruption into a BitmarError', () => {
      const png = encodePng({ width: 16, height: 16, data: pattern(16, 16) });
      for (let cut = 0; cut < png.length; cut += 3) {
        try {
          decodeImage(png.subarray(0, cut));
          assert.fail(`truncated at ${cut} decoded`);
        } catch (e) {
          assert.ok(isDecodeOrSize(e), `cut ${cut}: ${String(e)}`);
        }
      }
      const flipped = Uint8Array.from(png);
      flipped[40] = flipped[40]! ^ 0xff; // inside IDAT: CRC mismatch
      expectCode(() => decodeImage(flipped), 'BITMAR_ERR_IMAGE_DECODE', /PNG image/);
    });
  });

  describe('JPEG', () => {
    const rgba = new Uint8Array(48 * 32 * 4).map((_, k) => (k % 4 === 3 ? 255 : 120 + ((k * 3) % 40)));
    const jpg = new Uint8Array(jpeg.encode({ width: 48, height: 32, data: rgba }, 95).data);

    it('decodes to RGB8 close to the source', () => {
      const img = decodeImage(jpg, 'jpeg');
      assert.deepEqual([img.width, img.height, img.format, img.data.length], [48, 32, 'jpeg', 48 * 32 * 3]);
      let err = 0;
      for (let p = 0; p < 48 * 32; p++) for (let c = 0; c < 3; c++) err += Math.abs(img.data[p * 3 + c]! - rgba[p * 4 + c]!);
      assert.ok(err / (48 * 32 * 3) < 6, `mean error ${err / (48 * 32 * 3)}`);
    });
    it('enforces the size limit from the SOF header', () => {
      expectCode(() => decodeImage(jpg, undefined, { maxWidth: 40 }), 'BITMAR_ERR_IMAGE_SIZE', /JPEG image is 48×32/);
    });
    it('turns truncated and corrupted data into BitmarError', () => {
      for (let cut = 1; cut < jpg.length; cut += 11) {
        try {
          decodeImage(jpg.subarray(0, cut));
        } catch (e) {
          assert.ok(isDecodeOrSize(e), `cut ${cut}: ${String(e)}`);
        }
      }
      expectCode(() => decodeImage(jpg.subarray(0, 3)), 'BITMAR_ERR_IMAGE_DECODE', /JPEG image: no frame header/);
    });
  });

  describe('PPM / PGM', () => {
    it('round-trips P6 through encodePpm', () => {
      const data = pattern(13, 7);
      const img = decodeImage(encodePpm({ width: 13, height: 7, data }));
      assert.deepEqual([img.width, img.height, img.format], [13, 7, 'ppm']);
      assert.deepEqual(img.data, data);
    });
    it('reads P3 with comments, P5/P2 grey, small and 16-bit maxval', () => {
      const p3 = Buffer.from('P3\n# a comment\n2 1 # trailing\n255\n255 0 0   0 0 255\n');
      assert.deepEqual([...decodeImage(p3).data], [255, 0, 0, 0, 0, 255]);
      const p2 = Buffer.from('P2 2 1 15 0 15');
      assert.deepEqual([...decodeImage(p2).data], [0, 0, 0, 255, 255, 255]);
      const p5 = Buffer.concat([Buffer.from('P5 2 1 255\n'), Buffer.from([9, 200])]);
      assert.deepEqual([...decodeImage(p5).data], [9, 9, 9, 200, 200, 200]);
      const p6x16 = Buffer.concat([Buffer.from('P6 1 1 65535\n'), Buffer.from([0xff, 0xff, 0x80, 0x00, 0x00, 0x00])]);
      assert.deepEqual([...decodeImage(p6x16).data], [255, 128, 0]);
    });
    it('names what is wrong', () => {
      expectCode(() => decodeImage(Buffer.from('P6 4 4 255\n\x01\x02')), 'BITMAR_ERR_IMAGE_DECODE', /truncated: 4×4 needs 48 bytes/);
      expectCode(() => decodeImage(Buffer.from('P6 4 x 255\n')), 'BITMAR_ERR_IMAGE_DECODE', /height is missing/);
      expectCode(() => decodeImage(Buffer.from('P6 0 4 255\n')), 'BITMAR_ERR_IMAGE_SIZE', /at least 1/);
      expectCode(() => decodeImage(Buffer.from('P6 99999 4 255\n')), 'BITMAR_ERR_IMAGE_SIZE', /over the/);
      expectCode(() => decodeImage(Buffer.from('P3 1 1 255 1 2')), 'BITMAR_ERR_IMAGE_DECODE', /needs 3 samples/);
      expectCode(() => decodeImage(Buffer.from('P3 1 1 255 1 2 x  ')), 'BITMAR_ERR_IMAGE_DECODE', /sample 2 of 3/);
      expectCode(() => decodeImage(Buffer.from('P3 4096 4096 255 1')), 'BITMAR_ERR_IMAGE_DECODE', /truncated/);
      expectCode(() => decodeImage(Buffer.from('P2 1 1 10 11')), 'BITMAR_ERR_IMAGE_DECODE', /above maxval/);
      expectCode(() => decodeImage(Buffer.from('P6 1 1 0\n\0\0\0')), 'BITMAR_ERR_IMAGE_DECODE', /maxval 0/);
    });
  });

  describe('format detection and limits', () => {
    it('sniffs magic bytes', () => {
      assert.equal(sniffFormat(encodePng({ width: 1, height: 1, data: new Uint8Array(3) })), 'png');
      assert.equal(sniffFormat(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0])), 'jpeg');
      assert.equal(sniffFormat(Buffer.from('P6\n')), 'ppm');
      assert.equal(sniffFormat(Buffer.from('GIF89a')), undefined);
    });
    it('rejects empty, unknown and too large inputs with actionable messages', () => {
      expectCode(() => decodeImage(new Uint8Array(0)), 'BITMAR_ERR_IMAGE_DECODE', /empty/);
      expectCode(() => decodeImage(Buffer.from('GIF89a....'), 'png'), 'BITMAR_ERR_IMAGE_DECODE', /unrecognised image format .*expected PNG.*supported: PNG, JPEG/);
      expectCode(() => decodeImage(new Uint8Array(100).fill(0x50), undefined, { maxBytes: 99 }), 'BITMAR_ERR_IMAGE_SIZE', /100 bytes, over the 99-byte limit/);
    });
    it('never throws anything but a BitmarError on mutated inputs', () => {
      const seeds = [
        encodePng({ width: 9, height: 5, data: pattern(9, 5) }),
        new Uint8Array(jpeg.encode({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 4).fill(90) }, 80).data),
        encodePpm({ width: 4, height: 3, data: pattern(4, 3) }),
        Buffer.from('P3 2 2 255 1 2 3 4 5 6 7 8 9 10 11 12'),
      ];
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: seeds.length - 1 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
          fc.option(fc.nat(), { nil: undefined }),
          (which, edits, cut) => {
            const bytes = Uint8Array.from(seeds[which]!);
            for (const [at, v] of edits) bytes[at % bytes.length] = v;
            const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
            try {
              const img = decodeImage(input, undefined, { maxWidth: 512, maxHeight: 512 });
              assert.equal(img.data.length, img.width * img.height * 3);
            } catch (e) {
              assert.ok(isDecodeOrSize(e), String(e));
            }
          },
        ),
        { numRuns: 400 },
      );
    });
  });
});
