/**
 * Shapes-world training data exporter (../shared/docs/shapes-world.md, docs/bitmar-stream.md §3).
 *
 *   node --import tsx tools/train/export-dataset.ts --out tools/train/data/train.bin --count 100000 \
 *     --seed 1 [--image-size 64] [--jpeg-fraction 0.5] [--heldout N] [--workers 2] \
 *     [--narration-seqs N] [--narration-frames F] [--narration-out PATH]
 *
 * Each sample: a scene sampled for a random frame size in 160×120..1280×720 (any aspect ratio,
 * biased toward small frames for speed), rendered with the contract's noise and colour jitter and a
 * random brightness 0.9..1.1, JPEG round-tripped at quality 70..100 for `--jpeg-fraction` of the
 * samples (src/sources/synthetic/jpeg-round-trip.ts: jpeg-js's exact pixels, without Huffman),
 * then area-resized to image_size² with src/model/preprocess.ts `resizeAreaU8` (the node's own
 * preprocessing, so training sees exactly the node's bytes before `v/127.5 − 1`).
 * Sample i depends only on (seed, i), so a file is reproducible; `--heldout N` also writes N samples
 * from an independent seed stream to `<out>-heldout.bin` (same as a run with another --seed).
 *
 * FILE FORMAT `BMDS` v1 (all integers little-endian):
 *   offset 0   4 bytes  magic "BMDS"
 *          4   u32      version = 1
 *          8   u32      count (samples)
 *         12   u32      imageSize S
 *         16   u32      vocabJsonBytes V
 *         20   V bytes  UTF-8 JSON array of words = WORLD_VOCABULARY (sorted)
 *   then `count` records:
 *              S·S·3 bytes  RGB8, row-major HWC (already area-resized; model input = v/127.5 − 1)
 *              u16          jsonBytes J
 *              J bytes      UTF-8 JSON {"caption": "...", "qa": [["prompt", "answer"], ...]}
 *   qa holds: describe the scene, how many shapes are there, every allowed `what color is the
 *   {shape}`, and two `is there a {colour} {shape}` (one yes, one no).
 *
 * NARRATION FORMAT `BMNS` v1 (`--narration-seqs N`, written to `--narration-out`, default
 * `<out>-narration.bin`): motion sequences from the synthetic camera, frames sampled every 1..2·fps
 * camera frames so the scene sometimes changes within a sequence.
 *   offset 0 "BMNS", 4 u32 version = 1, 8 u32 sequences, 12 u32 imageSize S,
 *         16 u32 framesPerSequence F, 20 u32 vocabJsonBytes V, 24 vocab JSON,
 *   then sequences·F records in the BMDS record layout (frame f of sequence q is record q·F + f).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { resizeAreaU8 } from '../../src/model/preprocess.js';
import { jpegRoundTrip } from '../../src/sources/synthetic/jpeg-round-trip.js';
import { renderScene } from '../../src/sources/synthetic/render.js';
import {
  FRAME_LIMITS,
  type FrameSize,
  type Rng,
  type Scene,
  WORLD_VOCABULARY,
  captionOf,
  deriveSeed,
  mulberry32,
  pick,
  qaFor,
  randInt,
  randUniform,
  sampleScene,
} from '../../src/sources/synthetic/shapes-world.js';
import { syntheticScenes } from '../../src/sources/synthetic/synthetic-camera.js';

export const DATASET_MAGIC = 'BMDS';
export const NARRATION_MAGIC = 'BMNS';
export const FORMAT_VERSION = 1;

export interface ExportOptions {
  readonly out: string;
  readonly count: number;
  readonly seed: number;
  /** Model input side S. Default 64. */
  readonly imageSize?: number;
  /** Fraction of samples JPEG round-tripped (quality 70..100). Default 0.5. */
  readonly jpegFraction?: number;
  /** Called every ~2 s and at the end. */
  readonly onProgress?: (done: number, total: number, elapsedMs: number) => void;
}

export interface NarrationOptions extends Omit<ExportOptions, 'count'> {
  readonly sequences: number;
  /** Frames per sequence. Default 8. */
  readonly framesPerSequence?: number;
}

const COMMON_ASPECTS = [4 / 3, 16 / 9, 3 / 2, 1, 5 / 4, 16 / 10];

/**
 * A random frame size covering the whole contract range: 55% common aspect ratios, 45% width and
 * height drawn independently (any aspect ratio); sides biased toward small (u³) because every cost
 * grows with the pixel count. Median about 200 px high; 1280×720 is still drawn.
 */
export function sampleFrameSize(rng: Rng): FrameSize {
  const { minWidth, minHeight, maxWidth, maxHeight } = FRAME_LIMITS;
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Math.round(v)));
  if (rng() < 0.55) {
    const aspect = pick(rng, COMMON_ASPECTS);
    const height = clamp(minHeight + (maxHeight - minHeight) * rng() ** 3, minHeight, maxHeight);
    return { width: clamp(height * aspect, minWidth, maxWidth), height };
  }
  return {
    width: clamp(minWidth + (maxWidth - minWidth) * rng() ** 3, minWidth, maxWidth),
    height: clamp(minHeight + (maxHeight - minHeight) * rng() ** 3, minHeight, maxHeight),
  };
}

/**
 * Renders one frame with the robustness augmentations and area-resizes it to S×S uint8. JPEG uses
 * jpegRoundTrip: the exact pixels of a jpeg-js encode → decode at a fraction of the cost.
 */
function augmentAndResize(scene: Scene, frame: FrameSize, rng: Rng, imageSize: number, jpegFraction: number): Uint8Array {
  const { width, height } = frame;
  let rgb = renderScene(scene, width, height, rng, { brightness: randUniform(rng, 0.9, 1.1) });
  if (rng() < jpegFraction) rgb = jpegRoundTrip(rgb, width, height, randInt(rng, 70, 100));
  return resizeAreaU8(rgb, width, height, imageSize);
}

/** One record: image bytes, u16 JSON length, JSON. */
function encodeRecord(image: Uint8Array, scene: Scene, rng: Rng): Buffer {
  const json = Buffer.from(JSON.stringify({ caption: captionOf(scene), qa: qaFor(scene, rng) }), 'utf8');
  if (json.length > 0xffff) throw new Error(`record JSON of ${json.length} bytes exceeds u16`);
  const rec = Buffer.allocUnsafe(image.length + 2 + json.length);
  rec.set(image, 0);
  rec.writeUInt16LE(json.length, image.length);
  json.copy(rec, image.length + 2);
  return rec;
}

function header(magic: string, fields: readonly number[]): Buffer {
  const vocab = Buffer.from(JSON.stringify(WORLD_VOCABULARY), 'utf8');
  const h = Buffer.alloc(4 + 4 * (fields.length + 1));
  h.write(magic, 0, 'latin1');
  fields.forEach((v, i) => h.writeUInt32LE(v, 4 + 4 * i));
  h.writeUInt32LE(vocab.length, 4 + 4 * fields.length);
  return Buffer.concat([h, vocab]);
}

/** Buffered sequential writer: streams to disk in ~4 MiB writes. */
class FileSink {
  private readonly fd: number;
  private chunks: Buffer[] = [];
  private pending = 0;
  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'w');
  }
  write(b: Buffer): void {
    this.chunks.push(b);
    this.pending += b.length;
    if (this.pending >= 4 << 20) this.flush();
  }
  flush(): void {
    if (this.pending === 0) return;
    writeSync(this.fd, Buffer.concat(this.chunks));
    this.chunks = [];
    this.pending = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function checkOptions(o: { count: number; seed: number; imageSize: number; jpegFraction: number }): void {
  const problems: string[] = [];
  if (!(Number.isInteger(o.count) && o.count >= 0 && o.count < 2 ** 32)) problems.push(`count ${o.count} must be a non-negative integer`);
  if (!Number.isInteger(o.seed)) problems.push(`seed ${o.seed} must be an integer`);
  if (!(Number.isInteger(o.imageSize) && o.imageSize >= 8 && o.imageSize <= 1024)) problems.push(`image size ${o.imageSize} must be an integer 8..1024`);
  if (!(o.jpegFraction >= 0 && o.jpegFraction <= 1)) problems.push(`jpeg fraction ${o.jpegFraction} must be in 0..1`);
  if (problems.length > 0) throw new RangeError(problems.join('; '));
}

function progress(onProgress: ExportOptions['onProgress'], start: number): (done: number, total: number, force?: boolean) => void {
  let last = start;
  return (done, total, force = false) => {
    const now = performance.now();
    if (onProgress && (force || now - last >= 2000)) {
      last = now;
      onProgress(done, total, now - start);
    }
  };
}

/** Record i of a BMDS file: a function of (seed, i) only, so any worker can make it. */
function makeSample(seed: number, i: number, imageSize: number, jpegFraction: number): Buffer {
  const rng = mulberry32(deriveSeed(seed, i));
  const frame = sampleFrameSize(rng);
  const scene = sampleScene(rng, frame);
  return encodeRecord(augmentAndResize(scene, frame, rng, imageSize, jpegFraction), scene, rng);
}

/** Writes a BMDS file (format above) on this thread. Sample i is a function of (seed, i) only. */
export function exportDataset(options: ExportOptions): void {
  const imageSize = options.imageSize ?? 64;
  const jpegFraction = options.jpegFraction ?? 0.5;
  checkOptions({ ...options, imageSize, jpegFraction });
  const sink = new FileSink(options.out);
  const report = progress(options.onProgress, performance.now());
  sink.write(header(DATASET_MAGIC, [FORMAT_VERSION, options.count, imageSize]));
  for (let i = 0; i < options.count; i++) {
    sink.write(makeSample(options.seed, i, imageSize, jpegFraction));
    report(i + 1, options.count);
  }
  sink.close();
  report(options.count, options.count, true);
}

interface ChunkRequest {
  readonly start: number;
  readonly end: number;
}
interface ChunkResult {
  readonly start: number;
  readonly bytes: Uint8Array;
}
interface WorkerConfig {
  readonly kind: 'bmds-worker';
  readonly seed: number;
  readonly imageSize: number;
  readonly jpegFraction: number;
}

const CHUNK_SAMPLES = 32;

/**
 * The same file as exportDataset, byte for byte, made by `workers` worker threads (each runs this
 * module); chunks of 32 samples are written in order as they complete, at most 2 in flight per
 * worker, so memory stays bounded.
 */
export async function exportDatasetParallel(options: ExportOptions, workers: number): Promise<void> {
  const imageSize = options.imageSize ?? 64;
  const jpegFraction = options.jpegFraction ?? 0.5;
  checkOptions({ ...options, imageSize, jpegFraction });
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= 64)) throw new RangeError(`workers ${workers} must be an integer 1..64`);
  const sink = new FileSink(options.out);
  const report = progress(options.onProgress, performance.now());
  sink.write(header(DATASET_MAGIC, [FORMAT_VERSION, options.count, imageSize]));
  const config: WorkerConfig = { kind: 'bmds-worker', seed: options.seed, imageSize, jpegFraction };
  const pool = Array.from({ length: workers }, () => startWorker(config));
  try {
    await new Promise<void>((resolve, reject) => {
      const done = new Map<number, Uint8Array>();
      let nextToSend = 0;
      let nextToWrite = 0;
      const send = (w: Worker): void => {
        if (nextToSend >= options.count) return;
        const req: ChunkRequest = { start: nextToSend, end: Math.min(options.count, nextToSend + CHUNK_SAMPLES) };
        nextToSend = req.end;
        w.postMessage(req);
      };
      if (options.count === 0) resolve();
      for (const w of pool) {
        w.on('error', reject);
        w.on('message', (msg: ChunkResult) => {
          done.set(msg.start, msg.bytes);
          for (let b = done.get(nextToWrite); b; b = done.get(nextToWrite)) {
            done.delete(nextToWrite);
            sink.write(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
            nextToWrite = Math.min(options.count, nextToWrite + CHUNK_SAMPLES);
            report(nextToWrite, options.count);
          }
          if (nextToWrite >= options.count) resolve();
          else send(w);
        });
        send(w);
        send(w);
      }
    });
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
    sink.close();
  }
  report(options.count, options.count, true);
}

/**
 * A worker running this module. Under tsx the worker needs the TypeScript loader registered first
 * (Node 20 workers do not inherit `--import tsx` hooks), so a two-line bootstrap does that.
 */
function startWorker(config: WorkerConfig): Worker {
  const self = import.meta.url;
  if (self.endsWith('.js')) return new Worker(new URL(self), { workerData: config });
  // tsx's ESM API, resolved from this file through the package's own exports map.
  const pkgPath = createRequire(self).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const api = pathToFileURL(join(dirname(pkgPath), pkg.exports['./esm/api']!.import.default)).href;
  const bootstrap = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: config });
}

/** Worker side of exportDatasetParallel: answers chunk requests with concatenated records. */
function serveChunks(config: WorkerConfig): void {
  parentPort?.on('message', (req: ChunkRequest) => {
    const parts: Buffer[] = [];
    for (let i = req.start; i < req.end; i++) parts.push(makeSample(config.seed, i, config.imageSize, config.jpegFraction));
    const bytes = new Uint8Array(Buffer.concat(parts));
    const result: ChunkResult = { start: req.start, bytes };
    parentPort?.postMessage(result, [bytes.buffer]);
  });
}

/** Writes a BMNS file of synthetic-camera motion sequences (format above). */
export function exportNarration(options: NarrationOptions): void {
  const imageSize = options.imageSize ?? 64;
  const jpegFraction = options.jpegFraction ?? 0.5;
  const frames = options.framesPerSequence ?? 8;
  checkOptions({ count: options.sequences, seed: options.seed, imageSize, jpegFraction });
  if (!(Number.isInteger(frames) && frames >= 1 && frames <= 1000)) throw new RangeError(`frames per sequence ${frames} must be an integer 1..1000`);
  const sink = new FileSink(options.out);
  const report = progress(options.onProgress, performance.now());
  sink.write(header(NARRATION_MAGIC, [FORMAT_VERSION, options.sequences, imageSize, frames]));
  for (let q = 0; q < options.sequences; q++) {
    // Stream 0x4e000000+q keeps narration seeds apart from the single-frame samples of the same seed.
    const rng = mulberry32(deriveSeed(options.seed, 0x4e000000 + q));
    const frame = sampleFrameSize(rng);
    const fps = 10;
    const steps = syntheticScenes({ ...frame, fps, seed: randInt(rng, 0, 0x7fffffff), sceneChangeEverySec: randUniform(rng, 3, 12) });
    let skip = 0;
    for (let f = 0; f < frames; f++) {
      let step = steps.next();
      for (let k = 0; k < skip; k++) step = steps.next();
      if (step.done) throw new Error('synthetic scene stream ended early'); // infinite stream: unreachable
      const scene = step.value.scene;
      sink.write(encodeRecord(augmentAndResize(scene, frame, rng, imageSize, jpegFraction), scene, rng));
      skip = randInt(rng, 0, 2 * fps - 1); // next sampled frame is 1..2·fps camera frames later
    }
    report(q + 1, options.sequences);
  }
  sink.close();
  report(options.sequences, options.sequences, true);
}

// ---------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new RangeError(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) args.set(a.slice(2, eq), a.slice(eq + 1));
    else args.set(a.slice(2), argv[++i] ?? '');
  }
  return args;
}

function numberArg(args: Map<string, string>, name: string, fallback?: number): number {
  const v = args.get(name);
  if (v === undefined) {
    if (fallback === undefined) throw new RangeError(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new RangeError(`--${name} ${v} is not a number`);
  return n;
}

function withSuffix(path: string, suffix: string): string {
  return path.endsWith('.bin') ? `${path.slice(0, -4)}${suffix}.bin` : `${path}${suffix}`;
}

function logProgress(label: string): ExportOptions['onProgress'] {
  return (done, total, ms) => {
    const rate = done / (ms / 1000);
    const eta = rate > 0 ? (total - done) / rate : 0;
    process.stderr.write(`${label}: ${done}/${total}  ${rate.toFixed(1)}/s  eta ${eta.toFixed(0)} s\n`);
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const known = ['out', 'count', 'seed', 'image-size', 'jpeg-fraction', 'heldout', 'narration-seqs', 'narration-frames', 'narration-out', 'workers'];
  const args = parseArgs(argv);
  const unknown = [...args.keys()].filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new RangeError(`unknown option(s) ${unknown.map((k) => `--${k}`).join(', ')}; known: ${known.join(', ')}`);
  const out = args.get('out');
  if (!out) throw new RangeError('--out PATH is required');
  const base = { seed: numberArg(args, 'seed', 1), imageSize: numberArg(args, 'image-size', 64), jpegFraction: numberArg(args, 'jpeg-fraction', 0.5) };
  const workers = numberArg(args, 'workers', 1);
  const write = (o: ExportOptions): Promise<void> => (workers > 1 ? exportDatasetParallel(o, workers) : Promise.resolve(exportDataset(o)));
  await write({ ...base, out, count: numberArg(args, 'count'), onProgress: logProgress(out) });
  const heldout = numberArg(args, 'heldout', 0);
  if (heldout > 0) {
    const path = withSuffix(out, '-heldout');
    const seed = deriveSeed(base.seed, 0x48454c44);
    process.stderr.write(`${path}: held-out seed ${seed}\n`);
    await write({ ...base, seed, out: path, count: heldout, onProgress: logProgress(path) });
  }
  const sequences = numberArg(args, 'narration-seqs', 0);
  if (sequences > 0) {
    const path = args.get('narration-out') ?? withSuffix(out, '-narration');
    exportNarration({ ...base, out: path, sequences, framesPerSequence: numberArg(args, 'narration-frames', 8), onProgress: logProgress(path) });
  }
}

function isWorkerConfig(v: unknown): v is WorkerConfig {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'bmds-worker';
}

if (!isMainThread && isWorkerConfig(workerData)) {
  serveChunks(workerData);
} else if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`export-dataset: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
