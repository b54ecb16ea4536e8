/**
 * The narration eval (issue 4 "Narration"): the synthetic camera (src/sources/synthetic, the node's
 * default source: moving objects, scene changes) runs for `minutes` of stream time; one frame every
 * 1/sentenceHz seconds goes to the worker in narration mode (docs/bitmar-stream.md §4: one
 * continuous decoder stream `<bos> s₁ <eos> s₂ …`, each sentence conditioned on the newest frame),
 * and a sentence counts when it is exactly the caption of the frame it was generated for.
 *
 * The narration session lives in the worker and continues across calls: run this on a fresh worker
 * to measure a stream from its start.
 */
import { renderScene } from '../sources/synthetic/render.js';
import { PROMPTS, deriveSeed, mulberry32 } from '../sources/synthetic/shapes-world.js';
import { syntheticScenes } from '../sources/synthetic/synthetic-camera.js';
import type { EvalModel } from './accuracy.js';
import { Confusions, Tally, captionDiff, isExactMatch, normalizeAnswer, type Accuracy } from './scoring.js';
import { STREAMS } from './seeds.js';

export interface NarrationOptions {
  readonly seed: number;
  /** Stream length in minutes of camera time. Default 10. */
  readonly minutes?: number;
  /** Camera frame rate (the camera's motion is per frame). Default 10. */
  readonly cameraFps?: number;
  /** Sentences per second of stream time (one sampled frame each). Default 2. */
  readonly sentenceHz?: number;
  /** Frame size. Default 320×240 (the node's synthetic camera). */
  readonly width?: number;
  readonly height?: number;
  /** Mean seconds between scene changes. Default 3 (config/bitmar.yaml's synthetic source). */
  readonly sceneChangeEverySec?: number;
  /**
   * Also caption each sampled frame in caption mode (a fresh cache), to tell narration-specific
   * errors from recognition errors. Default true.
   */
  readonly compareCaptionMode?: boolean;
  /** Wrong sentences kept as examples. Default 5. */
  readonly examples?: number;
  readonly onSentence?: (done: number, total: number) => void;
}

export interface NarrationExample {
  readonly sentence: number;
  readonly frame: number;
  readonly expected: string;
  readonly got: string;
}

export interface NarrationResult {
  readonly minutes: number;
  readonly cameraFps: number;
  readonly sentenceHz: number;
  readonly width: number;
  readonly height: number;
  readonly sentences: number;
  /** Sentences that are exactly the caption of their own frame. */
  readonly exact: Accuracy;
  /** Split: the first sentence after a scene change vs the others. */
  readonly bySceneChange: Record<string, Accuracy>;
  /** Split by position in the stream: the first 10 sentences vs the rest (the KV window slides). */
  readonly byPosition: Record<string, Accuracy>;
  /** The same frames in caption mode (when compared). */
  readonly captionMode?: Accuracy;
  /** Wrong sentences that are exactly the previous sentence's frame caption (a lagging narration). */
  readonly lagging: number;
  readonly confusions: { confusion: string; count: number }[];
  readonly examples: NarrationExample[];
  readonly elapsedMs: number;
}

export async function evaluateNarration(model: EvalModel, opts: NarrationOptions): Promise<NarrationResult> {
  const t0 = performance.now();
  const minutes = opts.minutes ?? 10;
  const cameraFps = opts.cameraFps ?? 10;
  const sentenceHz = opts.sentenceHz ?? 2;
  const width = opts.width ?? 320;
  const height = opts.height ?? 240;
  if (!(minutes > 0 && cameraFps > 0 && sentenceHz > 0 && sentenceHz <= cameraFps)) {
    throw new RangeError(`narration: minutes ${minutes} and camera fps ${cameraFps} must be > 0, sentence rate ${sentenceHz} in (0, fps]`);
  }
  const step = Math.max(1, Math.round(cameraFps / sentenceHz));
  const frames = Math.round(minutes * 60 * cameraFps);
  const total = Math.ceil(frames / step);
  const camSeed = deriveSeed(opts.seed, STREAMS.narration);
  const noise = mulberry32(deriveSeed(camSeed, 2));
  const tally = new Tally();
  const position = new Tally();
  const overall = new Tally();
  const confusions = new Confusions();
  const examples: NarrationExample[] = [];
  let lagging = 0;
  let sentence = 0;
  let previousCaption: string | null = null;
  let changedSinceLast = true;
  for (const s of syntheticScenes({ width, height, fps: cameraFps, seed: camSeed, sceneChangeEverySec: opts.sceneChangeEverySec ?? 3, maxFrames: frames })) {
    if (s.isNewScene) changedSinceLast = true;
    if (s.index % step !== 0) continue;
    const data = renderScene(s.scene, width, height, noise);
    const res = await model.describe({ images: [{ width, height, data: data.slice() }], prompt: PROMPTS.describe, mode: 'narration' }, () => {});
    const ok = isExactMatch(res.text, s.caption);
    overall.add('all', ok);
    if (opts.compareCaptionMode ?? true) {
      const cap = await model.describe({ images: [{ width, height, data }], prompt: PROMPTS.describe, mode: 'caption' }, () => {});
      overall.add('caption mode', isExactMatch(cap.text, s.caption));
    }
    tally.add(changedSinceLast ? 'first after a scene change' : 'same scene', ok);
    position.add(sentence < 10 ? 'sentences 1–10' : 'sentences 11+', ok);
    if (!ok) {
      if (previousCaption !== null && isExactMatch(res.text, previousCaption)) lagging++;
      for (const [field, e, g] of captionDiff(s.caption, res.text)) confusions.add(field, e, g);
      // Examples from different scenes (consecutive frames of one scene repeat the same error).
      if (examples.length < (opts.examples ?? 5) && examples[examples.length - 1]?.expected !== s.caption) examples.push({ sentence, frame: s.index, expected: s.caption, got: normalizeAnswer(res.text) });
    }
    previousCaption = s.caption;
    changedSinceLast = false;
    sentence++;
    opts.onSentence?.(sentence, total);
  }
  return {
    minutes,
    cameraFps,
    sentenceHz,
    width,
    height,
    sentences: sentence,
    exact: overall.get('all'),
    bySceneChange: tally.toJSON(),
    byPosition: position.toJSON(),
    ...(overall.keys().includes('caption mode') ? { captionMode: overall.get('caption mode') } : {}),
    lagging,
    confusions: confusions.top(8),
    examples,
    elapsedMs: performance.now() - t0,
  };
}
