/** Small test images (jpeg-js / pngjs encoders) and a decoder to inject while src/sources/image/decode.ts is absent. */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { BitmarError } from '../../../src/errors.js';
import { isJpeg } from '../../../src/sources/mqtt/image-message.js';

/** RGBA pixels of a w×h gradient. */
function rgba(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data[i * 4] = (i * 7) & 255;
    data[i * 4 + 1] = (i * 3) & 255;
    data[i * 4 + 2] = 128;
    data[i * 4 + 3] = 255;
  }
  return data;
}

export function makeJpeg(w = 32, h = 24): Buffer {
  return Buffer.from(jpeg.encode({ width: w, height: h, data: rgba(w, h) }, 80).data);
}

export function makePng(w = 8, h = 8): Buffer {
  const png = new PNG({ width: w, height: h });
  rgba(w, h).copy(png.data);
  return PNG.sync.write(png);
}

/** JPEG via jpeg-js, PNG via pngjs; throws BitmarError like decodeImage. */
export function testDecoder(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  try {
    if (isJpeg(bytes)) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 64 });
      return { width: img.width, height: img.height, data: img.data };
    }
    const png = PNG.sync.read(Buffer.from(bytes));
    return { width: png.width, height: png.height, data: new Uint8Array(png.data) };
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', (e as Error).message, { cause: e });
  }
}
