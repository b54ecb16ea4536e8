/**
 * sensor_msgs/Image and CompressedImage CDR → RGB8: every accepted encoding, row padding (step),
 * is_bigendian, big-endian CDR, and each kind of bad input with its drop reason and error code.
 */
import assert from 'node:assert/strict';
import { CdrWriter, EncapsulationKind } from '@foxglove/cdr';
import { encodeMessage } from '../../src/ros2/cdr.js';
import { decodeCompressedImageMessage, decodeImageMessage, parseImageCdr, type ImageResult } from '../../src/ros2/image-decode.js';
import { encodeJpeg, encodePng, packImage } from '../../tools/make-mcap-fixtures.js';
import { testImageDecoder } from './test-image-decoder.js';

function image(width: number, height: number, encoding: string, step: number, data: ArrayLike<number>, isBigEndian = 0): Uint8Array {
  return encodeMessage('sensor_msgs/msg/Image', {
    header: { stamp: { sec: 10, nanosec: 20 }, frame_id: 'cam' },
    height,
    width,
    encoding,
    is_bigendian: isBigEndian,
    step,
    data: Uint8Array.from(data),
  });
}

function ok(r: ImageResult): { width: number; height: number; data: number[] } {
  if (!r.ok) assert.fail(`expected an image, got ${r.reason}: ${r.detail}`);
  return { width: r.image.width, height: r.image.height, data: Array.from(r.image.data) };
}

function dropped(r: ImageResult, reason: string, code: string): void {
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.reason, reason, r.detail);
    assert.equal(r.code, code, r.detail);
  }
}

describe('ros2/image-decode: sensor_msgs/Image → RGB8', () => {
  it('reads the header and takes the pixels as a view, then copies them once into a new array', () => {
    const bytes = image(2, 1, 'rgb8', 6, [1, 2, 3, 4, 5, 6]);
    const view = parseImageCdr(bytes);
    assert.equal(view.stampNs, 10_000_000_020n);
    assert.equal(view.frameId, 'cam');
    assert.equal(view.data.buffer, bytes.buffer, 'pixels are a view into the message');
    const r = decodeImageMessage(bytes);
    assert.deepEqual(ok(r).data, [1, 2, 3, 4, 5, 6]);
    assert.ok(r.ok && r.image.data.buffer !== bytes.buffer, 'the frame owns its pixels');
  });

  it('honours step padding for every layout', () => {
    // 2×2, each row padded with 2 bytes (0xee) that must not leak into the frame.
    const rgbRows = [1, 2, 3, 4, 5, 6, 0xee, 0xee, 7, 8, 9, 10, 11, 12, 0xee, 0xee];
    assert.deepEqual(ok(decodeImageMessage(image(2, 2, 'rgb8', 8, rgbRows))).data, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(ok(decodeImageMessage(image(2, 2, 'bgr8', 8, rgbRows))).data, [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
    const rgba = [1, 2, 3, 99, 4, 5, 6, 99, 0xee, 7, 8, 9, 99, 10, 11, 12, 99, 0xee];
    assert.deepEqual(ok(decodeImageMessage(image(2, 2, 'rgba8', 9, rgba))).data, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(ok(decodeImageMessage(image(2, 2, 'bgra8', 9, rgba))).data, [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
    assert.deepEqual(ok(decodeImageMessage(image(2, 2, 'mono8', 3, [10, 20, 0xee, 30, 40, 0xee]))).data, [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);
  });

  it('keeps the high byte of 16-bit encodings, as is_bigendian says', () => {
    // One pixel 0x1234: little endian 34 12, big endian 12 34 → 0x12 either way.
    assert.deepEqual(ok(decodeImageMessage(image(1, 1, 'mono16', 2, [0x34, 0x12], 0))).data, [0x12, 0x12, 0x12]);
    assert.deepEqual(ok(decodeImageMessage(image(1, 1, 'mono16', 2, [0x12, 0x34], 1))).data, [0x12, 0x12, 0x12]);
    const le = [0x00, 0xa0, 0x00, 0xb0, 0x00, 0xc0];
    assert.deepEqual(ok(decodeImageMessage(image(1, 1, 'rgb16', 6, le, 0))).data, [0xa0, 0xb0, 0xc0]);
    assert.deepEqual(ok(decodeImageMessage(image(1, 1, 'bgr16', 6, le, 0))).data, [0xc0, 0xb0, 0xa0]);
    assert.deepEqual(ok(decodeImageMessage(image(1, 1, 'rgb16', 6, [0xa0, 0, 0xb0, 0, 0xc0, 0], 1))).data, [0xa0, 0xb0, 0xc0]);
  });

  it('converts 4:2:2 YUYV and UYVY with BT.601 limited range', () => {
    // Y0 U Y1 V = 81 90 16 240: pixel 0 is pure red in BT.601 (hand-computed: R 255, G 0, B 0).
    const yuyv = ok(decodeImageMessage(image(2, 1, 'yuv422_yuy2', 4, [81, 90, 16, 240]))).data;
    assert.deepEqual(yuyv.slice(0, 3), [255, 0, 0]);
    const uyvy = ok(decodeImageMessage(image(2, 1, 'uyvy', 4, [90, 81, 240, 16]))).data;
    assert.deepEqual(uyvy, yuyv, 'same pixels in the other byte order');
    assert.deepEqual(ok(decodeImageMessage(image(2, 1, 'yuv422', 4, [90, 81, 240, 16]))).data, yuyv, 'ROS yuv422 is UYVY');
    assert.deepEqual(ok(decodeImageMessage(image(2, 1, 'yuyv', 4, [235, 128, 16, 128]))).data, [255, 255, 255, 0, 0, 0]);
  });

  it('agrees with the fixture packer on a rgb → yuyv/uyvy → rgb round trip', () => {
    const w = 8;
    const h = 2;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb.set(i < 8 ? [200, 40, 40] : [30, 90, 220], i * 3);
    for (const enc of ['yuv422_yuy2', 'uyvy'] as const) {
      const packed = packImage({ width: w, height: h, data: rgb }, enc, w * 2 + 4);
      const back = ok(decodeImageMessage(image(w, h, enc, packed.step, packed.data))).data;
      const worst = Math.max(...back.map((v, i) => Math.abs(v - rgb[i]!)));
      assert.ok(worst <= 3, `${enc}: worst error ${worst}`);
    }
  });

  it('reads big-endian CDR (encapsulation 00 00)', () => {
    const w = new CdrWriter({ kind: EncapsulationKind.CDR_BE });
    w.int32(1);
    w.uint32(0);
    w.string('cam');
    w.uint32(1); // height
    w.uint32(1); // width
    w.string('rgb8');
    w.uint8(0);
    w.uint32(3);
    w.sequenceLength(3);
    w.uint8Array(new Uint8Array([7, 8, 9]), false);
    assert.deepEqual(ok(decodeImageMessage(w.data)).data, [7, 8, 9]);
  });

  it('drops bad images with a reason and an error code', () => {
    dropped(decodeImageMessage(image(2, 1, 'bayer_rggb8', 2, [1, 2])), 'invalid_input', 'BITMAR_ERR_IMAGE_ENCODING');
    dropped(decodeImageMessage(image(2, 2, 'rgb8', 6, [1, 2, 3, 4, 5, 6])), 'invalid_input', 'BITMAR_ERR_IMAGE_SIZE'); // shorter than step×height
    dropped(decodeImageMessage(image(2, 1, 'rgb8', 5, [1, 2, 3, 4, 5, 6])), 'invalid_input', 'BITMAR_ERR_IMAGE_SIZE'); // step < row
    dropped(decodeImageMessage(image(0, 1, 'rgb8', 0, [])), 'invalid_input', 'BITMAR_ERR_IMAGE_SIZE');
    dropped(decodeImageMessage(image(1, 0, 'rgb8', 3, [])), 'invalid_input', 'BITMAR_ERR_IMAGE_SIZE');
    dropped(decodeImageMessage(image(100_000, 100_000, 'mono8', 100_000, [1])), 'too_large', 'BITMAR_ERR_IMAGE_SIZE');
    dropped(decodeImageMessage(image(3, 1, 'yuyv', 8, [1, 2, 3, 4, 5, 6, 7, 8])), 'invalid_input', 'BITMAR_ERR_IMAGE_SIZE'); // odd 4:2:2 width
    const whole = image(2, 1, 'rgb8', 6, [1, 2, 3, 4, 5, 6]);
    dropped(decodeImageMessage(whole.subarray(0, 30)), 'decode_error', 'BITMAR_ERR_ROS2_MESSAGE');
    dropped(decodeImageMessage(whole.subarray(0, whole.length - 2)), 'decode_error', 'BITMAR_ERR_ROS2_MESSAGE');
    dropped(decodeImageMessage(new Uint8Array([0, 1])), 'decode_error', 'BITMAR_ERR_ROS2_MESSAGE');
    dropped(decodeImageMessage(new Uint8Array([7, 7, 7, 7, 1, 2, 3, 4])), 'decode_error', 'BITMAR_ERR_ROS2_MESSAGE');
    // A huge frame_id length must not be read from the larger buffer behind the view.
    const pool = new Uint8Array(4096);
    pool.set([0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0x0f, 0, 0]);
    dropped(decodeImageMessage(pool.subarray(0, 16)), 'decode_error', 'BITMAR_ERR_ROS2_MESSAGE');
  });
});

describe('ros2/image-decode: sensor_msgs/CompressedImage', () => {
  const rgb = { width: 16, height: 8, data: new Uint8Array(16 * 8 * 3).fill(128) };
  const compressed = (format: string, data: Uint8Array): Uint8Array =>
    encodeMessage('sensor_msgs/msg/CompressedImage', { header: { stamp: { sec: 1, nanosec: 0 }, frame_id: 'cam' }, format, data });

  it('decodes JPEG and PNG (RGBA → RGB) through the injected decoder', () => {
    const j = ok(decodeCompressedImageMessage(compressed('rgb8; jpeg compressed bgr8', encodeJpeg(rgb)), testImageDecoder));
    assert.equal(j.width, 16);
    assert.ok(j.data.every((v) => Math.abs(v - 128) <= 3));
    const p = ok(decodeCompressedImageMessage(compressed('png', encodePng(rgb)), testImageDecoder));
    assert.deepEqual(p.data, Array.from(rgb.data));
  });

  it('drops corrupt, depth and empty payloads', () => {
    dropped(decodeCompressedImageMessage(compressed('jpeg', encodeJpeg(rgb).subarray(0, 40)), testImageDecoder), 'decode_error', 'BITMAR_ERR_IMAGE_DECODE');
    dropped(decodeCompressedImageMessage(compressed('jpeg', new Uint8Array([1, 2, 3])), testImageDecoder), 'decode_error', 'BITMAR_ERR_IMAGE_DECODE');
    dropped(decodeCompressedImageMessage(compressed('16UC1; compressedDepth png', encodePng(rgb)), testImageDecoder), 'invalid_input', 'BITMAR_ERR_IMAGE_ENCODING');
    dropped(decodeCompressedImageMessage(compressed('jpeg', new Uint8Array(0)), testImageDecoder), 'decode_error', 'BITMAR_ERR_IMAGE_DECODE');
    const liar = (): { width: number; height: number; data: Uint8Array } => ({ width: 50_000, height: 50_000, data: new Uint8Array(3) });
    dropped(decodeCompressedImageMessage(compressed('jpeg', encodeJpeg(rgb)), liar), 'too_large', 'BITMAR_ERR_IMAGE_SIZE');
  });
});
