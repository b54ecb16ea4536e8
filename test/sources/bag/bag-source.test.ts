/**
 * `--source bag:FILE.mcap` on the committed fixtures (tools/make-mcap-fixtures.ts): zstd and lz4
 * chunks, every image encoding of the fixtures, prompts, pacing by log time, and a bag full of bad
 * input that must be counted and skipped while the good frames around it come through. With a
 * decode pool: the same frames and refusals as on the event loop, every frame kept in order, a
 * clean close mid-decode, and an event loop that keeps ticking through a bag of 720p JPEGs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McapIndexedReader, McapWriter, type IWritable } from '@mcap/core';
import { lastValueFrom, toArray } from 'rxjs';
import { encodeMessage } from '../../../src/ros2/cdr.js';
import { ros2msgSchema } from '../../../src/ros2/definitions.js';
import { createBagSource, type BagSourceOptions } from '../../../src/sources/bag/bag-source.js';
import { DecodePool, DecodeSkipped } from '../../../src/sources/image/decode-pool.js';
import { decodeImage } from '../../../src/sources/image/decode.js';
import type { DropEvent, Frame, Prompt } from '../../../src/types.js';
import { encodeJpeg, fixtureGenerator, makeFixtures, packImage } from '../../../tools/make-mcap-fixtures.js';

const fixture = (name: string): string => new URL(`../../fixtures/bags/${name}`, import.meta.url).pathname;

/** Replays with the production JPEG/PNG decoder (src/sources/image/decode.ts). */
async function replay(options: BagSourceOptions) {
  const src = createBagSource({ rate: 0, ...options });
  const prompts: Prompt[] = [];
  const drops: DropEvent[] = [];
  src.prompts$.subscribe((p) => prompts.push(p));
  src.drops$.subscribe((d) => drops.push(d));
  const frames = await lastValueFrom(src.frames$.pipe(toArray()));
  return { frames, prompts, drops, report: await src.done };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('sources/bag: MCAP replay', () => {
  it('reads every channel of the zstd fixture: rgb8 (padded), bgr8, yuyv, jpeg, png, prompts', async () => {
    const { frames, prompts, drops, report } = await replay({ path: fixture('shapes-zstd.mcap') });
    assert.deepEqual(drops, []);
    const by = (topic: string): Frame[] => frames.filter((f) => f.source === topic);
    assert.deepEqual(
      ['/camera/image_raw', '/camera/image_bgr', '/camera/image_yuyv', '/camera/image_raw/compressed', '/camera/image_png/compressed'].map((t) => by(t).length),
      [3, 2, 2, 2, 1],
    );
    assert.deepEqual(prompts.map((p) => p.text), ['describe the scene', 'how many shapes are there']);
    assert.ok(frames.every((f) => f.width === 160 && f.height === 120 && f.data.length === 160 * 120 * 3 && f.frameId === 'camera'));
    assert.deepEqual(frames.map((f) => f.id), frames.map((_, i) => i + 1), 'ids count up across channels');
    // The same scene through each encoding decodes to (nearly) the same pixels.
    const [rgb0, rgb1] = by('/camera/image_raw');
    assert.deepEqual(by('/camera/image_bgr')[0]!.data, rgb0!.data, 'bgr8 swapped back exactly');
    assert.ok(meanAbsDiff(by('/camera/image_yuyv')[0]!.data, rgb0!.data) < 4, 'yuyv close');
    assert.ok(meanAbsDiff(by('/camera/image_raw/compressed')[0]!.data, rgb0!.data) < 4, 'jpeg close');
    assert.deepEqual(by('/camera/image_png/compressed')[0]!.data, rgb1!.data, 'png lossless');
    assert.equal(rgb0!.stampNs, 1_704_067_200_200_000_000n, 'header stamp');
    assert.equal(report.truncated, false);
    assert.equal(report.summary?.messageCount, 12n);
    assert.deepEqual([report.frames, report.prompts, report.messages], [10, 2, 12]);
  });

  it('reads lz4 chunks', async () => {
    const { frames, prompts, report } = await replay({ path: fixture('shapes-lz4.mcap') });
    assert.equal(frames.length, 2);
    assert.deepEqual(prompts.map((p) => p.text), ['describe the scene']);
    assert.equal(report.skippedChunks, 0);
  });

  it('counts and skips every kind of bad input, and the good frames still come through', async () => {
    const { frames, prompts, drops, report } = await replay({ path: fixture('bad-input.mcap') });
    assert.equal(frames.length, 3, 'good frames before and after the bad ones and the broken chunk');
    assert.deepEqual(prompts.map((p) => p.text), ['how many shapes are there']);
    assert.deepEqual(report.drops, { unknown_topic: 2, invalid_input: 4, too_large: 1, decode_error: 4 });
    assert.equal(report.skippedChunks, 2);
    assert.equal(drops.length, 11);
    const details = drops.map((d) => d.detail ?? '').join('\n');
    for (const pattern of [
      /\/weird: schema custom_msgs\/msg\/Thing is not an input type/,
      /\/json_prompt: message encoding 'json' is not cdr/,
      /BITMAR_ERR_IMAGE_ENCODING: unsupported encoding 'bayer_rggb8'/,
      /fewer than step×height/,
      /zero dimension/,
      /100000×100000 exceeds the limit/,
      /BITMAR_ERR_ROS2_MESSAGE/,
      /BITMAR_ERR_IMAGE_DECODE/,
      /BITMAR_ERR_PROMPT_INVALID: prompt is not valid UTF-8/,
      /BITMAR_ERR_BAG_READ: zstd chunk skipped/,
    ]) {
      assert.match(details, pattern);
    }
    assert.ok(drops.every((d) => d.stage === 'bag-source'));
  });

  it('plays a recording cut short up to its last complete chunk, and says so', async () => {
    const { frames, drops, report } = await replay({ path: fixture('truncated.mcap') });
    assert.equal(frames.length, 2);
    assert.equal(report.truncated, true);
    assert.equal(report.summary, undefined, 'no footer');
    assert.match(drops.at(-1)?.detail ?? '', /the file ends inside a record/);
  });

  it('reports a missing file without throwing', async () => {
    const { frames, report } = await replay({ path: fixture('no-such.mcap') });
    assert.equal(frames.length, 0);
    assert.match(report.error ?? '', /BITMAR_ERR_BAG_READ: .*ENOENT/);
  });

  it('paces by log time at the given rate', async () => {
    const waits: number[] = [];
    let now = 0;
    const clock = { nowMs: () => now, epochNs: () => 0n };
    const sleep = async (ms: number): Promise<void> => {
      waits.push(Math.round(ms));
      now += ms;
    };
    await replay({ path: fixture('shapes-lz4.mcap'), rate: 2, clock, sleep });
    // Log times 0, 200, 400 ms → at rate 2: waits of 100 and 100 ms.
    assert.deepEqual(waits, [100, 100]);
    waits.length = 0;
    now = 0;
    await replay({ path: fixture('shapes-lz4.mcap'), rate: 1, clock, sleep });
    assert.deepEqual(waits, [200, 200]);
    assert.throws(() => createBagSource({ path: 'x', rate: -1 }), { code: 'BITMAR_ERR_CONFIG_INVALID' });
  });

  it('only the wanted topics when asked', async () => {
    const { frames, prompts } = await replay({ path: fixture('shapes-zstd.mcap'), imageTopics: ['/camera/image_bgr'], promptTopics: [] });
    assert.deepEqual([frames.length, prompts.length], [2, 0]);
  });

  it('the committed fixtures are what tools/make-mcap-fixtures.ts generates', async function () {
    this.timeout(30_000);
    const generator = await fixtureGenerator();
    const made = await makeFixtures();
    for (const f of made) {
      const committed = readFileSync(fixture(f.name));
      assert.ok(committed.length < 100_000, `${f.name} stays small`);
      if (f.name === 'shapes-zstd.mcap' && (await generatorOf(committed)) !== generator) {
        this.skip(); // made with the other painter (src/sources/synthetic appeared or went): regenerate
      }
      assert.ok(Buffer.from(f.bytes).equals(committed), `${f.name} differs: run node --import tsx tools/make-mcap-fixtures.ts`);
    }
  });
});

describe('sources/bag: MCAP replay with a decode pool', () => {
  let pool: DecodePool;
  let dir: string;
  /** 1280×720: 8 JPEG CompressedImages, then 2 bgr8 Images (each message in a chunk of its own, uncompressed). */
  let bigBag: string;
  let bigJpeg: Uint8Array;

  before(async function () {
    this.timeout(60_000);
    pool = new DecodePool({ name: 'bitmar-test-bag-decode' });
    dir = mkdtempSync(join(tmpdir(), 'bitmar-bag-pool-'));
    const imgs = [paintBig(0, 1280, 720), paintBig(1, 1280, 720)];
    const jpegs = imgs.map((img) => encodeJpeg(img, 85));
    bigJpeg = jpegs[0]!;
    const entries: BagEntry[] = [];
    for (let i = 0; i < 8; i++) entries.push({ topic: '/cam/compressed', type: 'sensor_msgs/msg/CompressedImage', data: compressedMsg(i, 'jpeg', jpegs[i % 2]!) });
    for (let i = 0; i < 2; i++) {
      const bgr = packImage(imgs[i]!, 'bgr8');
      entries.push({ topic: '/cam/image_bgr', type: 'sensor_msgs/msg/Image', data: imageMsg(8 + i, { width: 1280, height: 720, encoding: 'bgr8', ...bgr }) });
    }
    bigBag = join(dir, 'big.mcap');
    writeFileSync(bigBag, await writeBag(entries));
    await pool.decode(bigJpeg); // the worker is up (thread start and, under tsx, compiling)
  });

  after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same frames as decoding on the event loop (jpeg, png, bgr8, yuyv, padded rgb8), in the same order, with the same ids', async () => {
    const onLoop = await replay({ path: fixture('shapes-zstd.mcap') });
    const done0 = pool.stats().done;
    const inPool = await replay({ path: fixture('shapes-zstd.mcap'), decodePool: pool });
    assert.equal(pool.stats().done - done0, 10, 'every image but none of the prompts went through the pool (padded rgb8 is converted too)');
    assert.equal(inPool.frames.length, 10);
    assert.deepEqual(inPool.frames.map(comparable), onLoop.frames.map(comparable));
    assert.deepEqual(inPool.prompts.map((p) => [p.source, p.text]), onLoop.prompts.map((p) => [p.source, p.text]));
    assert.deepEqual(inPool.drops, []);
    assert.deepEqual(reportOf(inPool.report), reportOf(onLoop.report));
  });

  it('keeps every 720p JPEG and bgr8 frame, pixel-identical to the event-loop path, in log order', async function () {
    this.timeout(60_000);
    const onLoop = await replay({ path: bigBag });
    const inPool = await replay({ path: bigBag, decodePool: pool });
    assert.equal(inPool.frames.length, 10, 'no latest-wins dropping for a bag');
    assert.deepEqual(inPool.drops, []);
    assert.deepEqual(inPool.frames.map((f) => f.source), [...Array<string>(8).fill('/cam/compressed'), '/cam/image_bgr', '/cam/image_bgr']);
    assert.deepEqual(inPool.frames.map((f) => f.stampNs), inPool.frames.map((_, i) => stampOf(i)), 'log order');
    assert.deepEqual(inPool.frames.map(comparable), onLoop.frames.map(comparable));
  });

  it('refuses bad input with the same reasons and words as on the event loop (corrupt JPEG: decode_error)', async () => {
    const onLoop = await replay({ path: fixture('bad-input.mcap') });
    const inPool = await replay({ path: fixture('bad-input.mcap'), decodePool: pool });
    assert.deepEqual(inPool.drops, onLoop.drops);
    assert.deepEqual(reportOf(inPool.report), reportOf(onLoop.report));
    assert.deepEqual(inPool.frames.map(comparable), onLoop.frames.map(comparable));
    const corrupt = inPool.drops.filter((d) => d.detail?.startsWith('/camera/image_raw/compressed: '));
    assert.equal(corrupt.length, 1);
    assert.equal(corrupt[0]!.reason, 'decode_error');
    assert.match(corrupt[0]!.detail!, /BITMAR_ERR_IMAGE_DECODE/);
  });

  it('counts an image the pool lets go as a drop with the pool\'s reason, and goes on', async () => {
    let jobs = 0;
    const dropping = withDecode(pool, (real) => (bytes, o) => (++jobs === 2 ? Promise.reject(new DecodeSkipped('queue_full', 'image worker busy')) : real(bytes, o)));
    const { frames, drops, report } = await replay({ path: bigBag, decodePool: dropping });
    assert.equal(frames.length, 9);
    assert.deepEqual(drops, [{ stage: 'bag-source', reason: 'queue_full', detail: '/cam/compressed: image worker busy' }]);
    assert.deepEqual(report.drops, { queue_full: 1 });
    assert.deepEqual(frames.map((f) => f.id), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'ids stay dense');
  });

  it('close() while an image is in the pool: done resolves, nothing is emitted afterwards', async function () {
    this.timeout(30_000);
    let jobs = 0;
    let closedAt = -1;
    const frames: Frame[] = [];
    const drops: DropEvent[] = [];
    const afterClose: string[] = [];
    let completed = false;
    const closing = withDecode(pool, (real) => (bytes, o) => {
      const p = real(bytes, o);
      if (++jobs === 3) {
        // The third JPEG is posted to the worker: close now, while it decodes.
        assert.ok(pool.pending() > 0);
        closedAt = frames.length;
        src.close();
      }
      return p;
    });
    const src = createBagSource({ path: bigBag, rate: 0, decodePool: closing });
    src.frames$.subscribe({
      next: (f) => {
        frames.push(f);
        if (closedAt >= 0) afterClose.push(`frame ${f.id}`);
      },
      complete: () => (completed = true),
    });
    src.drops$.subscribe((d) => {
      drops.push(d);
      if (closedAt >= 0) afterClose.push(`drop ${d.reason}`);
    });
    const report = await src.done;
    assert.equal(closedAt, 2);
    assert.equal(jobs, 3, 'nothing submitted after close');
    assert.deepEqual(afterClose, []);
    assert.ok(completed, 'frames$ completed');
    assert.equal(report.frames, 2);
    assert.deepEqual(report.drops, {});
    // The job still in the worker finishes unseen, and the pool is fine.
    await sleepMs(50);
    assert.deepEqual(afterClose, []);
    assert.equal((await pool.decode(bigJpeg)).width, 1280);
  });

  it('close() does not wait for a pool that never answers', async () => {
    const stuck = withDecode(pool, () => () => new Promise(() => {}));
    const src = createBagSource({ path: bigBag, rate: 0, decodePool: stuck });
    const frames: Frame[] = [];
    src.frames$.subscribe((f) => frames.push(f));
    await sleepMs(100); // the first JPEG is waiting for the pool
    src.close();
    const report = await src.done;
    assert.deepEqual([frames.length, report.frames], [0, 0]);
  });

  it('paces by log time before submitting each image', async () => {
    const events: string[] = [];
    let now = 0;
    const clock = { nowMs: () => now, epochNs: () => 0n };
    const sleep = async (ms: number): Promise<void> => {
      events.push(`sleep ${Math.round(ms)}`);
      now += ms;
    };
    const traced = withConvert(pool, (real) => (view, limits, key) => {
      events.push('convert');
      return real(view, limits, key);
    });
    const { frames } = await replay({ path: fixture('shapes-lz4.mcap'), rate: 1, clock, sleep, decodePool: traced });
    // Log times 0 (prompt), 200, 400 ms; tight rgb8 needs no worker: the lz4 fixture's frames stay here.
    assert.equal(frames.length, 2);
    assert.deepEqual(events, ['sleep 200', 'sleep 200']);
    events.length = 0;
    now = 0;
    await replay({ path: fixture('shapes-zstd.mcap'), rate: 1, clock, sleep, decodePool: traced, imageTopics: ['/camera/image_bgr'], promptTopics: [] });
    assert.deepEqual(events, ['convert', 'sleep 400', 'convert'], 'the first image starts the clock; the second waits for its log time, then is submitted');
  });

  it('keeps the event loop ticking while a bag of 720p JPEGs replays at full speed (decoding on the loop stalls it)', async function () {
    this.timeout(120_000);
    this.retries(2); // a busy machine can deschedule the process; the bound is for the event loop's own work
    const decodeMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      decodeImage(bigJpeg);
      decodeMs.push(performance.now() - t0);
    }
    decodeMs.sort((a, b) => a - b);
    const oneDecodeMs = decodeMs[1]!;
    const onLoop = await measureLoop(() => replay({ path: bigBag }));
    const inPool = await measureLoop(() => replay({ path: bigBag, decodePool: pool }));
    const fmt = (m: { maxGapMs: number; elu: number; frames: number }): string => `max gap ${m.maxGapMs.toFixed(1)} ms, event-loop utilization ${(m.elu * 100).toFixed(0)}%, ${m.frames} frames`;
    console.log(`      bag decoded on the event loop: ${fmt(onLoop)}; one decode ${oneDecodeMs.toFixed(1)} ms`);
    console.log(`      bag decoded in the pool:       ${fmt(inPool)}`);
    assert.equal(inPool.frames, 10);
    // As in test/sources/image/decode-pool.test.ts: the gap bound leaves room for a loaded machine
    // descheduling the process (half a decode there); the loop itself only reads, copies and posts.
    const bound = Math.max(30, oneDecodeMs / 2);
    assert.ok(inPool.maxGapMs < bound, `event loop stalled ${inPool.maxGapMs.toFixed(1)} ms with the pool (bound ${bound.toFixed(0)} ms; on the loop: ${onLoop.maxGapMs.toFixed(1)} ms)`);
    assert.ok(onLoop.maxGapMs >= oneDecodeMs * 0.8, `the timer sees an on-loop decode as a stall (${onLoop.maxGapMs.toFixed(1)} ms)`);
    assert.ok(inPool.elu < 0.5 && inPool.elu < onLoop.elu, `event loop ${(inPool.elu * 100).toFixed(0)}% busy with the pool (on the loop: ${(onLoop.elu * 100).toFixed(0)}%)`);
  });
});

/** A frame without its arrival time (which differs run to run). */
function comparable(f: Frame): unknown {
  return { id: f.id, source: f.source, stampNs: f.stampNs, frameId: f.frameId, width: f.width, height: f.height, data: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength).toString('base64') };
}

function reportOf(r: Awaited<ReturnType<typeof replay>>['report']): unknown {
  return { ...r, summary: r.summary && { ...r.summary } };
}

const sleepMs = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The pool as the bag source uses it (decode, convert), with `decode` replaced. */
function withDecode(pool: DecodePool, wrap: (real: DecodePool['decode']) => DecodePool['decode']): DecodePool {
  return { decode: wrap(pool.decode.bind(pool)), convert: pool.convert.bind(pool) } as Partial<DecodePool> as DecodePool;
}

/** The same with `convert` replaced. */
function withConvert(pool: DecodePool, wrap: (real: DecodePool['convert']) => DecodePool['convert']): DecodePool {
  return { decode: pool.decode.bind(pool), convert: wrap(pool.convert.bind(pool)) } as Partial<DecodePool> as DecodePool;
}

/** Runs `work` while a 5 ms timer measures how late the event loop gets to it. */
async function measureLoop(work: () => Promise<{ frames: Frame[] }>): Promise<{ maxGapMs: number; elu: number; frames: number }> {
  let maxGapMs = 0;
  let last = performance.now();
  const monitor = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 5);
  const elu0 = performance.eventLoopUtilization();
  try {
    const { frames } = await work();
    const now = performance.now();
    return { maxGapMs: Math.max(maxGapMs, now - last), elu: performance.eventLoopUtilization(elu0).utilization, frames: frames.length };
  } finally {
    clearInterval(monitor);
  }
}

// ---------------------------------------------------------------------------------------------
// Bags built here (the committed fixtures are small; these hold 720p images)

const T0 = 1_704_067_200_000_000_000n;
/** Log time (and header stamp) of the i-th message: 33 ms apart. */
const stampOf = (i: number): bigint => T0 + BigInt(i) * 33_000_000n;
const header = (i: number) => ({ stamp: { sec: Number(stampOf(i) / 1_000_000_000n), nanosec: Number(stampOf(i) % 1_000_000_000n) }, frame_id: 'camera' });

function imageMsg(i: number, f: { width: number; height: number; encoding: string; step: number; data: Uint8Array }): Uint8Array {
  return encodeMessage('sensor_msgs/msg/Image', { header: header(i), height: f.height, width: f.width, encoding: f.encoding, is_bigendian: 0, step: f.step, data: f.data });
}

function compressedMsg(i: number, format: string, data: Uint8Array): Uint8Array {
  return encodeMessage('sensor_msgs/msg/CompressedImage', { header: header(i), format, data });
}

/** Smooth gradients and a square: a JPEG of a realistic size (a few hundred kB at 720p). */
function paintBig(index: number, width: number, height: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y * width + x) * 3;
      const inside = Math.abs(x - width / 2 - index * 100) < 150 && Math.abs(y - height / 2) < 150;
      data[k] = inside ? 230 : (x * 255) / width;
      data[k + 1] = inside ? 40 : (y * 255) / height;
      data[k + 2] = ((x ^ y) * 7 + index * 50) & 0xff;
    }
  }
  return { width, height, data };
}

interface BagEntry {
  readonly topic: string;
  readonly type: string;
  readonly data: Uint8Array;
}

/** A ros2-profile MCAP, uncompressed, one message per chunk; message i is logged at stampOf(i). */
async function writeBag(entries: readonly BagEntry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0n;
  const writable: IWritable = {
    position: () => size,
    write: async (b) => {
      parts.push(b.slice());
      size += BigInt(b.byteLength);
    },
  };
  const writer = new McapWriter({ writable, chunkSize: 1 });
  await writer.start({ profile: 'ros2', library: 'bitmar-node test' });
  const channels = new Map<string, number>();
  for (const [i, e] of entries.entries()) {
    let id = channels.get(e.topic);
    if (id === undefined) {
      const schemaId = await writer.registerSchema({ name: e.type, encoding: 'ros2msg', data: new TextEncoder().encode(ros2msgSchema(e.type)) });
      id = await writer.registerChannel({ topic: e.topic, messageEncoding: 'cdr', schemaId, metadata: new Map() });
      channels.set(e.topic, id);
    }
    await writer.addMessage({ channelId: id, sequence: i, logTime: stampOf(i), publishTime: stampOf(i), data: e.data });
  }
  await writer.end();
  return Buffer.concat(parts);
}

/** The `generator` entry of a fixture's bitmar_fixture metadata. */
async function generatorOf(bytes: Uint8Array): Promise<string | undefined> {
  const reader = await McapIndexedReader.Initialize({
    readable: { size: async () => BigInt(bytes.length), read: async (offset, length) => bytes.subarray(Number(offset), Number(offset + length)) },
  });
  for await (const m of reader.readMetadata({ name: 'bitmar_fixture' })) return m.metadata.get('generator');
  return undefined;
}
