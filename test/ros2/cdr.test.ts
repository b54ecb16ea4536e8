/**
 * Message encoding against the real ROS 2 definitions (@foxglove/rosmsg-msgs-common, our .msg
 * files): CDR round trips, byte layouts checked by hand against XCDR1 (OMG CDR §9.3: 4-byte
 * encapsulation header 00 01 00 00 for little endian, then each primitive aligned to its own size
 * counted from the byte after the header; strings are uint32 length incl. NUL, bytes, NUL), and the
 * MCAP ros2msg schema texts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from '@foxglove/rosmsg';
import { decodeMessage, encodeMessage, nsFromTime, timeFromNs } from '../../src/ros2/cdr.js';
import { BITMAR_MSGS_DIR, definitionsFor, parseMsgText, ros2msgSchema, stringifyRos2 } from '../../src/ros2/definitions.js';
import {
  CAPTION_TYPE,
  captionMessage,
  captionTokenMessage,
  diagnosticArrayMessage,
  encodeCaption,
  memoryEventMessage,
} from '../../src/ros2/messages.js';
import type { CaptionToken } from '../../src/types.js';
import { sampleCaption } from './samples.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();


describe('ros2/cdr: CDR against the real definitions', () => {
  it('lays out a 2×1 rgb8 sensor_msgs/Image byte for byte', () => {
    const bytes = encodeMessage('sensor_msgs/msg/Image', {
      header: { stamp: { sec: 1, nanosec: 2 }, frame_id: 'cam' },
      height: 1,
      width: 2,
      encoding: 'rgb8',
      is_bigendian: 0,
      step: 6,
      data: new Uint8Array([1, 2, 3, 4, 5, 6]),
    });
    // prettier-ignore
    const expected = [
      0x00, 0x01, 0x00, 0x00,             // encapsulation: CDR_LE, options 0
      0x01, 0x00, 0x00, 0x00,             // @0  header.stamp.sec      int32 1
      0x02, 0x00, 0x00, 0x00,             // @4  header.stamp.nanosec  uint32 2
      0x04, 0x00, 0x00, 0x00,             // @8  frame_id length 4 ("cam" + NUL)
      0x63, 0x61, 0x6d, 0x00,             // @12 "cam\0"
      0x01, 0x00, 0x00, 0x00,             // @16 height 1
      0x02, 0x00, 0x00, 0x00,             // @20 width 2
      0x05, 0x00, 0x00, 0x00,             // @24 encoding length 5
      0x72, 0x67, 0x62, 0x38, 0x00,       // @28 "rgb8\0"
      0x00,                               // @33 is_bigendian uint8
      0x00, 0x00,                         // @34 padding: step is uint32, aligned to 4
      0x06, 0x00, 0x00, 0x00,             // @36 step 6
      0x06, 0x00, 0x00, 0x00,             // @40 data length 6
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // @44 data
    ];
    assert.equal(hex(bytes), hex(new Uint8Array(expected)));
  });

  it('lays out std_msgs/String and aligns a uint64 after a short header in bitmar_msgs/Caption', () => {
    assert.equal(hex(encodeMessage('std_msgs/msg/String', { data: 'hi' })), '00 01 00 00 03 00 00 00 68 69 00');
    const c = encodeCaption({ ...sampleCaption, frame: { ...sampleCaption.frame, stampNs: 5n, frameId: '' } });
    // header: sec @0, nanosec @4, frame_id "" = length 1 + NUL @8..12 → seq (uint64) pads to @16.
    assert.equal(hex(c.subarray(4, 24)), '00 00 00 00 05 00 00 00 01 00 00 00 00 00 00 00 07 00 00 00');
    assert.equal(hex(c.subarray(24, 28)), '00 00 00 00', 'high half of seq 7');
  });

  it('round-trips every message the node writes', () => {
    const token: CaptionToken = { seq: 7, index: 2, tokenId: 13, piece: 'circle', text: 'a red circle', frame: sampleCaption.frame };
    const cases: [string, Record<string, unknown>][] = [
      [CAPTION_TYPE, captionMessage(sampleCaption)],
      ['bitmar_msgs/msg/CaptionToken', captionTokenMessage(token)],
      ['bitmar_msgs/msg/MemoryEvent', memoryEventMessage(3_000_000_001n, { kind: 'merge', slot: 4, caption: 'a red circle', source: '/cam', detail: 'similarity 0.97' })],
      [
        'diagnostic_msgs/msg/DiagnosticArray',
        diagnosticArrayMessage(9n, [{ level: 'warn', name: 'bitmar_node: pipeline', message: 'drops', values: { fps: 2.5, dropped: 3, ok: true } }]),
      ],
      ['std_msgs/msg/String', { data: 'describe the scene' }],
    ];
    for (const [type, msg] of cases) {
      const back = decodeMessage<Record<string, unknown>>(type, encodeMessage(type, msg));
      assert.deepEqual(normalize(back), normalize(msg), type);
    }
    const caption = decodeMessage<Record<string, unknown>>(CAPTION_TYPE, encodeCaption(sampleCaption));
    assert.deepEqual(caption.header, { stamp: { sec: 1_700_000_000, nanosec: 123_456_789 }, frame_id: 'camera_optical' });
    assert.equal(caption.seq, 7n);
    assert.equal(caption.episode_slot, 3);
    assert.deepEqual(Array.from(caption.token_ids as Int32Array), [11, 12, 13]);
  });

  it('refuses truncated CDR instead of reading past the end of a larger buffer', () => {
    const whole = encodeMessage('std_msgs/msg/String', { data: 'describe the scene' });
    const pool = new Uint8Array(whole.length + 64).fill(0x41);
    pool.set(whole.subarray(0, 12));
    assert.throws(() => decodeMessage('std_msgs/msg/String', pool.subarray(0, 12)), { code: 'BITMAR_ERR_ROS2_MESSAGE' });
  });

  it('converts times both ways', () => {
    assert.deepEqual(timeFromNs(1_500_000_000n), { sec: 1, nanosec: 500_000_000 });
    assert.equal(nsFromTime({ sec: 2, nanosec: 5 }), 2_000_000_005n);
    assert.deepEqual(timeFromNs(-5n), { sec: 0, nanosec: 0 });
  });
});

describe('ros2/definitions: bitmar_msgs and ros2msg schemas', () => {
  it('parses every .msg, .srv and .action of msg/ with the ROS 2 grammar', () => {
    for (const dir of ['msg', 'srv', 'action']) {
      const files = readdirSync(new URL(`${dir}/`, BITMAR_MSGS_DIR));
      assert.ok(files.length > 0, dir);
      for (const f of files) {
        const text = readFileSync(new URL(`${dir}/${f}`, BITMAR_MSGS_DIR), 'utf8');
        const parts = text.split(/^---$/m);
        assert.equal(parts.length, dir === 'msg' ? 1 : dir === 'srv' ? 2 : 3, f);
        for (const part of parts) {
          const def = parseMsgText(part, 'bitmar_msgs');
          for (const field of def.definitions) if (field.isComplex === true) assert.ok(definitionsFor(field.type).length > 0, `${f}: ${field.type}`);
        }
      }
    }
  });

  it('writes a ros2msg schema that parses back to the same definitions, dependencies included', () => {
    for (const type of [CAPTION_TYPE, 'bitmar_msgs/msg/MemoryEvent', 'sensor_msgs/msg/Image', 'diagnostic_msgs/msg/DiagnosticArray', 'std_msgs/msg/String']) {
      const text = ros2msgSchema(type);
      const parsed = parse(text, { ros2: true });
      const expected = definitionsFor(type);
      // Plus a builtin_interfaces/Time section wherever a stamp appears.
      assert.ok(parsed.length >= expected.length && parsed.length <= expected.length + 1, type);
      const byName = new Map(parsed.slice(1).map((d) => [d.name, d]));
      assert.deepEqual(fields(parsed[0]!), fields(expected[0]!), type);
      for (const dep of expected.slice(1)) assert.deepEqual(fields(byName.get(dep.name)!), fields(dep), `${type} → ${dep.name}`);
    }
    const caption = ros2msgSchema(CAPTION_TYPE);
    assert.match(caption, /^# A caption of one batch/);
    assert.match(caption, /\n={80}\nMSG: std_msgs\/Header\n/);
    assert.match(caption, /\nMSG: builtin_interfaces\/Time\nint32 sec\nuint32 nanosec\n/);
  });

  it('stringifies time back to builtin_interfaces/Time', () => {
    assert.equal(stringifyRos2(definitionsFor('std_msgs/msg/Header')[0]!), 'builtin_interfaces/Time stamp\nstring frame_id\n');
  });
});

type Def = ReturnType<typeof definitionsFor>[number];
function fields(d: Def): unknown[] {
  return d.definitions.map((f) => ({ name: f.name, type: f.type, isArray: f.isArray === true, isConstant: f.isConstant === true, value: f.value }));
}

/** Typed arrays → plain arrays, so decoded and encoded shapes compare. */
function normalize(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<unknown>);
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === 'number') return Math.fround(v) === v ? v : Math.fround(v);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}
