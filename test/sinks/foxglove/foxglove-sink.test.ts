/**
 * The Foxglove sink against a plain `ws` client speaking foxglove.websocket.v1: server info and
 * channel advertisement on connect, subscribe → Message Data frames (opcode, subscription id,
 * timestamp, JSON payload), unsubscribe, frames as foxglove.CompressedImage, refusals as status.
 */
import assert from 'node:assert/strict';
import jpeg from 'jpeg-js';
import WebSocket from 'ws';
import { createFoxgloveSink, type FoxgloveSink } from '../../../src/sinks/foxglove/foxglove-sink.js';
import { SUBPROTOCOL } from '../../../src/sinks/foxglove/protocol.js';
import type { Frame } from '../../../src/types.js';
import { caption, token } from '../../mqtt/helpers/captions.js';

interface Channel {
  id: number;
  topic: string;
  encoding: string;
  schemaName: string;
  schema: string;
  schemaEncoding: string;
}

/** A connected test client that keeps every text and binary frame it gets. */
async function connect(url: string, protocols: string[] = [SUBPROTOCOL]) {
  const ws = new WebSocket(url, protocols);
  const texts: Record<string, unknown>[] = [];
  const binaries: Buffer[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? binaries.push(data) : texts.push(JSON.parse(data.toString()) as Record<string, unknown>)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(() => texts.some((t) => t.op === 'advertise'), 'advertise');
  const channels = (texts.find((t) => t.op === 'advertise')!.channels as Channel[]);
  return {
    ws,
    texts,
    binaries,
    until,
    channel: (topic: string): Channel => channels.find((c) => c.topic === topic)!,
    send: (msg: object): void => ws.send(JSON.stringify(msg)),
  };
}

/** Splits a Message Data frame (spec: opcode 0x01, uint32 subscription id, uint64 ns, payload). */
function messageData(b: Buffer): { subscriptionId: number; timestampNs: bigint; json: Record<string, unknown> } {
  assert.equal(b.readUInt8(0), 0x01);
  return { subscriptionId: b.readUInt32LE(1), timestampNs: b.readBigUInt64LE(5), json: JSON.parse(b.subarray(13).toString()) as Record<string, unknown> };
}

function frame(width: number, height: number): Frame {
  const data = new Uint8Array(width * height * 3).fill(200);
  return { id: 9, source: 'synthetic', stampNs: 1_700_000_000_500_000_000n, frameId: 'cam', receivedMs: 0, width, height, data };
}

describe('sinks/foxglove: Foxglove WebSocket protocol v1 server', function () {
  this.timeout(20_000);
  let sink: FoxgloveSink;
  beforeEach(async () => (sink = await createFoxgloveSink({ port: 0, nowNs: () => 42n })));
  afterEach(async () => sink.close());

  it('sends server info and advertises JSON channels with JSON Schemas', async () => {
    const c = await connect(sink.url);
    assert.equal(c.ws.protocol, SUBPROTOCOL);
    assert.equal(c.texts[0]!.op, 'serverInfo');
    assert.deepEqual(c.texts[0]!.capabilities, []);
    const cap = c.channel('/bitmar/caption');
    assert.equal(cap.encoding, 'json');
    assert.equal(cap.schemaEncoding, 'jsonschema');
    assert.equal((JSON.parse(cap.schema) as { title: string }).title, 'bitmar.Caption');
    assert.equal(c.channel('/bitmar/camera/compressed').schemaName, 'foxglove.CompressedImage');
    c.ws.close();
  });

  it('delivers a caption to a subscriber as Message Data, and nothing after unsubscribe', async () => {
    const c = await connect(sink.url);
    c.send({ op: 'subscribe', subscriptions: [{ id: 7, channelId: c.channel('/bitmar/caption').id }, { id: 8, channelId: c.channel('/bitmar/caption/partial').id }] });
    await c.until(() => sink.stats().clients === 1, 'client');
    await new Promise((r) => setTimeout(r, 50)); // the subscribe frame is on its way
    sink.observe({ type: 'token', token: token(3, 0) });
    sink.observe({ type: 'caption', caption: caption(3, { text: 'a red circle left of a blue square' }) });
    await c.until(() => c.binaries.length === 2, 'two messages');
    const [partial, final] = c.binaries.map(messageData);
    assert.equal(partial!.subscriptionId, 8);
    assert.equal(partial!.json.text, 'a');
    assert.equal(final!.subscriptionId, 7);
    assert.equal(final!.timestampNs, 42n);
    assert.equal(final!.json.text, 'a red circle left of a blue square');
    assert.equal(final!.json.seq, 3);
    assert.deepEqual(final!.json.timestamp, { sec: 1_732_700_000, nsec: 123_456_792 });

    c.send({ op: 'unsubscribe', subscriptionIds: [7, 8] });
    await new Promise((r) => setTimeout(r, 50));
    sink.observe({ type: 'caption', caption: caption(4) });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.binaries.length, 2);
    c.ws.close();
  });

  it('sends frames as downscaled JPEG foxglove.CompressedImage, rate-limited, only when subscribed', async () => {
    const c = await connect(sink.url);
    sink.frame(frame(1280, 720)); // nobody subscribed: not encoded
    c.send({ op: 'subscribe', subscriptions: [{ id: 1, channelId: c.channel('/bitmar/camera/compressed').id }] });
    await new Promise((r) => setTimeout(r, 50));
    sink.frame(frame(1280, 720));
    sink.frame(frame(1280, 720)); // within 500 ms of the last: skipped
    await c.until(() => c.binaries.length >= 1, 'an image');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.binaries.length, 1);
    const img = messageData(c.binaries[0]!).json;
    assert.equal(img.format, 'jpeg');
    assert.equal(img.frame_id, 'cam');
    const decoded = jpeg.decode(Buffer.from(img.data as string, 'base64'), { useTArray: true });
    assert.deepEqual([decoded.width, decoded.height], [320, 180]);
    c.ws.close();
  });

  it('encodes the preview in a worker, one at a time: frames due while it is busy are skipped and counted', async () => {
    const fast = await createFoxgloveSink({ port: 0, imageRateHz: 1000 });
    try {
      const c = await connect(fast.url);
      c.send({ op: 'subscribe', subscriptions: [{ id: 1, channelId: c.channel('/bitmar/camera/compressed').id }] });
      await new Promise((r) => setTimeout(r, 50));
      let longestCallMs = 0;
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        fast.frame(frame(1280, 720));
        longestCallMs = Math.max(longestCallMs, performance.now() - t0);
        await new Promise((r) => setTimeout(r, 2));
      }
      await c.until(() => c.binaries.length >= 1, 'an image');
      await new Promise((r) => setTimeout(r, 300));
      const st = fast.stats();
      assert.ok(st.imagesSkipped > 0, 'frames due while encoding are skipped');
      assert.equal(c.binaries.length + st.imagesSkipped, 40, 'every due frame is sent or skipped');
      assert.ok(longestCallMs < 25, `frame() took ${longestCallMs.toFixed(1)} ms on the event loop (the encode is in the worker)`);
      const img = messageData(c.binaries[0]!).json;
      assert.deepEqual([jpeg.decode(Buffer.from(img.data as string, 'base64'), { useTArray: true }).width], [320]);
      c.ws.close();
    } finally {
      await fast.close();
    }
  });

  it('answers a bad request with an error status and keeps the connection', async () => {
    const c = await connect(sink.url);
    c.ws.send('{not json');
    c.send({ op: 'subscribe', subscriptions: [{ id: 1, channelId: 999 }] });
    c.send({ op: 'setParameters', parameters: [] });
    await c.until(() => c.texts.filter((t) => t.op === 'status').length === 3, 'three status messages');
    assert.ok(c.texts.filter((t) => t.op === 'status').every((t) => t.level === 2));
    assert.equal(sink.stats().refused, 3);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    c.ws.close();
  });

  it('closes a client that does not speak foxglove.websocket.v1 (1002)', async () => {
    const ws = new WebSocket(sink.url);
    const code = await new Promise<number>((resolve) => ws.on('close', (c: number) => resolve(c)));
    assert.equal(code, 1002);
  });

  it('close() disconnects clients (1001) and frees the port', async () => {
    const c = await connect(sink.url);
    const closed = new Promise<number>((resolve) => c.ws.on('close', (code: number) => resolve(code)));
    await sink.close();
    assert.equal(await closed, 1001);
    sink = await createFoxgloveSink({ port: 0 }); // afterEach closes this one
  });
});
