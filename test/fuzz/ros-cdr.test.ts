/**
 * Fuzz: ROS 2 CDR through the shared input decoder (src/ros2/inputs.ts, used by the live ROS 2
 * source and bag replay): sensor_msgs/Image, sensor_msgs/CompressedImage and std_msgs/String.
 * Inputs are mutated valid messages, truncations, random bytes, and messages written field by field
 * with lying lengths, unknown encodings, odd steps, both byte orders and huge dimensions.
 * Contract: a Frame/Prompt within the limits, or a drop with a DropReason whose detail names a
 * BITMAR_ERR_* code. Never a throw.
 */
import assert from 'node:assert/strict';
import { CdrWriter, EncapsulationKind } from '@foxglove/cdr';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { encodeMessage } from '../../src/ros2/cdr.js';
import { DEFAULT_IMAGE_LIMITS, SUPPORTED_ENCODINGS } from '../../src/ros2/image-decode.js';
import { createInputDecoder, type InputResult } from '../../src/ros2/inputs.js';
import { COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, STRING_TYPE } from '../../src/ros2/messages.js';
import { encodePng } from '../../src/sources/image/decode.js';
import { bytesFrom, DROP_REASONS, FUZZ_RUNS, fuzzParams, report, Tally, watchMemory, type Recipe } from './fuzz-kit.js';

const EDGE = [0, 1, 2, 3, 4, 0xff, 0x100, 0xffff, 0x10000, 8192, 8193, 0x7fffffff, 0x80000000, 0xffffffff];
const header = { stamp: { sec: 1_700_000_000, nanosec: 5 }, frame_id: 'camera_optical' };

const PATTERN = Uint8Array.from({ length: 65536 }, (_, i) => (i * 31) & 0xff);

/** `n` bytes of a fixed pattern (n ≤ 65536), a view: the writer copies it. */
function pixels(n: number): Uint8Array {
  return PATTERN.subarray(0, n);
}

const JPEG = new Uint8Array(jpeg.encode({ width: 12, height: 8, data: Buffer.from(pixels(12 * 8 * 4)) }, 70).data);
const PNG = encodePng({ width: 5, height: 4, data: pixels(5 * 4 * 3) });

const IMAGES: readonly Uint8Array[] = [
  encodeMessage(IMAGE_TYPE, { header, height: 2, width: 3, encoding: 'rgb8', is_bigendian: 0, step: 9, data: pixels(18) }),
  encodeMessage(IMAGE_TYPE, { header, height: 3, width: 2, encoding: 'bgr8', is_bigendian: 0, step: 8, data: pixels(24) }),
  encodeMessage(IMAGE_TYPE, { header, height: 2, width: 2, encoding: 'mono16', is_bigendian: 1, step: 4, data: pixels(8) }),
  encodeMessage(IMAGE_TYPE, { header, height: 2, width: 4, encoding: 'yuv422_yuy2', is_bigendian: 0, step: 8, data: pixels(16) }),
  encodeMessage(IMAGE_TYPE, { header, height: 1, width: 2, encoding: 'rgba16', is_bigendian: 0, step: 16, data: pixels(16) }),
];
const COMPRESSED: readonly Uint8Array[] = [
  encodeMessage(COMPRESSED_IMAGE_TYPE, { header, format: 'jpeg', data: JPEG }),
  encodeMessage(COMPRESSED_IMAGE_TYPE, { header, format: 'png', data: PNG }),
  encodeMessage(COMPRESSED_IMAGE_TYPE, { header, format: 'bgr8; jpeg compressed bgr8', data: JPEG }),
];
const STRINGS: readonly Uint8Array[] = [encodeMessage(STRING_TYPE, { data: 'describe the scene' }), encodeMessage(STRING_TYPE, { data: 'wo ist der rote Kreis? 🟥' })];

const dim = fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(...EDGE));
const encodingArb = fc.oneof(fc.constantFrom(...SUPPORTED_ENCODINGS), fc.constantFrom('RGB8', 'bayer_rggb8', '32FC1', '', 'compressedDepth', 'yuv422 '), fc.string({ maxLength: 12 }));

/** A CDR header: stamp, frame_id. */
function writeHeader(w: CdrWriter, sec: number, frameId: string): void {
  w.int32(sec);
  w.uint32(7);
  w.string(frameId);
}

/** sensor_msgs/Image written field by field; `claim` is the data length the sequence declares. */
const imageByFields = fc
  .record({
    bigEndian: fc.boolean(),
    sec: fc.integer({ min: -2, max: 2 ** 31 - 1 }),
    frameId: fc.string({ maxLength: 16 }),
    height: dim,
    width: dim,
    encoding: encodingArb,
    isBigEndian: fc.nat({ max: 255 }),
    step: fc.oneof(fc.nat({ max: 200 }), fc.constantFrom(...EDGE)),
    size: fc.nat({ max: 3000 }),
    lie: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: -64, max: 64 }), weight: 1 }, { arbitrary: fc.constantFrom(...EDGE), weight: 1 }),
  })
  .map((f) => {
    const w = new CdrWriter({ kind: f.bigEndian ? EncapsulationKind.CDR_BE : EncapsulationKind.CDR_LE });
    writeHeader(w, f.sec, f.frameId);
    w.uint32(f.height).uint32(f.width).string(f.encoding).uint8(f.isBigEndian).uint32(f.step);
    // Often a size that fits the declared geometry, so conversion runs; sometimes anything.
    const fits = f.size % 2 === 0 ? Math.min(f.step * f.height, 65536) : f.size;
    w.uint32((fits + f.lie) >>> 0);
    w.uint8Array(pixels(fits), false);
    return w.data;
  });

const compressedByFields = fc
  .record({
    bigEndian: fc.boolean(),
    frameId: fc.string({ maxLength: 16 }),
    format: fc.oneof(fc.constantFrom('jpeg', 'png', 'rgb8; jpeg compressed bgr8', '16UC1; compressedDepth png', ''), fc.string({ maxLength: 10 })),
    data: bytesFrom([JPEG, PNG], { randomMaxBytes: 64 }),
    lie: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constantFrom(...EDGE), weight: 1 }),
  })
  .map((f) => {
    const w = new CdrWriter({ kind: f.bigEndian ? EncapsulationKind.CDR_BE : EncapsulationKind.CDR_LE });
    writeHeader(w, 1, f.frameId);
    w.string(f.format);
    w.uint32((f.data.bytes.length + f.lie) >>> 0);
    w.uint8Array(f.data.bytes, false);
    return w.data;
  });

/** std_msgs/String with arbitrary bytes (bad UTF-8 included) and a possibly lying length. */
const stringByFields = fc
  .record({ bytes: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new TextEncoder().encode(s))), long: fc.nat({ max: 3000 }), lie: fc.integer({ min: -3, max: 3 }) })
  .map((f) => {
    const body = f.long > 2800 ? new TextEncoder().encode('x'.repeat(f.long)) : f.bytes;
    const out = new Uint8Array(4 + 4 + body.length + 1);
    const v = new DataView(out.buffer);
    out.set([0, 1, 0, 0]);
    v.setUint32(4, (body.length + 1 + f.lie) >>> 0, true);
    out.set(body, 8);
    return out;
  });

function inputs(corpus: readonly Uint8Array[], byFields: fc.Arbitrary<Uint8Array>): fc.Arbitrary<{ recipe: Recipe | 'fields'; bytes: Uint8Array }> {
  return fc.oneof({ arbitrary: bytesFrom(corpus), weight: 1 }, { arbitrary: byFields.map((bytes) => ({ recipe: 'fields' as const, bytes })), weight: 1 });
}

/**
 * Drops whose detail does not name a code yet. src/ros2/inputs.ts `prompt` passes a CDR decode
 * error on as `${source}: ${message}`; the fix (reported on issue 9) is to write
 * `${source}: ${e.code}: ${message}` as the image paths do. Delete this entry with that fix.
 */
const KNOWN_UNCODED: ReadonlySet<string> = new Set(['/prompt decode_error']);

/** Checks one outcome and tallies it under the error code its detail names. */
function check<T>(tally: Tally, res: InputResult<T>, recipe: string, accepted: (v: T) => void): void {
  if (res.ok) {
    accepted(res.value);
    tally.accept(recipe);
    return;
  }
  assert.equal(res.drop.stage, 'fuzz');
  assert.ok(DROP_REASONS.has(res.drop.reason), `unknown drop reason ${res.drop.reason}`);
  const code = /BITMAR_ERR_[A-Z0-9_]+/.exec(res.drop.detail ?? '');
  if (code === null && KNOWN_UNCODED.has(`${res.drop.detail?.split(':')[0] ?? ''} ${res.drop.reason}`)) {
    tally.reject(`${res.drop.reason}/(no code yet)`, recipe);
    return;
  }
  assert.ok(code, `drop without an error code: ${res.drop.reason}: ${res.drop.detail}`);
  tally.reject(`${res.drop.reason}/${code[0]}`, recipe);
}

function frameOk(f: { width: number; height: number; data: Uint8Array }): void {
  assert.ok(f.width >= 1 && f.height >= 1 && f.width <= DEFAULT_IMAGE_LIMITS.maxWidth && f.height <= DEFAULT_IMAGE_LIMITS.maxHeight);
  assert.equal(f.data.length, f.width * f.height * 3);
}

describe('fuzz: ROS 2 CDR → input decoder (Image, CompressedImage, String)', function () {
  this.timeout(120_000);
  const decoder = createInputDecoder({ stage: 'fuzz' });

  const cases: [string, readonly Uint8Array[], fc.Arbitrary<Uint8Array>, (b: Uint8Array, t: Tally, r: string) => void][] = [
    ['sensor_msgs/Image', IMAGES, imageByFields, (b, t, r) => check(t, decoder.image('/image_raw', b), r, frameOk)],
    ['sensor_msgs/CompressedImage', COMPRESSED, compressedByFields, (b, t, r) => check(t, decoder.compressed('/image_raw/compressed', b), r, frameOk)],
    [
      'std_msgs/String (prompt)',
      STRINGS,
      stringByFields,
      (b, t, r) =>
        check(t, decoder.prompt('/prompt', b), r, (p) => {
          assert.ok(p.text.length <= 1024);
          assert.ok(!p.text.includes('\uFFFD'));
        }),
    ],
  ];

  for (const [name, corpus, byFields, run] of cases) {
    it(`${name}: a value or a counted drop with a code, never a throw`, () => {
      for (const seed of corpus) run(seed, new Tally(), 'seed');
      const tally = new Tally();
      const mem = watchMemory();
      const t0 = performance.now();
      fc.assert(
        fc.property(inputs(corpus, byFields), ({ recipe, bytes }) => {
          run(bytes, tally, recipe);
          if (tally.total % 256 === 0) mem.sample();
        }),
        fuzzParams(),
      );
      report(`ROS CDR ${name}`, tally, mem.check(), performance.now() - t0);
      assert.ok(tally.total >= FUZZ_RUNS);
    });
  }
});
