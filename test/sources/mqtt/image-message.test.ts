import assert from 'node:assert/strict';
import { DEFAULT_IMAGE_LIMITS } from '../../../src/ros2/image-decode.js';
import { decodeImagePayload, peekImage, splitRawEnvelope } from '../../../src/sources/mqtt/image-message.js';
import { makeJpeg, makePng, testDecoder } from '../../mqtt/helpers/images.js';

const decode = (bytes: Uint8Array, raw?: Parameters<typeof decodeImagePayload>[1]) => decodeImagePayload(bytes, raw, testDecoder);

describe('MQTT image payloads', () => {
  it('reads JPEG and PNG sizes from their headers and sees truncation', () => {
    const jpeg = makeJpeg(40, 30);
    assert.deepEqual(peekImage(jpeg), { width: 40, height: 30, complete: true });
    assert.equal(peekImage(jpeg.subarray(0, jpeg.length - 40))?.complete, false);
    const png = makePng(9, 7);
    assert.deepEqual(peekImage(png), { width: 9, height: 7, complete: true });
    assert.equal(peekImage(png.subarray(0, png.length - 12))?.complete, false);
    assert.equal(peekImage(Buffer.from('hello')), undefined);
  });

  it('decodes JPEG and PNG to RGB8', () => {
    const j = decode(makeJpeg(32, 24));
    assert.ok(j.ok && j.image.width === 32 && j.image.data.length === 32 * 24 * 3);
    const p = decode(makePng(8, 8));
    assert.ok(p.ok && p.image.data.length === 8 * 8 * 3, 'RGBA from pngjs loses its alpha');
  });

  it('refuses non-images, truncated and empty files as decode_error, and huge headers as too_large before decoding', () => {
    const notImage = decode(Buffer.from('GET / HTTP/1.1'));
    assert.ok(!notImage.ok && notImage.reason === 'decode_error' && /not a JPEG or PNG \(starts 47 45 54 20\)/.test(notImage.detail));
    const jpeg = makeJpeg(32, 24);
    const truncated = decode(jpeg.subarray(0, 200));
    assert.ok(!truncated.ok && truncated.reason === 'decode_error' && /truncated JPEG/.test(truncated.detail), JSON.stringify(truncated));
    assert.equal(decode(Buffer.alloc(0)).ok, false);
    // A PNG header claiming 100000×100000 pixels: refused without calling the decoder.
    const png = Buffer.from(makePng(8, 8));
    png.writeUInt32BE(100_000, 16);
    png.writeUInt32BE(100_000, 20);
    let called = false;
    const res = decodeImagePayload(png, undefined, () => {
      called = true;
      throw new Error('unreachable');
    });
    assert.ok(!res.ok && res.reason === 'too_large' && !called);
    const throwing = decodeImagePayload(makePng(8, 8), undefined, () => {
      throw new TypeError('boom');
    });
    assert.ok(!throwing.ok && throwing.code === 'BITMAR_ERR_IMAGE_DECODE' && /boom/.test(throwing.detail));
  });

  it('converts raw pixels described by a header: bgr8 with row padding, mono8, yuyv', () => {
    // 2×2 bgr8 with a step of 8 (2 bytes of padding per row).
    const bgr = Uint8Array.from([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0]);
    const r = decode(bgr, { encoding: 'bgr8', width: '2', height: '2', step: '8' });
    assert.ok(r.ok);
    assert.deepEqual([...r.image.data], [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
    const mono = decode(Uint8Array.from([10, 20]), { encoding: 'mono8', width: 2, height: 1 });
    assert.ok(mono.ok && mono.image.data.join() === '10,10,10,20,20,20');
    const yuyv = decode(Uint8Array.from([128, 128, 128, 128]), { encoding: 'YUYV', width: '2', height: '1' });
    assert.ok(yuyv.ok && yuyv.image.data.length === 6);
  });

  it('refuses bad raw headers with a reason', () => {
    const enc = decode(Buffer.alloc(12), { encoding: 'rgb565', width: '2', height: '2' });
    assert.ok(!enc.ok && enc.reason === 'invalid_input' && enc.code === 'BITMAR_ERR_IMAGE_ENCODING');
    const short = decode(Buffer.alloc(10), { encoding: 'rgb8', width: '2', height: '2' });
    assert.ok(!short.ok && /data has 10 bytes/.test(short.detail));
    const nan = decode(Buffer.alloc(12), { encoding: 'rgb8', width: 'two', height: '2' });
    assert.ok(!nan.ok && /width must be/.test(nan.detail));
    const huge = decode(Buffer.alloc(12), { encoding: 'rgb8', width: '100000', height: '100000' });
    assert.ok(!huge.ok && huge.reason === 'too_large');
    assert.equal(DEFAULT_IMAGE_LIMITS.maxWidth, 8192);
  });

  it('splits the MQTT 3.1.1 raw envelope: JSON header line, newline, pixels', () => {
    const { header, data } = splitRawEnvelope(Buffer.concat([Buffer.from('{"encoding":"rgb8","width":1,"height":1}\n'), Buffer.from([1, 2, 3])]));
    assert.deepEqual(header, { encoding: 'rgb8', width: 1, height: 1 });
    assert.deepEqual([...data], [1, 2, 3]);
    assert.throws(() => splitRawEnvelope(Buffer.alloc(2000, 1)), /JSON header line/);
    assert.throws(() => splitRawEnvelope(Buffer.from('[1]\n')), /JSON object/);
    assert.throws(() => splitRawEnvelope(Buffer.from('{x\n')), /not JSON/);
  });
});
