/**
 * `--record FILE.mcap`: what is written is read back as a ROS 2 bag would be — profile ros2, CDR
 * channels, ros2msg schemas that alone are enough to decode every message — including a bag replay
 * recorded end to end and a recording that was never closed (a crash).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core';
import { loadDecompressHandlers } from '@mcap/support';
import { parse } from '@foxglove/rosmsg';
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import { lastValueFrom, tap, toArray } from 'rxjs';
import { createMcapRecorder } from '../../../src/sinks/recorder/mcap-recorder.js';
import { createBagSource } from '../../../src/sources/bag/bag-source.js';
import type { Caption } from '../../../src/types.js';
import { sampleCaption } from '../../ros2/samples.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'bitmar-rec-'));

interface Read {
  header: McapTypes.Header;
  channels: McapTypes.Channel[];
  schemas: McapTypes.Schema[];
  messages: { topic: string; schema: string; logTime: bigint; sequence: number; msg: Record<string, unknown> }[];
}

/** Reads a recording with nothing but what the file says about itself. */
async function readBack(path: string): Promise<Read> {
  const bytes = readFileSync(path);
  const reader = await McapIndexedReader.Initialize({
    readable: { size: async () => BigInt(bytes.length), read: async (o, n) => bytes.subarray(Number(o), Number(o + n)) },
    decompressHandlers: await loadDecompressHandlers(),
  });
  const schemas = [...reader.schemasById.values()];
  const readers = new Map(schemas.map((s) => [s.id, new MessageReader(parse(new TextDecoder().decode(s.data), { ros2: true }))]));
  const messages: Read['messages'] = [];
  for await (const m of reader.readMessages()) {
    const ch = reader.channelsById.get(m.channelId)!;
    messages.push({ topic: ch.topic, schema: reader.schemasById.get(ch.schemaId)!.name, logTime: m.logTime, sequence: m.sequence, msg: readers.get(ch.schemaId)!.readMessage(m.data) });
  }
  return { header: reader.header, channels: [...reader.channelsById.values()], schemas, messages };
}

describe('sinks/recorder: MCAP recording', () => {
  it('writes a ros2-profile MCAP whose schemas decode every message', async () => {
    const path = join(tmp(), 'out.mcap');
    let t = 1_000_000_000n;
    const rec = await createMcapRecorder({ path, clockNs: () => (t += 1_000_000n), topics: { partial: '/bitmar_node/caption/partial', text: '/bitmar_node/caption/text' } });
    rec.observe({ type: 'token', token: { seq: 7, index: 0, tokenId: 11, piece: 'a', text: 'a', frame: sampleCaption.frame } });
    rec.observe({ type: 'caption', caption: sampleCaption });
    rec.caption({ ...sampleCaption, seq: 8, isFinal: false, cancelled: true, episodeSlot: undefined });
    rec.observe({ type: 'memory', memory: { kind: 'evict', slot: 9, detail: 'lru' } });
    rec.diagnostics([{ level: 'error', name: 'bitmar_node: model', message: 'worker restarted', hardwareId: 'jetson', values: { restarts: 1 } }]);
    await rec.close();
    await rec.close(); // idempotent
    assert.equal(rec.count(), 6);

    const r = await readBack(path);
    assert.equal(r.header.profile, 'ros2');
    assert.ok(r.channels.every((c) => c.messageEncoding === 'cdr' && c.metadata.has('offered_qos_profiles')));
    assert.ok(r.schemas.every((s) => s.encoding === 'ros2msg'));
    assert.deepEqual(
      r.messages.map((m) => [m.topic, m.schema, m.sequence]),
      [
        ['/bitmar_node/caption/partial', 'bitmar_msgs/msg/CaptionToken', 0],
        ['/bitmar_node/caption', 'bitmar_msgs/msg/Caption', 0],
        ['/bitmar_node/caption/text', 'std_msgs/msg/String', 0],
        ['/bitmar_node/caption', 'bitmar_msgs/msg/Caption', 1],
        ['/bitmar_node/memory/events', 'bitmar_msgs/msg/MemoryEvent', 0],
        ['/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 0],
      ],
    );
    const first = r.messages[1]!.msg;
    assert.deepEqual(first.header, { stamp: { sec: 1_700_000_000, nanosec: 123_456_789 }, frame_id: 'camera_optical' });
    assert.deepEqual([first.text, first.seq, first.is_final, first.episode_slot, first.model], ['a red circle', 7n, true, 3, 'bitmar-shapes']);
    assert.deepEqual(Array.from(first.batch_frame_ids as BigUint64Array), [39n, 40n, 41n, 42n]);
    assert.equal(r.messages[3]!.msg.episode_slot, -1);
    assert.deepEqual(r.messages.map((m) => m.logTime), [1, 2, 3, 4, 5, 6].map((i) => 1_000_000_000n + BigInt(i) * 1_000_000n));
    const diag = r.messages[5]!.msg as { status: { level: number; hardware_id: string; values: unknown[] }[] };
    assert.deepEqual([diag.status[0]!.level, diag.status[0]!.hardware_id, diag.status[0]!.values], [2, 'jetson', [{ key: 'restarts', value: '1' }]]);
  });

  it('records a bag replay end to end: frames in, one caption per frame out', async () => {
    const path = join(tmp(), 'replay.mcap');
    const rec = await createMcapRecorder({ path, compression: 'none' });
    const bag = createBagSource({ path: new URL('../../fixtures/bags/shapes-zstd.mcap', import.meta.url).pathname, rate: 0, imageTopics: ['/camera/image_raw'] });
    let seq = 0;
    const frames = await lastValueFrom(
      bag.frames$.pipe(
        tap((f) => {
          const caption: Caption = {
            ...sampleCaption,
            seq: seq++,
            text: `frame ${f.id} is ${f.width}x${f.height}`,
            frame: { id: f.id, source: f.source, stampNs: f.stampNs, frameId: f.frameId },
            batchFrameIds: [f.id],
          };
          rec.caption(caption);
        }),
        toArray(),
      ),
    );
    await rec.close();
    const r = await readBack(path);
    const captions = r.messages.filter((m) => m.topic === '/bitmar_node/caption');
    assert.equal(captions.length, frames.length);
    assert.equal(frames.length, 3);
    assert.deepEqual(
      captions.map((c) => (c.msg.header as { stamp: unknown }).stamp),
      frames.map((f) => ({ sec: Number(f.stampNs / 1_000_000_000n), nanosec: Number(f.stampNs % 1_000_000_000n) })),
    );
    assert.equal(captions[0]!.msg.source, '/camera/image_raw');
  });

  it('a recording that was never closed is still readable up to its last chunk', async () => {
    const path = join(tmp(), 'crash.mcap');
    const rec = await createMcapRecorder({ path, chunkBytes: 1 });
    for (let i = 0; i < 5; i++) rec.caption({ ...sampleCaption, seq: i });
    await rec.drain(); // …and the process dies here: no close, no summary.
    const reader = new McapStreamReader({ decompressHandlers: await loadDecompressHandlers() });
    reader.append(readFileSync(path));
    let captions = 0;
    for (let r = reader.nextRecord(); r; r = reader.nextRecord()) if (r.type === 'Message') captions++;
    assert.ok(captions >= 4, `${captions} captions survived`);
    assert.equal(reader.done(), false);
    await rec.close();
  });

  it('fails clearly when the file cannot be created', async () => {
    await assert.rejects(createMcapRecorder({ path: join(tmp(), 'no', 'such', 'dir.mcap') }), { code: 'ENOENT' });
  });
});
