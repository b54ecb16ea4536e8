/**
 * Generates the small rosbag2-style MCAP fixtures in test/fixtures/bags/ (no public ROS 2 bag with
 * camera images exists):
 *   shapes-zstd.mcap   zstd chunks: Image rgb8 (padded step), bgr8, yuv422_yuy2; CompressedImage
 *                      jpeg and png; std_msgs/String prompts
 *   shapes-lz4.mcap    lz4 chunks (LZ4 frame format, compressed here): Image rgb8 + prompt
 *   bad-input.mcap     one of each bad input, between good ones: unknown schema, non-CDR channel,
 *                      unsupported encoding, data shorter than step×height, zero and huge sizes,
 *                      corrupt JPEG, invalid UTF-8 prompt, truncated CDR, a chunk that fails to
 *                      decompress; the good frames after them must still come through
 *   truncated.mcap     a recording cut short inside its last chunk
 * Frames are Shapes-world scenes (src/sources/synthetic) when that module is present, else simple
 * generated images; the generator used is stored in each file's `bitmar_fixture` metadata.
 * Deterministic: running it again gives the same bytes (test/sources/bag checks this).
 *
 *   node --import tsx tools/make-mcap-fixtures.ts [outDir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { McapWriter, type IWritable } from '@mcap/core';
import zstd from '@foxglove/wasm-zstd';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { encodeMessage } from '../src/ros2/cdr.js';
import { ros2msgSchema } from '../src/ros2/definitions.js';

export const FIXTURE_DIR = new URL('../test/fixtures/bags/', import.meta.url);

/** Log time of the first message: 2024-01-01T00:00:00Z. */
const T0 = 1_704_067_200_000_000_000n;
const MS = 1_000_000n;

// ---------------------------------------------------------------------------------------------
// Images

interface Rgb {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

type Painter = (index: number, width: number, height: number) => Rgb;

/** Shapes-world scenes without noise (compress well), or null when the module is absent. */
async function shapesPainter(): Promise<Painter | null> {
  try {
    const world = await import('../src/sources/synthetic/shapes-world.js');
    const render = await import('../src/sources/synthetic/render.js');
    return (index, width, height) => {
      const rng = world.mulberry32(1000 + index);
      const scene = world.sampleScene(rng, { width, height });
      const clean = { ...scene, background: { ...scene.background, noiseSigma: 0 } };
      return { width, height, data: render.renderClean(clean, width, height) };
    };
  } catch {
    return null;
  }
}

/** A coloured square on a dark gradient, moving with `index`. */
const simplePainter: Painter = (index, width, height) => {
  const data = new Uint8Array(width * height * 3);
  const side = Math.max(2, Math.floor(height / 3));
  const x0 = (index * 7) % Math.max(1, width - side);
  const y0 = Math.floor((height - side) / 2);
  const colour = [[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 210, 40]][index % 4]!;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y * width + x) * 3;
      const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
      data[k] = inside ? colour[0]! : 20;
      data[k + 1] = inside ? colour[1]! : 20 + Math.floor((30 * y) / height);
      data[k + 2] = inside ? colour[2]! : 40;
    }
  }
  return { width, height, data };
};

/** RGB8 → the bytes of `encoding` with rows of `step` bytes (zero padding after each row). */
export function packImage(img: Rgb, encoding: 'rgb8' | 'bgr8' | 'yuv422_yuy2' | 'uyvy', step?: number): { step: number; data: Uint8Array } {
  const bpp = encoding === 'rgb8' || encoding === 'bgr8' ? 3 : 2;
  const rowStep = step ?? img.width * bpp;
  const out = new Uint8Array(rowStep * img.height);
  for (let y = 0; y < img.height; y++) {
    const src = y * img.width * 3;
    const dst = y * rowStep;
    if (bpp === 3) {
      for (let x = 0; x < img.width; x++) {
        const s = src + x * 3;
        const d = dst + x * 3;
        const swap = encoding === 'bgr8';
        out[d] = img.data[s + (swap ? 2 : 0)]!;
        out[d + 1] = img.data[s + 1]!;
        out[d + 2] = img.data[s + (swap ? 0 : 2)]!;
      }
    } else {
      for (let x = 0; x < img.width; x += 2) {
        const [y0, u0, v0] = yuv(img.data, src + x * 3);
        const [y1, u1, v1] = yuv(img.data, src + (x + 1) * 3);
        const u = (u0 + u1 + 1) >> 1;
        const v = (v0 + v1 + 1) >> 1;
        const d = dst + x * 2;
        const bytes = encoding === 'uyvy' ? [u, y0, v, y1] : [y0, u, y1, v];
        out.set(bytes, d);
      }
    }
  }
  return { step: rowStep, data: out };
}

/** BT.601 limited range, 8-bit fixed point. */
function yuv(rgb: Uint8Array, k: number): [number, number, number] {
  const r = rgb[k]!;
  const g = rgb[k + 1]!;
  const b = rgb[k + 2]!;
  return [
    ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16,
    ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128,
    ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128,
  ];
}

export function encodeJpeg(img: Rgb, quality = 85): Uint8Array {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let p = 0, q = 0; p < img.data.length; p += 3, q += 4) {
    rgba[q] = img.data[p]!;
    rgba[q + 1] = img.data[p + 1]!;
    rgba[q + 2] = img.data[p + 2]!;
    rgba[q + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ data: rgba, width: img.width, height: img.height }, quality).data);
}

export function encodePng(img: Rgb): Uint8Array {
  const png = new PNG({ width: img.width, height: img.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(img.data);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 9 }));
}

// ---------------------------------------------------------------------------------------------
// Messages

const header = (t: bigint, frameId = 'camera') => ({ stamp: { sec: Number(t / 1_000_000_000n), nanosec: Number(t % 1_000_000_000n) }, frame_id: frameId });

function imageMsg(t: bigint, fields: { width: number; height: number; encoding: string; step: number; data: Uint8Array; isBigEndian?: boolean }): Uint8Array {
  return encodeMessage('sensor_msgs/msg/Image', {
    header: header(t),
    height: fields.height,
    width: fields.width,
    encoding: fields.encoding,
    is_bigendian: fields.isBigEndian === true ? 1 : 0,
    step: fields.step,
    data: fields.data,
  });
}

function compressedMsg(t: bigint, format: string, data: Uint8Array): Uint8Array {
  return encodeMessage('sensor_msgs/msg/CompressedImage', { header: header(t), format, data });
}

function stringMsg(text: string): Uint8Array {
  return encodeMessage('std_msgs/msg/String', { data: text });
}

// ---------------------------------------------------------------------------------------------
// LZ4 frame compression (lz4_Frame_format.md; MCAP's "lz4" is the frame format). @mcap/support
// only decompresses, so this is a small greedy LZ4 block compressor.

const PRIME32 = [2654435761, 2246822519, 3266489917, 668265263, 374761393] as const;

/** XXH32 (xxhash spec), for the frame descriptor's header checksum. */
export function xxh32(data: Uint8Array, seed = 0): number {
  const [p1, p2, p3, p4, p5] = PRIME32;
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  const read = (i: number): number => data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
  const round = (acc: number, input: number): number => Math.imul(rotl((acc + Math.imul(input, p2)) | 0, 13), p1);
  let i = 0;
  let h: number;
  if (data.length >= 16) {
    let v1 = (seed + p1 + p2) | 0;
    let v2 = (seed + p2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - p1) | 0;
    for (; i <= data.length - 16; i += 16) {
      v1 = round(v1, read(i));
      v2 = round(v2, read(i + 4));
      v3 = round(v3, read(i + 8));
      v4 = round(v4, read(i + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + p5) | 0;
  }
  h = (h + data.length) | 0;
  for (; i <= data.length - 4; i += 4) h = Math.imul(rotl((h + Math.imul(read(i), p3)) | 0, 17), p4);
  for (; i < data.length; i++) h = Math.imul(rotl((h + Math.imul(data[i]!, p5)) | 0, 11), p1);
  h ^= h >>> 15;
  h = Math.imul(h, p2);
  h ^= h >>> 13;
  h = Math.imul(h, p3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One LZ4 block (lz4_Block_format.md): the last 5 bytes are literals, no match starts in the last 12. */
export function lz4Block(src: Uint8Array): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(n + Math.ceil(n / 255) + 16);
  const table = new Int32Array(1 << 16).fill(-1);
  const read32 = (p: number): number => (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
  let op = 0;
  const writeLength = (rest: number): void => {
    for (; rest >= 255; rest -= 255) out[op++] = 255;
    out[op++] = rest;
  };
  const writeLiterals = (from: number, to: number, matchLength: number): void => {
    const lit = to - from;
    out[op++] = (Math.min(lit, 15) << 4) | Math.min(matchLength, 15);
    if (lit >= 15) writeLength(lit - 15);
    out.set(src.subarray(from, to), op);
    op += lit;
  };
  let anchor = 0;
  let ip = 0;
  const matchLimit = n - 5;
  while (ip < n - 12) {
    const h = Math.imul(read32(ip), 2654435761) >>> 16;
    const ref = table[h]!;
    table[h] = ip;
    if (ref >= 0 && ip - ref <= 65535 && read32(ref) === read32(ip)) {
      let len = 4;
      while (ip + len < matchLimit && src[ref + len] === src[ip + len]) len++;
      writeLiterals(anchor, ip, len - 4);
      out[op++] = (ip - ref) & 0xff;
      out[op++] = (ip - ref) >> 8;
      if (len - 4 >= 15) writeLength(len - 4 - 15);
      ip += len;
      anchor = ip;
    } else {
      ip++;
    }
  }
  writeLiterals(anchor, n, 0);
  return out.subarray(0, op);
}

/** An LZ4 frame of one block: magic, FLG (v1, independent blocks), BD (4 MiB), HC, block, end mark. */
export function lz4Frame(src: Uint8Array): Uint8Array {
  const descriptor = new Uint8Array([0x60, 0x70]);
  const block = lz4Block(src);
  const raw = block.length >= src.length;
  const payload = raw ? src : block;
  const out = new Uint8Array(4 + 3 + 4 + payload.length + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x184d2204, true);
  out.set(descriptor, 4);
  out[6] = (xxh32(descriptor) >>> 8) & 0xff;
  view.setUint32(7, payload.length | (raw ? 0x80000000 : 0), true);
  out.set(payload, 11);
  view.setUint32(11 + payload.length, 0, true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

class MemoryWritable implements IWritable {
  private readonly parts: Uint8Array[] = [];
  private size = 0n;
  position(): bigint {
    return this.size;
  }
  async write(buffer: Uint8Array): Promise<void> {
    this.parts.push(buffer.slice());
    this.size += BigInt(buffer.byteLength);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

interface Channel {
  readonly topic: string;
  readonly type: string;
  /** Default cdr / ros2msg; the bad fixture overrides them. */
  readonly messageEncoding?: string;
  readonly schemaEncoding?: string;
  readonly schemaText?: string;
}

interface Entry {
  readonly topic: string;
  readonly t: bigint;
  readonly data: Uint8Array;
}

async function writeBag(
  channels: readonly Channel[],
  entries: readonly Entry[],
  options: { compress?: (chunk: Uint8Array, index: number) => { compression: string; compressedData: Uint8Array }; chunkBytes: number; generator: string },
): Promise<Uint8Array> {
  const writable = new MemoryWritable();
  let chunkIndex = 0;
  const compress = options.compress;
  const writer = new McapWriter({
    writable,
    chunkSize: options.chunkBytes,
    compressChunk: compress ? (chunk) => compress(chunk, chunkIndex++) : undefined,
  });
  await writer.start({ profile: 'ros2', library: 'bitmar-node tools/make-mcap-fixtures.ts' });
  const utf8 = new TextEncoder();
  const ids = new Map<string, { id: number; seq: number }>();
  for (const ch of channels) {
    const schemaId = await writer.registerSchema({
      name: ch.type,
      encoding: ch.schemaEncoding ?? 'ros2msg',
      data: utf8.encode(ch.schemaText ?? ros2msgSchema(ch.type)),
    });
    const id = await writer.registerChannel({
      topic: ch.topic,
      messageEncoding: ch.messageEncoding ?? 'cdr',
      schemaId,
      metadata: new Map([['offered_qos_profiles', '']]),
    });
    ids.set(ch.topic, { id, seq: 0 });
  }
  for (const e of entries) {
    const ch = ids.get(e.topic)!;
    await writer.addMessage({ channelId: ch.id, sequence: ch.seq++, logTime: e.t, publishTime: e.t, data: e.data });
  }
  await writer.addMetadata({ name: 'bitmar_fixture', metadata: new Map([['generator', options.generator]]) });
  await writer.end();
  return writable.bytes();
}

const zstdChunk = (chunk: Uint8Array): { compression: string; compressedData: Uint8Array } => ({
  compression: 'zstd',
  compressedData: new Uint8Array(zstd.compress(chunk, 19)),
});

// ---------------------------------------------------------------------------------------------
// The fixtures

export interface Fixture {
  readonly name: string;
  readonly bytes: Uint8Array;
}

const W = 160;
const H = 120;
const PROMPTS = ['describe the scene', 'how many shapes are there'];

async function shapesZstd(paint: Painter, generator: string): Promise<Fixture> {
  const channels: Channel[] = [
    { topic: '/camera/image_raw', type: 'sensor_msgs/msg/Image' },
    { topic: '/camera/image_bgr', type: 'sensor_msgs/msg/Image' },
    { topic: '/camera/image_yuyv', type: 'sensor_msgs/msg/Image' },
    { topic: '/camera/image_raw/compressed', type: 'sensor_msgs/msg/CompressedImage' },
    { topic: '/camera/image_png/compressed', type: 'sensor_msgs/msg/CompressedImage' },
    { topic: '/bitmar_node/prompt', type: 'std_msgs/msg/String' },
  ];
  const entries: Entry[] = [];
  let t = T0;
  const next = (): bigint => (t += 100n * MS);
  entries.push({ topic: '/bitmar_node/prompt', t: next(), data: stringMsg(PROMPTS[0]!) });
  for (let i = 0; i < 3; i++) {
    const img = paint(i, W, H);
    // rgb8 with 8 bytes of padding after each row: the reader must honour step.
    const rgb = packImage(img, 'rgb8', W * 3 + 8);
    entries.push({ topic: '/camera/image_raw', t: next(), data: imageMsg(t, { width: W, height: H, encoding: 'rgb8', ...rgb }) });
    if (i < 2) {
      const bgr = packImage(img, 'bgr8');
      entries.push({ topic: '/camera/image_bgr', t: next(), data: imageMsg(t, { width: W, height: H, encoding: 'bgr8', ...bgr }) });
      const yuyv = packImage(img, 'yuv422_yuy2');
      entries.push({ topic: '/camera/image_yuyv', t: next(), data: imageMsg(t, { width: W, height: H, encoding: 'yuv422_yuy2', ...yuyv }) });
      entries.push({ topic: '/camera/image_raw/compressed', t: next(), data: compressedMsg(t, 'rgb8; jpeg compressed bgr8', encodeJpeg(img)) });
    }
    if (i === 1) entries.push({ topic: '/camera/image_png/compressed', t: next(), data: compressedMsg(t, 'png', encodePng(img)) });
  }
  entries.push({ topic: '/bitmar_node/prompt', t: next(), data: stringMsg(PROMPTS[1]!) });
  return { name: 'shapes-zstd.mcap', bytes: await writeBag(channels, entries, { compress: zstdChunk, chunkBytes: 256 * 1024, generator }) };
}

async function shapesLz4(paint: Painter, generator: string): Promise<Fixture> {
  const channels: Channel[] = [
    { topic: '/camera/image_raw', type: 'sensor_msgs/msg/Image' },
    { topic: '/bitmar_node/prompt', type: 'std_msgs/msg/String' },
  ];
  const entries: Entry[] = [{ topic: '/bitmar_node/prompt', t: T0, data: stringMsg(PROMPTS[0]!) }];
  for (let i = 0; i < 2; i++) {
    const img = paint(10 + i, W, H);
    const t = T0 + BigInt(i + 1) * 200n * MS;
    entries.push({ topic: '/camera/image_raw', t, data: imageMsg(t, { width: W, height: H, encoding: 'rgb8', ...packImage(img, 'rgb8') }) });
  }
  const lz4 = (chunk: Uint8Array): { compression: string; compressedData: Uint8Array } => ({ compression: 'lz4', compressedData: lz4Frame(chunk) });
  return { name: 'shapes-lz4.mcap', bytes: await writeBag(channels, entries, { compress: lz4, chunkBytes: 256 * 1024, generator }) };
}

async function badInput(generator: string): Promise<Fixture> {
  const channels: Channel[] = [
    { topic: '/camera/image_raw', type: 'sensor_msgs/msg/Image' },
    { topic: '/camera/image_raw/compressed', type: 'sensor_msgs/msg/CompressedImage' },
    { topic: '/bitmar_node/prompt', type: 'std_msgs/msg/String' },
    { topic: '/weird', type: 'custom_msgs/msg/Thing', schemaText: 'int32 x\n' },
    { topic: '/json_prompt', type: 'std_msgs/msg/String', messageEncoding: 'json', schemaEncoding: 'jsonschema', schemaText: '{"type":"object"}' },
  ];
  const small = simplePainter(0, 32, 24);
  const good = (t: bigint): Uint8Array => imageMsg(t, { width: 32, height: 24, encoding: 'rgb8', ...packImage(small, 'rgb8') });
  const entries: Entry[] = [];
  let t = T0;
  const add = (topic: string, data: (t: bigint) => Uint8Array): void => {
    t += 10n * MS;
    entries.push({ topic, t, data: data(t) });
  };
  add('/camera/image_raw', good); // good frame 1
  add('/weird', () => new Uint8Array([0, 1, 0, 0, 42, 0, 0, 0])); // unknown schema
  add('/json_prompt', () => new TextEncoder().encode('{"data":"hi"}')); // not CDR
  add('/camera/image_raw', (tt) => imageMsg(tt, { width: 32, height: 24, encoding: 'bayer_rggb8', step: 32, data: new Uint8Array(32 * 24) }));
  add('/camera/image_raw', (tt) => imageMsg(tt, { width: 32, height: 24, encoding: 'rgb8', step: 96, data: new Uint8Array(96 * 23) })); // short data
  add('/camera/image_raw', (tt) => imageMsg(tt, { width: 0, height: 24, encoding: 'rgb8', step: 0, data: new Uint8Array(0) })); // zero width
  add('/camera/image_raw', (tt) => imageMsg(tt, { width: 100_000, height: 100_000, encoding: 'mono8', step: 100_000, data: new Uint8Array(16) })); // huge
  add('/camera/image_raw', (tt) => good(tt).subarray(0, 60)); // truncated CDR
  add('/camera/image_raw/compressed', (tt) => {
    const jpg = encodeJpeg(small);
    const corrupt = jpg.slice(0, 40); // SOI and a little of the header, then nothing
    return compressedMsg(tt, 'jpeg', corrupt);
  });
  add('/bitmar_node/prompt', () => encodeMessage('std_msgs/msg/String', { data: 'x' }).map((b, i, a) => (i === a.length - 2 ? 0xff : b))); // invalid UTF-8
  add('/camera/image_raw', good); // good frame 2, before the broken chunk
  // Chunk 1 (the one holding the next messages) is written with corrupt compressed bytes.
  const breakAt = entries.length;
  add('/camera/image_raw', good);
  add('/bitmar_node/prompt', () => stringMsg('lost in the broken chunk'));
  add('/camera/image_raw', good); // good frame 3, after the broken chunk
  add('/bitmar_node/prompt', () => stringMsg(PROMPTS[1]!));
  // One chunk per group: flush by making every chunk tiny, then corrupt the group's chunk.
  const compress = (chunk: Uint8Array, index: number): { compression: string; compressedData: Uint8Array } => {
    const z = zstdChunk(chunk);
    if (index !== breakAt && index !== breakAt + 1) return z;
    const broken = z.compressedData.slice();
    broken.fill(0x5a, 4); // keep the zstd magic, destroy the frame header and blocks
    return { compression: 'zstd', compressedData: broken };
  };
  return { name: 'bad-input.mcap', bytes: await writeBag(channels, entries, { compress, chunkBytes: 1, generator }) };
}

async function truncated(paint: Painter, generator: string): Promise<Fixture> {
  const channels: Channel[] = [{ topic: '/camera/image_raw', type: 'sensor_msgs/msg/Image' }];
  const entries: Entry[] = [];
  for (let i = 0; i < 3; i++) {
    const img = paint(20 + i, W, H);
    const t = T0 + BigInt(i) * 100n * MS;
    entries.push({ topic: '/camera/image_raw', t, data: imageMsg(t, { width: W, height: H, encoding: 'rgb8', ...packImage(img, 'rgb8') }) });
  }
  // One message per chunk; cut the file in the middle of the last chunk.
  const whole = await writeBag(channels, entries, { compress: zstdChunk, chunkBytes: 1, generator });
  const lastChunk = lastChunkOffset(whole);
  return { name: 'truncated.mcap', bytes: whole.subarray(0, lastChunk + 40) };
}

/** Offset of the last Chunk record (opcode 0x06) in the data section. */
function lastChunkOffset(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8; // magic
  let last = -1;
  while (offset + 9 <= bytes.length) {
    const op = bytes[offset]!;
    const length = Number(view.getBigUint64(offset + 1, true));
    if (op === 0x06) last = offset;
    if (op === 0x0f) break; // DataEnd
    offset += 9 + length;
  }
  if (last < 0) throw new Error('no chunk found');
  return last;
}

/** Which painter this checkout has: 'shapes-world' (src/sources/synthetic) or 'simple'. */
export async function fixtureGenerator(): Promise<string> {
  return (await shapesPainter()) ? 'shapes-world' : 'simple';
}

/** Builds every fixture in memory. */
export async function makeFixtures(): Promise<Fixture[]> {
  await zstd.isLoaded;
  const shapes = await shapesPainter();
  const paint = shapes ?? simplePainter;
  const generator = shapes ? 'shapes-world' : 'simple';
  return [await shapesZstd(paint, generator), await shapesLz4(paint, generator), await badInput(generator), await truncated(paint, generator)];
}

async function main(): Promise<void> {
  const outDir = process.argv[2] ?? FIXTURE_DIR.pathname;
  mkdirSync(outDir, { recursive: true });
  for (const f of await makeFixtures()) {
    writeFileSync(join(outDir, f.name), f.bytes);
    process.stdout.write(`${join(outDir, f.name)}  ${f.bytes.byteLength} bytes\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`make-mcap-fixtures: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
