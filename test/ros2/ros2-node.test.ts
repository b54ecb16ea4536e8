/**
 * The rclnodejs plumbing against FakeRclnodejsForTests (a double): init argv, plain and lifecycle
 * nodes, message generation, subscriptions (isRaw, QoS per topic: cameras sensor-data), frames,
 * prompts and drops from raw CDR, publishers (CDR bytes decoded back with the real definitions),
 * the memory services and the cancellable describe action.
 */
import assert from 'node:assert/strict';
import { firstValueFrom, toArray } from 'rxjs';
import { createRos2Sink, type DescribeHandler } from '../../src/sinks/ros2/ros2-sink.js';
import { DecodePool } from '../../src/sources/image/decode-pool.js';
import { createRos2Source } from '../../src/sources/ros2/ros2-source.js';
import { decodeMessage, encodeMessage } from '../../src/ros2/cdr.js';
import { openRos2Transport, type Ros2Transport } from '../../src/ros2/transport.js';
import type { Caption, CaptionToken, DropEvent, Frame, Prompt } from '../../src/types.js';
import { sampleCaption } from './samples.js';
import { FakeGoalHandle, FakeLifecycleNode, FakeRclnodejsForTests, type FakeNode, RCLNODEJS_JS_MISSING } from './fake-rclnodejs-for-tests.js';
import { testImageDecoder } from './test-image-decoder.js';
import { encodeJpeg } from '../../tools/make-mcap-fixtures.js';

const ARGV = ['node', '/app/bin/bitmar-node.js', 'run', '--ros-args', '-r', '__node:=captioner', '--params-file', '/tmp/p.yaml'];

async function open(options: { lifecycle?: boolean; fake?: FakeRclnodejsForTests } = {}): Promise<{ fake: FakeRclnodejsForTests; t: Ros2Transport; node: FakeNode }> {
  const fake = options.fake ?? new FakeRclnodejsForTests();
  const t = await openRos2Transport({ rclnodejs: fake, argv: ARGV, lifecycle: options.lifecycle, log: () => undefined });
  return { fake, t, node: fake.node };
}

function rgbImage(width: number, height: number, stampSec = 5): Buffer {
  const data = new Uint8Array(width * height * 3).map((_, i) => i % 251);
  const cdr = encodeMessage('sensor_msgs/msg/Image', {
    header: { stamp: { sec: stampSec, nanosec: 0 }, frame_id: 'cam' },
    height,
    width,
    encoding: 'rgb8',
    is_bigendian: 0,
    step: width * 3,
    data,
  });
  return Buffer.from(cdr.buffer, cdr.byteOffset, cdr.byteLength);
}

const stringMsg = (text: string): Buffer => Buffer.from(encodeMessage('std_msgs/msg/String', { data: text }));

function collect<T>(obs: { subscribe(fn: (v: T) => void): unknown }): T[] {
  const out: T[] = [];
  obs.subscribe((v) => out.push(v));
  return out;
}

describe('ros2/transport (with FakeRclnodejsForTests)', () => {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  it('passes argv with --ros-args to rclnodejs.init and creates the node', async () => {
    const { fake, t, node } = await open();
    assert.deepEqual(fake.initCalls, [{ context: undefined, argv: ARGV }]);
    assert.equal(fake.signalHandlersRemoved, true, 'the app, not rclnodejs, handles SIGINT');
    assert.equal(node.name(), 'bitmar_node', 'rcl applies -r __node:= itself');
    t.spin();
    assert.equal(node.spinning, true);
    await t.close();
    assert.equal(node.destroyed, true);
    assert.equal(fake.isShutdown(), true);
  });

  it('generates rclnodejs messages once when bitmar_msgs is missing, and says what to do when that fails', async () => {
    const works = new FakeRclnodejsForTests({ generated: [], regenerateWorks: true });
    await openRos2Transport({ rclnodejs: works, argv: ARGV, log: () => undefined });
    assert.equal(works.regenerateCalls, 1);
    const broken = new FakeRclnodejsForTests({ generated: [] });
    await assert.rejects(openRos2Transport({ rclnodejs: broken, argv: ARGV, log: () => undefined }), {
      code: 'BITMAR_ERR_ROS2_UNAVAILABLE',
      message: /npx generate-ros-messages/,
    });
  });

  it('refuses a module that is not rclnodejs', async () => {
    await assert.rejects(openRos2Transport({ rclnodejs: { init: async () => undefined }, argv: ARGV }), { code: 'BITMAR_ERR_ROS2_UNAVAILABLE' });
  });
});

describe('sources/ros2 (with FakeRclnodejsForTests)', () => {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  it('subscribes raw, cameras with the sensor-data profile, prompts reliable; QoS is per topic', async () => {
    const { t, node } = await open();
    createRos2Source({ transport: t, compressedTopic: '/image_raw/compressed', decodeCompressed: testImageDecoder });
    assert.deepEqual(
      node.subscriptions.map((s) => [s.type, s.topic, s.options.isRaw]),
      [
        ['sensor_msgs/msg/Image', '/image_raw', true],
        ['sensor_msgs/msg/CompressedImage', '/image_raw/compressed', true],
        ['std_msgs/msg/String', '~/prompt', true],
      ],
    );
    assert.equal(node.subscription('/image_raw').options.qos, 'qos_profile_sensor_data');
    assert.equal(node.subscription('/image_raw/compressed').options.qos, 'qos_profile_sensor_data');
    const promptQos = node.subscription('~/prompt').options.qos as { reliability: number; depth: number };
    assert.deepEqual([promptQos.reliability, promptQos.depth], [1, 10], 'RELIABLE, keep last 10');

    const { t: t2, node: n2 } = await open();
    createRos2Source({ transport: t2, imageQos: 'reliable', promptTopic: '' });
    assert.equal((n2.subscription('/image_raw').options.qos as { reliability: number }).reliability, 1);
    assert.equal(n2.subscriptions.length, 1, 'an empty topic subscribes nothing');
  });

  it('turns raw CDR into frames and prompts, and bad input into counted drops', async () => {
    const { t, node } = await open();
    const clock = { nowMs: () => 1234, epochNs: () => 99n };
    const src = createRos2Source({ transport: t, compressedTopic: '/c', decodeCompressed: testImageDecoder, clock, maxPromptLength: 30 });
    const frames = collect<Frame>(src.frames$);
    const prompts = collect<Prompt>(src.prompts$);
    const drops = collect<DropEvent>(src.drops$);
    const image = node.subscription('/image_raw').callback;
    image(rgbImage(4, 2));
    image(rgbImage(4, 2, 0)); // unset stamp → arrival time
    image(Buffer.from([1, 2, 3]));
    image({ data: 'not raw' });
    image(rgbImage(4, 2).subarray(0, 50));
    const jpeg = encodeJpeg({ width: 8, height: 8, data: new Uint8Array(192).fill(90) });
    node.subscription('/c').callback(Buffer.from(encodeMessage('sensor_msgs/msg/CompressedImage', { header: { stamp: { sec: 1, nanosec: 0 }, frame_id: 'c' }, format: 'jpeg', data: jpeg })));
    node.subscription('/c').callback(Buffer.from(encodeMessage('sensor_msgs/msg/CompressedImage', { header: { stamp: { sec: 1, nanosec: 0 }, frame_id: 'c' }, format: 'jpeg', data: jpeg.subarray(0, 30) })));
    node.subscription('~/prompt').callback(stringMsg('  what color is the circle '));
    node.subscription('~/prompt').callback(stringMsg('x'.repeat(31)));
    await new Promise((r) => setImmediate(r));

    assert.equal(frames.length, 3);
    const f = frames[0]!;
    assert.deepEqual([f.id, f.source, f.stampNs, f.frameId, f.width, f.height, f.receivedMs, f.data.length], [1, '/image_raw', 5_000_000_000n, 'cam', 4, 2, 1234, 24]);
    assert.equal(frames[1]!.stampNs, 99n);
    assert.deepEqual([frames[2]!.source, frames[2]!.width, frames[2]!.id], ['/c', 8, 3]);
    assert.deepEqual(prompts.map((p) => [p.text, p.source]), [['what color is the circle', '~/prompt']]);
    assert.deepEqual(drops.map((d) => d.reason).sort(), ['decode_error', 'decode_error', 'decode_error', 'decode_error', 'invalid_input']);
    assert.ok(drops.every((d) => d.stage === 'ros2-source' && typeof d.detail === 'string'));
    assert.deepEqual(src.counts(), { frames: 3, prompts: 1, drops: { decode_error: 4, invalid_input: 1 } });
  });

  it('can skip frames before decoding them, counted as sampled_out', async () => {
    const { t, node } = await open();
    let n = 0;
    const src = createRos2Source({ transport: t, shouldDecode: () => n++ % 2 === 0 });
    const frames = collect<Frame>(src.frames$);
    for (let i = 0; i < 4; i++) node.subscription('/image_raw').callback(rgbImage(2, 2));
    assert.equal(frames.length, 2);
    assert.deepEqual(src.counts().drops, { sampled_out: 2 });
  });

  it('decodes and converts in a decode pool with the same frames and drops, in arrival order per topic', async function () {
    this.timeout(30_000);
    const pool = new DecodePool({ workers: 2 });
    try {
      const run = async (withPool: boolean): Promise<{ frames: Frame[]; drops: DropEvent[] }> => {
        const { t, node } = await open();
        const src = createRos2Source({ transport: t, compressedTopic: '/c', ...(withPool ? { decodePool: pool } : {}) });
        const frames = collect<Frame>(src.frames$);
        const drops = collect<DropEvent>(src.drops$);
        const compressed = (data: Uint8Array, sec: number, format = 'jpeg'): Buffer =>
          Buffer.from(encodeMessage('sensor_msgs/msg/CompressedImage', { header: { stamp: { sec, nanosec: 0 }, frame_id: 'c' }, format, data }));
        const raw = (encoding: string, sec: number, width = 4): Buffer =>
          Buffer.from(encodeMessage('sensor_msgs/msg/Image', { header: { stamp: { sec, nanosec: 0 }, frame_id: 'r' }, height: 2, width, encoding, is_bigendian: 0, step: width * 3, data: new Uint8Array(width * 6).map((_, i) => i * 5) }));
        const big = encodeJpeg({ width: 320, height: 240, data: new Uint8Array(320 * 240 * 3).map((_, i) => (i * 7) & 255) });
        const small = encodeJpeg({ width: 8, height: 8, data: new Uint8Array(192).fill(90) });
        const c = node.subscription('/c').callback;
        const image = node.subscription('/image_raw').callback;
        for (let i = 1; i <= 6; i++) c(compressed(i % 2 ? big : small, i));
        c(compressed(small.subarray(0, 30), 7));
        c(compressed(small, 8, '16UC1; compressedDepth png'));
        image(raw('bgr8', 1));
        image(raw('rgb8', 2));
        image(raw('mono16', 3));
        image(raw('bgr8', 4, 5));
        image(raw('yuv422', 5, 3));
        const t0 = performance.now();
        while (frames.length + drops.length < 13 && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
        return { frames, drops };
      };
      const inline = await run(false);
      const pooled = await run(true);
      const byTopic = (r: { frames: Frame[] }, topic: string): unknown[] => r.frames.filter((f) => f.source === topic).map((f) => [f.stampNs, f.frameId, f.width, f.height, Buffer.from(f.data).toString('base64')]);
      const superseded = pooled.drops.filter((d) => d.reason === 'superseded').length;
      assert.equal(pooled.frames.length + pooled.drops.length, 13);
      assert.deepEqual(
        pooled.drops.filter((d) => d.reason !== 'superseded').map((d) => [d.stage, d.reason, d.detail]).sort(),
        inline.drops.map((d) => [d.stage, d.reason, d.detail]).sort(),
        'the same refusals, in the same words',
      );
      const stamps = (r: { frames: Frame[] }, topic: string): bigint[] => r.frames.filter((f) => f.source === topic).map((f) => f.stampNs);
      for (const topic of ['/c', '/image_raw']) {
        const got = stamps(pooled, topic);
        assert.deepEqual(got, [...got].sort((a, b) => (a < b ? -1 : 1)), `${topic}: in arrival order`);
        // every pooled frame is the inline frame with that stamp, pixel for pixel
        const want = new Map(byTopic(inline, topic).map((f) => [(f as unknown[])[0], f]));
        for (const f of byTopic(pooled, topic)) assert.deepEqual(f, want.get((f as unknown[])[0]));
      }
      assert.equal(pooled.frames.length + superseded, inline.frames.length);
      const ids = pooled.frames.map((f) => f.id);
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    } finally {
      await pool.close();
    }
  });

  it('passes data only while a lifecycle node is active', async () => {
    const { t, node } = await open({ lifecycle: true });
    assert.ok(node instanceof FakeLifecycleNode);
    const src = createRos2Source({ transport: t });
    const frames = collect<Frame>(src.frames$);
    const deliver = (): void => node.subscription('/image_raw').callback(rgbImage(2, 2));
    deliver();
    (node as FakeLifecycleNode).configure();
    deliver();
    (node as FakeLifecycleNode).activate();
    deliver();
    (node as FakeLifecycleNode).deactivate();
    deliver();
    assert.equal(frames.length, 1);
    assert.deepEqual(src.counts().drops, {}, 'inactive is not a drop');
  });

  it('completes its streams on close', async () => {
    const { t } = await open();
    const src = createRos2Source({ transport: t });
    const all = firstValueFrom(src.frames$.pipe(toArray()));
    src.close();
    assert.deepEqual(await all, []);
  });
});

describe('sinks/ros2 (with FakeRclnodejsForTests)', () => {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  const token: CaptionToken = { seq: 7, index: 0, tokenId: 11, piece: 'a', text: 'a', frame: sampleCaption.frame };

  it('publishes captions, tokens, the text mirror, diagnostics and memory events as CDR', async () => {
    const { t, node } = await open();
    const sink = createRos2Sink({ transport: t, clockNs: () => 2_000_000_003n });
    assert.deepEqual(
      node.publishers.map((p) => [p.type, p.topic]),
      [
        ['bitmar_msgs/msg/Caption', '~/caption'],
        ['bitmar_msgs/msg/CaptionToken', '~/caption/partial'],
        ['std_msgs/msg/String', '~/caption/text'],
        ['diagnostic_msgs/msg/DiagnosticArray', '/diagnostics'],
        ['bitmar_msgs/msg/MemoryEvent', '~/memory/events'],
      ],
    );
    assert.ok(node.publishers.every((p) => (p.options as { qos: { reliability: number } }).qos.reliability === 1), 'reliable publishers');
    sink.observe({ type: 'token', token });
    sink.observe({ type: 'caption', caption: sampleCaption });
    sink.caption({ ...sampleCaption, isFinal: false, cancelled: true });
    sink.diagnostics([{ level: 'ok', name: 'bitmar_node: pipeline', message: 'running', values: { fps: 2 } }]);
    sink.observe({ type: 'memory', memory: { kind: 'write', slot: 2, caption: 'a red circle', source: '/image_raw' } });

    const raw = (topic: string): Buffer[] => node.publisher(topic).published.map((m) => {
      assert.ok(Buffer.isBuffer(m), `${topic} publishes serialized messages`);
      return m as Buffer;
    });
    const captions = raw('~/caption').map((b) => decodeMessage<{ header: unknown; text: string; is_final: boolean; cancelled: boolean }>('bitmar_msgs/msg/Caption', b));
    assert.deepEqual(captions.map((c) => [c.text, c.is_final, c.cancelled]), [['a red circle', true, false], ['a red circle', false, true]]);
    assert.deepEqual(captions[0]!.header, { stamp: { sec: 1_700_000_000, nanosec: 123_456_789 }, frame_id: 'camera_optical' });
    assert.deepEqual(raw('~/caption/text').map((b) => decodeMessage<{ data: string }>('std_msgs/msg/String', b).data), ['a red circle'], 'final captions only');
    assert.equal(decodeMessage<{ piece: string }>('bitmar_msgs/msg/CaptionToken', raw('~/caption/partial')[0]!).piece, 'a');
    const diag = decodeMessage<{ header: { stamp: unknown }; status: { level: number; values: unknown[] }[] }>('diagnostic_msgs/msg/DiagnosticArray', raw('/diagnostics')[0]!);
    assert.deepEqual(diag.header.stamp, { sec: 2, nanosec: 3 });
    assert.deepEqual(diag.status[0]!.values, [{ key: 'fps', value: '2' }]);
    const mem = decodeMessage<{ kind: number; slot: number }>('bitmar_msgs/msg/MemoryEvent', raw('~/memory/events')[0]!);
    assert.deepEqual([mem.kind, mem.slot], [0, 2]);
  });

  it('publishes nothing while a lifecycle node is inactive or after close; empty topics are off', async () => {
    const { t, node } = await open({ lifecycle: true });
    const sink = createRos2Sink({ transport: t, partialTopic: '', textTopic: '' });
    assert.equal(node.publishers.length, 3);
    sink.caption(sampleCaption);
    (node as FakeLifecycleNode).activate();
    sink.caption(sampleCaption);
    sink.close();
    sink.caption(sampleCaption);
    assert.equal(node.publisher('~/caption').published.length, 1);
  });

  it('serves memory query, reset and export, errors as success: false', async () => {
    const { t, node } = await open();
    const sink = createRos2Sink({
      transport: t,
      memory: {
        query: async (text, k) => (text === 'boom' ? Promise.reject(new Error('store closed')) : [{ slot: 1, caption: `${text}/${k}`, stampNs: 3_000_000_001n, score: 0.9, hits: 2 }]),
        reset: () => 5,
        export: async (path) => ({ path: path || '/var/lib/bitmar/export.jsonl', count: 5 }),
      },
    });
    void sink;
    assert.deepEqual(
      node.services.map((s) => [s.type, s.name]),
      [
        ['bitmar_msgs/srv/MemoryQuery', '~/memory/query'],
        ['bitmar_msgs/srv/MemoryReset', '~/memory/reset'],
        ['bitmar_msgs/srv/MemoryExport', '~/memory/export'],
      ],
    );
    const call = (name: string, req: object): Promise<unknown> => Promise.resolve(node.service(name).callback(req, { send: () => undefined }));
    assert.deepEqual(await call('~/memory/query', { text: 'red', top_k: 0 }), {
      success: true,
      message: '',
      episodes: [{ slot: 1, caption: 'red/5', stamp: { sec: 3, nanosec: 1 }, score: 0.9, hits: 2 }],
    });
    assert.deepEqual(await call('~/memory/query', { text: 'boom', top_k: 3 }), { success: false, message: 'store closed', episodes: [] });
    assert.deepEqual(await call('~/memory/reset', {}), { success: true, message: '', cleared: 5 });
    assert.deepEqual(await call('~/memory/export', { path: '' }), { success: true, message: '', path: '/var/lib/bitmar/export.jsonl', count: 5 });
    const ev = decodeMessage<{ kind: number; detail: string }>('bitmar_msgs/msg/MemoryEvent', node.publisher('~/memory/events').published[0] as Buffer);
    assert.deepEqual([ev.kind, ev.detail], [4, '5 episodes cleared by ~/memory/reset']);
  });

  it('runs describe-now: tokens as feedback, cancellable, the caption as result', async () => {
    const { fake, t } = await open();
    const describe: DescribeHandler = async (req, onToken, signal) => {
      const words = ['a', 'red', 'circle', 'on', 'the', 'left'];
      let text = '';
      let i = 0;
      for (; i < words.length && !signal.aborted; i++) {
        text = text ? `${text} ${words[i]}` : words[i]!;
        onToken({ ...token, index: i, tokenId: 10 + i, piece: words[i]!, text });
        await new Promise((r) => setImmediate(r));
      }
      const c: Caption = { ...sampleCaption, prompt: req.prompt || 'describe the scene', text, tokenIds: words.slice(0, i).map((_, k) => 10 + k), isFinal: !signal.aborted, cancelled: signal.aborted };
      return c;
    };
    createRos2Sink({ transport: t, describe });
    const server = fake.actionServers[0]!;
    assert.deepEqual([server.type, server.name], ['bitmar_msgs/action/Describe', '~/describe']);
    assert.equal(server.goalCallback?.({}), fake.GoalResponse.ACCEPT);
    assert.equal(await server.cancelCallback?.(), fake.CancelResponse.ACCEPT);

    const done = new FakeGoalHandle({ prompt: '', max_tokens: 0 });
    const result = (await server.execute(done)) as { init: { caption: { text: string; token_ids: number[]; batch_frame_ids: bigint[] } } };
    assert.equal(done.status, 'succeeded');
    assert.equal(done.feedback.length, 6);
    assert.deepEqual((done.feedback[1] as { init: object }).init, { index: 1, token_id: 11, piece: 'red', text: 'a red' });
    assert.equal(result.init.caption.text, 'a red circle on the left');
    assert.deepEqual(result.init.caption.token_ids, [10, 11, 12, 13, 14, 15]);
    assert.deepEqual(result.init.caption.batch_frame_ids, [39n, 40n, 41n, 42n]);

    const cancelled = new FakeGoalHandle({ prompt: 'how many shapes are there', max_tokens: 4 });
    const running = server.execute(cancelled) as Promise<{ init: { caption: { text: string; cancelled: boolean } } }>;
    await new Promise((r) => setImmediate(r));
    cancelled.isCancelRequested = true;
    const partial = await running;
    assert.equal(cancelled.status, 'canceled');
    assert.equal(partial.init.caption.cancelled, true);
    assert.ok(cancelled.feedback.length < 6, `stopped after ${cancelled.feedback.length} tokens`);

    await t.close();
    assert.equal(server.destroyed, true);
  });
});

describe('ros2/diagnostics: input health', () => {
  it('warns while inputs are dropped, ignores sampling, reports totals', async () => {
    const { createInputHealth } = await import('../../src/ros2/diagnostics.js');
    const health = createInputHealth('bitmar_node: ros2 input', 'jetson');
    assert.equal(health({ frames: 10, prompts: 1, drops: { sampled_out: 9 } }).level, 'ok');
    const warn = health({ frames: 12, prompts: 1, drops: { sampled_out: 9, decode_error: 2 } });
    assert.deepEqual([warn.level, warn.message], ['warn', 'dropping input: 2 decode_error']);
    assert.deepEqual(warn.values, { frames: 12, prompts: 1, 'dropped.sampled_out': 9, 'dropped.decode_error': 2 });
    assert.equal(health({ frames: 20, prompts: 1, drops: { sampled_out: 15, decode_error: 2 } }).level, 'ok', 'no new drops');
  });
});
