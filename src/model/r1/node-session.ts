/**
 * bitmar-r1 as the node serves it (the inference worker's R1 side, usable in-thread too): frames are
 * 768-d feature vectors, given directly or extracted from images by the DINOv2 ONNX extractor
 * (vision-onnx.ts); captions are R1's exact generation (the authors' generate(), spec §6.1) of the
 * newest frame; every frame of a batch gets an episode vector for the node's episodic memory.
 *
 * What goes to the node's memory (docs/bitmar-r1.md §7): the L2-normalised episode e [d] R1 itself
 * computes for (prompt, frame) — e = BL_te(mean_T Z) + BL_ve(vis), the query of its own memory read.
 * Text recall keys are the normalised e of a text-only row, BL_te(mean_T Z): the same projection,
 * without the vision term. The node's memory does not feed back into R1 (R1 reads the K slots stored
 * in its GGUF); `setMemory` is a no-op for R1.
 *
 * R1's own memory reads are stateful (spec §3.7): `memory` "reset" (default) restores the file's
 * buffers before each caption, so every caption is exactly what the authors' generate() gives on the
 * checkpoint as loaded; "carry" lets usage/importance drift across captions (not persisted);
 * "frozen" never changes them.
 */
import { performance } from 'node:perf_hooks';
import { BitmarError } from '../../errors.js';
import type { RgbImage } from '../preprocess.js';
import type { R1Engine } from './engine.js';
import { loadVisionOnnx, type VisionExtractor, type VisionOnnxInfo } from './vision-onnx.js';

/** How R1's stateful memory reads behave across captions in the node. */
export type R1NodeMemory = 'reset' | 'carry' | 'frozen';
export const R1_NODE_MEMORY_MODES: readonly R1NodeMemory[] = ['reset', 'carry', 'frozen'];

/** What an empty prompt means for R1 (no task prompts, no BOS: a caption-like prefix, spec §6.2). */
export const R1_EMPTY_PROMPT = 'a';

/** Generation options the node passes (GenerationOptions of the stream engine; R1 ignores mode, sinks, window). */
export interface R1NodeGeneration {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
}

export interface R1NodeRequest {
  /** Frames as images (need the extractor)… */
  readonly images: readonly RgbImage[];
  /** …or as feature vectors (used when non-empty; `images` is then ignored). */
  readonly features?: readonly Float32Array[];
  readonly prompt: string;
  readonly options?: R1NodeGeneration;
}

export interface R1NodeToken {
  readonly index: number;
  readonly tokenId: number;
  readonly piece: string;
  readonly text: string;
  readonly atMs: number;
}

export interface R1NodeResult {
  text: string;
  tokenIds: number[];
  /** One unit episode vector per frame, in request order. */
  episodes: Float32Array[];
  cancelled: boolean;
  /** Feature extraction and tokenisation (ms). */
  encodeMs: number;
  firstTokenMs: number;
  decodeMs: number;
}

/** v / ‖v‖₂ (a zero vector stays zero). */
export function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}

export interface R1NodeOptions {
  /** DINOv2 ONNX file for image frames ('' or undefined: feature vectors only). */
  readonly visionOnnx?: string;
  /** ORT intra-op threads. */
  readonly threads?: number;
  readonly memory?: R1NodeMemory;
}

export class R1NodeSession {
  private constructor(
    readonly engine: R1Engine,
    private readonly vision: VisionExtractor | null,
    readonly memory: R1NodeMemory,
  ) {}

  /** Wrap an engine; loads the extractor when `visionOnnx` is set (its errors propagate). */
  static async open(engine: R1Engine, opts: R1NodeOptions = {}): Promise<R1NodeSession> {
    const memory = opts.memory ?? 'reset';
    if (!R1_NODE_MEMORY_MODES.includes(memory)) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `r1 memory "${String(memory)}" is invalid: use ${R1_NODE_MEMORY_MODES.join(', ')}`);
    const vision = opts.visionOnnx ? await loadVisionOnnx(opts.visionOnnx, { threads: opts.threads ?? 1, width: engine.config.visionInput }) : null;
    return new R1NodeSession(engine, vision, memory);
  }

  get visionInfo(): VisionOnnxInfo | null {
    return this.vision?.info ?? null;
  }

  /** Feature vectors of a request's frames: the given vectors, else the images through the extractor. */
  async frames(images: readonly RgbImage[], features?: readonly Float32Array[]): Promise<Float32Array[]> {
    if (features !== undefined && features.length > 0) {
      const w = this.engine.config.visionInput;
      features.forEach((f, i) => {
        if (!(f instanceof Float32Array) || f.length !== w) {
          throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `feature vector ${i} has ${(f as { length?: number } | null)?.length ?? 0} values; this bitmar-r1 model takes ${w}`);
        }
      });
      return [...features];
    }
    if (images.length === 0) return [];
    if (this.vision === null) {
      throw new BitmarError(
        'BITMAR_ERR_CONFIG_INVALID',
        `bitmar-r1 takes ${this.engine.config.visionInput}-d feature vectors, not images; to caption images set model.visionOnnx (caption --vision-onnx FILE) to a DINOv2 ONNX file (docs/bitmar-r1.md §7)`,
      );
    }
    return this.vision.extract(images);
  }

  private promptIds(prompt: string): number[] {
    return this.engine.tokenize(prompt.trim() === '' ? R1_EMPTY_PROMPT : prompt);
  }

  /**
   * Caption the newest frame (text only when there is none: hasVision false) token by token;
   * `isCancelled` is polled between tokens. Episodes: one unit e per frame.
   */
  async describe(req: R1NodeRequest, onToken: (t: R1NodeToken) => void, isCancelled: () => boolean = () => false): Promise<R1NodeResult> {
    const t0 = performance.now();
    const frames = await this.frames(req.images, req.features);
    const promptIds = this.promptIds(req.prompt);
    const newest = frames.at(-1);
    const o = req.options ?? {};
    if (this.memory === 'reset') this.engine.resetMemory();
    const t1 = performance.now();
    const gen = this.engine.generate({
      promptIds,
      ...(newest === undefined ? { hasVision: false } : { visionFeatures: newest }),
      ...(o.maxTokens === undefined ? {} : { maxNewTokens: o.maxTokens }),
      ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
      ...(o.topP === undefined ? {} : { topP: o.topP }),
      ...(o.seed === undefined ? {} : { seed: o.seed }),
      memory: this.memory === 'frozen' ? 'frozen' : 'reference',
    });
    let text = '';
    const tokenIds: number[] = [];
    let firstAt = -1;
    let cancelled = isCancelled();
    if (!cancelled) {
      for (let n = gen.next(); !n.done; n = gen.next()) {
        const t = n.value;
        if (firstAt < 0) firstAt = t.atMs;
        tokenIds.push(t.tokenId);
        text = t.text;
        onToken({ index: t.index, tokenId: t.tokenId, piece: t.piece, text: t.text, atMs: t.atMs });
        if (isCancelled()) {
          cancelled = true;
          gen.return(undefined as never);
          break;
        }
      }
    }
    const episodes = this.engine.episodes(promptIds, frames).map(unit);
    const t2 = performance.now();
    return { text, tokenIds, episodes, cancelled, encodeMs: t1 - t0, firstTokenMs: (firstAt < 0 ? t2 : firstAt) - t0, decodeMs: t2 - t1 };
  }

  /** Text recall key: the unit episode of a text-only row (BL_te(mean_T Z)). */
  encodeText(text: string): Float32Array {
    return unit(this.engine.episodes(this.engine.tokenize(text), [null])[0]!);
  }

  /** The unit episode of one image (or feature vector) with a prompt (empty = R1_EMPTY_PROMPT). */
  async encodeFrame(image: RgbImage | null, features: Float32Array | undefined, prompt = ''): Promise<Float32Array> {
    const frames = await this.frames(image === null ? [] : [image], features === undefined ? undefined : [features]);
    if (frames.length !== 1) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'encode needs one image or one feature vector');
    return unit(this.engine.episodes(this.promptIds(prompt), frames)[0]!);
  }

  async close(): Promise<void> {
    await this.vision?.close();
  }
}
