/**
 * A JPEG/PNG decoder for tests (jpeg-js, pngjs) with the signature of src/sources/image/decode.ts
 * `decodeImage`, so the ROS and bag sources can be tested without depending on that module.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { CompressedDecoder } from '../../src/ros2/image-decode.js';

export const testImageDecoder: CompressedDecoder = (bytes) => {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
    return { width: img.width, height: img.height, data: img.data };
  }
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    const png = PNG.sync.read(Buffer.from(bytes));
    return { width: png.width, height: png.height, data: new Uint8Array(png.data) }; // RGBA
  }
  throw new Error('not a JPEG or PNG');
};
