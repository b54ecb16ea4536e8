/**
 * The eval scene sets.
 *
 * TypeScript renderer (the node's own, src/sources/synthetic/): scene i is drawn from
 * mulberry32(sceneSeed(seed, i)) across the contract's robustness ranges (shapes-world.md
 * "Robustness"), every one of them at full frame size so the node's preprocessing runs on it:
 * - frame size: 20% common camera sizes, 80% width 160..1280 and height 120..720 drawn uniformly and
 *   independently (any aspect ratio 0.22..10.7);
 * - background, gradient, noise σ 0..8 and colour jitter ±15: as `sampleScene` draws them;
 * - brightness: uniform 0.9..1.1 (before clipping, `renderScene`);
 * - JPEG: half the frames, quality uniform 70..100 (`jpegRoundTrip`: jpeg-js's exact pixels).
 *
 * Python renderer (tools/train/shapes.py, written independently): a BMDS file of already
 * area-resized S×S frames with their captions (`shapes.py --out FILE --count N --seed S`); the
 * objects are read back from the caption. Those frames go through the engine's S×S path (the
 * node's resize of an S×S frame to image_size = S is the identity).
 */
import { readFileSync } from 'node:fs';
import { jpegRoundTrip } from '../sources/synthetic/jpeg-round-trip.js';
import { renderScene } from '../sources/synthetic/render.js';
import {
  FRAME_LIMITS,
  captionOf,
  deriveSeed,
  mulberry32,
  pick,
  randInt,
  randUniform,
  sampleScene,
  type FrameSize,
  type PromptKind,
  type Rng,
  type Scene,
} from '../sources/synthetic/shapes-world.js';
import type { RgbImage } from '../model/preprocess.js';
import { PROMPT_KINDS, questionsFor, truthFromCaption, type Question, type SceneTruth } from './questions.js';
import { STREAMS, sceneSeed } from './seeds.js';

/** The robustness ranges scenes are drawn from (defaults: the contract's). */
export interface RobustnessRanges {
  readonly minWidth: number;
  readonly maxWidth: number;
  readonly minHeight: number;
  readonly maxHeight: number;
  /** Fraction of frames drawn from COMMON_FRAME_SIZES instead of uniform sides. */
  readonly commonSizeFraction: number;
  readonly minBrightness: number;
  readonly maxBrightness: number;
  /** Fraction of frames JPEG round-tripped. */
  readonly jpegFraction: number;
  readonly minJpegQuality: number;
  readonly maxJpegQuality: number;
}

export const CONTRACT_RANGES: RobustnessRanges = {
  minWidth: FRAME_LIMITS.minWidth,
  maxWidth: FRAME_LIMITS.maxWidth,
  minHeight: FRAME_LIMITS.minHeight,
  maxHeight: FRAME_LIMITS.maxHeight,
  commonSizeFraction: 0.2,
  minBrightness: 0.9,
  maxBrightness: 1.1,
  jpegFraction: 0.5,
  minJpegQuality: 70,
  maxJpegQuality: 100,
};

export const COMMON_FRAME_SIZES: readonly FrameSize[] = [
  { width: 160, height: 120 },
  { width: 320, height: 240 },
  { width: 640, height: 480 },
  { width: 848, height: 480 },
  { width: 1280, height: 720 },
];

/** How one eval frame was made. */
export interface FrameConditions {
  readonly width: number;
  readonly height: number;
  /** null for a Python frame (unknown). */
  readonly brightness: number | null;
  /** null when the frame was not JPEG-compressed (or unknown). */
  readonly jpegQuality: number | null;
  /** Per-pixel noise σ, null when unknown. */
  readonly noiseSigma: number | null;
  readonly objects: number;
}

export interface EvalItem {
  /** 0, 1, 2, … within the set. */
  readonly index: number;
  readonly renderer: 'ts' | 'python';
  readonly truth: SceneTruth;
  /** The frame as the node receives it (RGB8, tightly packed). */
  readonly image: RgbImage;
  readonly conditions: FrameConditions;
  readonly questions: readonly Question[];
}

/** A TypeScript-rendered item, plus the frame before JPEG (to write the same pixels as a .jpg file). */
export interface TsEvalItem extends EvalItem {
  readonly renderer: 'ts';
  readonly scene: Scene;
  /** The rendered frame before JPEG compression (=== image.data when not compressed). */
  readonly preJpeg: Uint8Array;
}

function sampleFrameSize(rng: Rng, r: RobustnessRanges): FrameSize {
  if (rng() < r.commonSizeFraction) {
    const fits = COMMON_FRAME_SIZES.filter((f) => f.width >= r.minWidth && f.width <= r.maxWidth && f.height >= r.minHeight && f.height <= r.maxHeight);
    if (fits.length > 0) return pick(rng, fits);
  }
  return { width: randInt(rng, r.minWidth, r.maxWidth), height: randInt(rng, r.minHeight, r.maxHeight) };
}

/** Scene `index` of the TypeScript eval set of `seed`: a function of (seed, index, ranges) only. */
export function tsEvalItem(seed: number, index: number, kinds: readonly PromptKind[] = PROMPT_KINDS, ranges: RobustnessRanges = CONTRACT_RANGES): TsEvalItem {
  const rng = mulberry32(sceneSeed(seed, index));
  const frame = sampleFrameSize(rng, ranges);
  const scene = sampleScene(rng, frame);
  const brightness = randUniform(rng, ranges.minBrightness, ranges.maxBrightness);
  const jpegQuality = rng() < ranges.jpegFraction ? randInt(rng, ranges.minJpegQuality, ranges.maxJpegQuality) : null;
  const preJpeg = renderScene(scene, frame.width, frame.height, rng, { brightness });
  const data = jpegQuality === null ? preJpeg : jpegRoundTrip(preJpeg, frame.width, frame.height, jpegQuality);
  const truth: SceneTruth = { caption: captionOf(scene), objects: scene.objects };
  const questions = questionsFor(truth, mulberry32(deriveSeed(seed, STREAMS.questions + index)), kinds);
  return {
    index,
    renderer: 'ts',
    truth,
    scene,
    preJpeg,
    image: { width: frame.width, height: frame.height, data },
    conditions: { ...frame, brightness, jpegQuality, noiseSigma: scene.background.noiseSigma, objects: scene.objects.length },
    questions,
  };
}

/** Scenes 0..count−1 of the TypeScript eval set, rendered lazily one at a time. */
export function* tsSceneSet(seed: number, count: number, kinds: readonly PromptKind[] = PROMPT_KINDS, ranges: RobustnessRanges = CONTRACT_RANGES): Generator<TsEvalItem, void, undefined> {
  for (let i = 0; i < count; i++) yield tsEvalItem(seed, i, kinds, ranges);
}

// ---------------------------------------------------------------------------------------------
// BMDS files (tools/train/README.md; written by tools/train/shapes.py and export-dataset.ts)

export interface BmdsRecord {
  readonly image: RgbImage;
  readonly caption: string;
}

export interface BmdsFile {
  readonly count: number;
  readonly imageSize: number;
  readonly vocabulary: readonly string[];
  readonly records: () => Generator<BmdsRecord, void, undefined>;
}

/** Reads a BMDS v1 file (throws Error naming the file for anything malformed). */
export function readBmds(path: string): BmdsFile {
  const buf = readFileSync(path);
  const fail = (why: string): never => {
    throw new Error(`${path} is not a BMDS v1 file: ${why}`);
  };
  if (buf.length < 20 || buf.toString('latin1', 0, 4) !== 'BMDS') fail('bad magic');
  const version = buf.readUInt32LE(4);
  if (version !== 1) fail(`version ${version}`);
  const count = buf.readUInt32LE(8);
  const imageSize = buf.readUInt32LE(12);
  const vocabBytes = buf.readUInt32LE(16);
  if (20 + vocabBytes > buf.length) fail('truncated vocabulary');
  const vocabulary = JSON.parse(buf.toString('utf8', 20, 20 + vocabBytes)) as string[];
  const start = 20 + vocabBytes;
  const px = imageSize * imageSize * 3;
  function* records(): Generator<BmdsRecord, void, undefined> {
    let off = start;
    for (let i = 0; i < count; i++) {
      if (off + px + 2 > buf.length) fail(`truncated at record ${i}`);
      const data = new Uint8Array(buf.subarray(off, off + px)); // a copy the worker may take
      const jsonBytes = buf.readUInt16LE(off + px);
      const json = JSON.parse(buf.toString('utf8', off + px + 2, off + px + 2 + jsonBytes)) as { caption?: unknown };
      if (typeof json.caption !== 'string') fail(`record ${i} has no caption`);
      off += px + 2 + jsonBytes;
      yield { image: { width: imageSize, height: imageSize, data }, caption: json.caption as string };
    }
  }
  return { count, imageSize, vocabulary, records };
}

/**
 * The first `count` scenes of a BMDS file as eval items. Questions are drawn with the eval's own
 * question stream of `seed` (the file's own `qa` is not used, so both renderers get the same mix).
 * Throws when a caption is not a world caption.
 */
export function* bmdsSceneSet(path: string, count: number, seed: number, kinds: readonly PromptKind[] = PROMPT_KINDS): Generator<EvalItem, void, undefined> {
  const file = readBmds(path);
  let index = 0;
  for (const rec of file.records()) {
    if (index >= count) return;
    const truth = truthFromCaption(rec.caption);
    if (!truth) throw new Error(`${path}: record ${index} has caption "${rec.caption}", not a Shapes-world caption`);
    const questions = questionsFor(truth, mulberry32(deriveSeed(seed, STREAMS.questions + index)), kinds);
    yield {
      index,
      renderer: 'python',
      truth,
      image: rec.image,
      conditions: { width: rec.image.width, height: rec.image.height, brightness: null, jpegQuality: null, noiseSigma: null, objects: truth.objects.length },
      questions,
    };
    index++;
  }
}
