/**
 * The bitmar-stream engine in the calling thread: load + validate a GGUF file, encode frames and
 * prompts, read the episodic memory, and generate captions (caption mode) or a running narration
 * (narration mode) token by token (docs/bitmar-stream.md §3–§4).
 *
 * Lifecycle: `StreamEngine.load`, then any number of encode, describe and generate calls, → drop the object. Everything
 * per token runs in buffers allocated at load or when a session is first opened.
 */
import { performance } from 'node:perf_hooks';
import { BitmarError } from '../../errors.js';
import { GgufReader } from '../gguf/reader.js';
import type { Kernels } from '../kernels.js';
import { cutPatches, normalizeImage, type RgbImage } from '../preprocess.js';
import { loadTokenizer } from '../tokenizer/load-tokenizer.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { readStreamConfig, type StreamConfig } from './config.js';
import { condition, context, decode, encodeText, encodeVision, fuse, memoryRead, visionStem, type Model, type Trace } from './forward.js';
import { RunState } from './run-state.js';
import { Sampler, checkSamplingOptions } from './sampler.js';
import { DecoderSession } from './session.js';
import { loadStreamWeights, type StreamWeights } from './weights.js';

/** What an empty prompt means (shapes-world.md: "an empty prompt means describe the scene"). */
export const DEFAULT_PROMPT = 'describe the scene';

/** One encoded frame. */
export interface EncodedImage {
  /** (N+1, d) patch tokens after LN_f (row 0 is the CLS token). */
  readonly V: Float32Array;
  /** (d) unit episode vector e. */
  readonly e: Float32Array;
}

/** One encoded prompt. */
export interface EncodedText {
  readonly ids: readonly number[];
  /** (T, d) */
  readonly Z: Float32Array;
  /** (d) unit text vector u (recall key). */
  readonly u: Float32Array;
}

/** Decoder options of one request; every field has the model's default. */
export interface GenerationOptions {
  /** 'caption' (fresh cache per caption, default) or 'narration' (one cache across frames). */
  readonly mode?: 'caption' | 'narration';
  /** Token cap (default `decoder.max_caption_tokens`); <eos> is not counted. */
  readonly maxTokens?: number;
  /** 0 = greedy (default). */
  readonly temperature?: number;
  /** Nucleus mass in (0, 1], default 1 (off). */
  readonly topP?: number;
  /** RNG seed, default 0. */
  readonly seed?: number;
  /** Attention sinks S (default `attention.sink_count`). */
  readonly sinks?: number;
  /** Window W ≥ 1 (default `attention.window_length`). */
  readonly window?: number;
}

/** A frame batch and a prompt to describe, plus decoder options. */
export interface DescribeInput extends GenerationOptions {
  /** Every image is encoded; the newest (last) conditions the decoder. */
  readonly images: readonly RgbImage[];
  readonly prompt: string;
}

/** One generated token. */
export interface GeneratedToken {
  /** 0-based index in this caption. */
  readonly index: number;
  readonly tokenId: number;
  /** Text this token adds (pieces joined = text). */
  readonly piece: string;
  /** Caption text so far. */
  readonly text: string;
  /** performance.now() of this thread when the token was sampled. */
  readonly atMs: number;
}

export interface DescribeOutput {
  readonly text: string;
  readonly tokenIds: number[];
  /** One episode vector e per image, in input order. */
  readonly episodes: Float32Array[];
  readonly cancelled: boolean;
  /** Encoding the newest frame and the prompt, fusion, memory read and conditioning: what precedes the first token (the older frames of the batch are encoded after the caption). */
  readonly encodeMs: number;
  /** From the start of the call to the first token (the whole call when there is none). */
  readonly firstTokenMs: number;
  /** From the end of encoding to the end of the call. */
  readonly decodeMs: number;
}

/** The frame-dependent inputs of the decoder for one conditioning. */
export interface Conditioning {
  readonly images: readonly EncodedImage[];
  readonly text: EncodedText;
  /** (T, d) */
  readonly fused: Float32Array;
  /** (d) context c = m + mean_T(Fused). */
  readonly c: Float32Array;
}

function invalid(message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_CONFIG_INVALID', message);
}

export class StreamEngine implements Model {
  readonly state: RunState;
  /** `general.name`, or the file name. */
  readonly name: string;
  private readonly sampler: Sampler;
  private readonly sessions = new Map<'caption' | 'narration', DecoderSession>();
  private memorySlots = new Float32Array(0);
  private memoryCount = 0;
  private readonly mVec: Float32Array;

  private constructor(
    readonly config: StreamConfig,
    readonly weights: StreamWeights,
    readonly kernels: Kernels,
    readonly tokenizer: Tokenizer,
    name: string,
  ) {
    this.name = name;
    this.state = new RunState(config);
    this.sampler = new Sampler(config.vocabSize, (x, off, n) => kernels.argmax(x, off, n));
    this.mVec = new Float32Array(config.dim);
  }

  /** Load and validate a bitmar-stream GGUF file (throws BitmarError BITMAR_ERR_MODEL_*). */
  static load(path: string, kernels: Kernels): StreamEngine {
    return StreamEngine.fromReader(GgufReader.open(path), kernels);
  }

  /** Build an engine from an already parsed file. */
  static fromReader(r: GgufReader, kernels: Kernels): StreamEngine {
    const tokenizer = loadTokenizer(r);
    const config = readStreamConfig(r, tokenizer.vocabSize);
    const weights = loadStreamWeights(r, config, kernels);
    const nameValue = r.get('general.name');
    const name = nameValue?.type === 'string' ? nameValue.value : (r.source.split('/').pop() ?? r.source);
    return new StreamEngine(config, weights, kernels, tokenizer, name);
  }

  // ---- encoders ------------------------------------------------------------------------------

  /** Encode one RGB8 frame (any size; resized to image_size²). */
  encodeImage(img: RgbImage, trace?: Trace): EncodedImage {
    const S = this.config.imageSize;
    // into the run state's pixel buffer: no per-frame allocation (encodePixels does not keep it)
    return this.encodePixels(normalizeImage(this.kernels.resizeAreaU8(img.data, img.width, img.height, S), S, this.state.pixels), trace);
  }

  /**
   * Encode a normalised image, HWC [S, S, 3] in [−1, 1] (preprocess steps 1–3): the convolutional
   * stem when the model has one, else the image cut into P×P patches; then the vision encoder.
   */
  encodePixels(x: Float32Array, trace?: Trace): EncodedImage {
    const { imageSize: S, patchSize: P } = this.config;
    if (x.length !== S * S * 3) throw new RangeError(`image holds ${x.length} floats, expected S·S·3 = ${S}·${S}·3`);
    const patches = this.state.patches;
    if (this.weights.stem !== null) visionStem(this, x, patches, trace);
    else cutPatches(x, S, P, 3, patches);
    return this.encodePatches(patches, trace);
  }

  /** Encode patch vectors [N, patchDim]: preprocessed patches (linear stem) or the stem's output. */
  encodePatches(patches: Float32Array, trace?: Trace): EncodedImage {
    const { patches: N, patchDim, dim: d } = this.config;
    if (patches.length !== N * patchDim) throw new RangeError(`patches hold ${patches.length} floats, expected N·patch_dim = ${N}·${patchDim}`);
    const V = new Float32Array((N + 1) * d);
    const e = new Float32Array(d);
    encodeVision(this, patches, V, e, trace);
    return { V, e };
  }

  /** Tokenize a prompt (empty → DEFAULT_PROMPT); throws BITMAR_ERR_PROMPT_INVALID when too long. */
  promptIds(prompt: string): number[] {
    let ids = this.tokenizer.encode(prompt);
    if (ids.length === 0) ids = this.tokenizer.encode(DEFAULT_PROMPT);
    if (ids.length > this.config.textContext) {
      throw new BitmarError(
        'BITMAR_ERR_PROMPT_INVALID',
        `prompt has ${ids.length} tokens; this model reads at most ${this.config.textContext} (text.context_length)`,
      );
    }
    return ids;
  }

  /** Encode a prompt: Z [T, d] and the unit text vector u. */
  encodeText(prompt: string, trace?: Trace): EncodedText {
    return this.encodeIds(this.promptIds(prompt), trace);
  }

  /** Encode prompt ids (1 ≤ T ≤ Tmax). */
  encodeIds(ids: readonly number[], trace?: Trace): EncodedText {
    const { dim: d, textContext, vocabSize } = this.config;
    if (ids.length < 1 || ids.length > textContext) throw new RangeError(`prompt length ${ids.length} must be 1..${textContext}`);
    for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) throw new RangeError(`token id ${id} is outside the vocabulary (size ${vocabSize})`);
    const Z = new Float32Array(ids.length * d);
    const u = new Float32Array(d);
    encodeText(this, ids, Z, u, trace);
    return { ids: [...ids], Z, u };
  }

  /** Fusion of a prompt with a frame's patch tokens: Fused [T, d]. */
  fuse(image: EncodedImage, text: EncodedText, trace?: Trace): Float32Array {
    const out = new Float32Array(text.ids.length * this.config.dim);
    fuse(this, text.Z, text.ids.length, image.V, out, trace);
    return out;
  }

  // ---- memory ----------------------------------------------------------------------------------

  /** Replace the live memory slots: `count` unit vectors, [count, d] row-major (copied). */
  setMemory(slots: Float32Array, count: number): void {
    const d = this.config.dim;
    if (!(Number.isInteger(count) && count >= 0)) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slot count ${count} must be an integer ≥ 0`);
    if (slots.length < count * d) {
      throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slots hold ${slots.length} floats; ${count} slots of width ${d} need ${count * d}`);
    }
    for (let i = 0; i < count * d; i++) {
      if (!Number.isFinite(slots[i]!)) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slot ${Math.floor(i / d)} holds ${slots[i]} at column ${i % d}`);
    }
    this.memorySlots = slots.slice(0, count * d);
    this.memoryCount = count;
  }

  /** m = BL_mem_proj(r), r the softmax(scale·M e)-weighted sum of the live slots (0 when none). */
  memoryRead(e: Float32Array): Float32Array {
    const m = new Float32Array(this.config.dim);
    memoryRead(this, e, this.memorySlots, this.memoryCount, m);
    return m;
  }

  /** Encode a batch and a prompt and compute the decoder context (the newest image conditions). */
  prepare(images: readonly RgbImage[], prompt: string): Conditioning {
    if (images.length === 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'describe needs at least one image');
    const text = this.encodeText(prompt);
    const encoded = images.map((img) => this.encodeImage(img));
    return this.conditionOn(encoded, text);
  }

  /**
   * The episodes of a whole batch, in batch order, after a caption conditioned on its newest frame
   * (`cond` from `prepare(images.slice(-1), …)`): the older frames only feed memory, so they are
   * encoded here, after the caption, never before its first token.
   */
  batchEpisodes(images: readonly RgbImage[], cond: Conditioning): Float32Array[] {
    return [...images.slice(0, -1).map((img) => this.encodeImage(img).e), cond.images[cond.images.length - 1]!.e];
  }

  /** The decoder context for encoded images (the last conditions) and an encoded prompt. */
  conditionOn(images: readonly EncodedImage[], text: EncodedText): Conditioning {
    const newest = images[images.length - 1]!;
    const fused = this.fuse(newest, text);
    memoryRead(this, newest.e, this.memorySlots, this.memoryCount, this.mVec);
    const c = new Float32Array(this.config.dim);
    context(this, this.mVec, fused, text.ids.length, c);
    return { images, text, fused, c };
  }

  // ---- decoder ---------------------------------------------------------------------------------

  /**
   * The decoder session of a mode with S sinks and a W window (created once; re-created, which
   * restarts a narration, when S or W change).
   */
  session(mode: 'caption' | 'narration', sinks = this.config.sinkCount, window = this.config.windowLength): DecoderSession {
    if (!(Number.isInteger(sinks) && sinks >= 0)) throw invalid(`sinks ${sinks} is invalid: must be an integer ≥ 0`);
    if (!(Number.isInteger(window) && window >= 1)) throw invalid(`window ${window} is invalid: must be an integer ≥ 1`);
    let s = this.sessions.get(mode);
    if (s === undefined || s.sinks !== sinks || s.window !== window) {
      s = new DecoderSession(this.config, sinks, window);
      this.sessions.set(mode, s);
    }
    return s;
  }

  /** Condition a session on a prepared frame (cross-attention K/V and per-layer cond, once). */
  condition(sess: DecoderSession, cond: Conditioning): void {
    const newest = cond.images[cond.images.length - 1]!;
    condition(this, sess, newest.V, cond.fused, cond.text.ids.length, cond.c);
  }

  /** Feed m tokens; logits land in state.logits (all rows, or the last row at 0). */
  feed(sess: DecoderSession, ids: ArrayLike<number>, off: number, m: number, allLogits: boolean, trace?: Trace): Float32Array {
    decode(this, sess, ids, off, m, allLogits, trace);
    return this.state.logits;
  }

  /**
   * Generate tokens for one conditioning, yielding each as it is sampled. Caption mode starts a
   * fresh cache with <bos>; narration mode continues its cache, feeding <bos> first and <eos> at the
   * start of every later sentence. Stops at <eos> (not yielded) or after maxTokens.
   */
  *generate(cond: Conditioning, opts: GenerationOptions = {}): Generator<GeneratedToken, void, undefined> {
    const c = this.config;
    const tok = this.tokenizer;
    const mode = opts.mode ?? 'caption';
    if (mode !== 'caption' && mode !== 'narration') throw invalid(`mode "${String(mode)}" is invalid: use "caption" or "narration"`);
    const maxTokens = opts.maxTokens ?? c.maxCaptionTokens;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw invalid(`maxTokens ${maxTokens} is invalid: must be an integer ≥ 1`);
    const sampling = { temperature: opts.temperature ?? 0, topP: opts.topP ?? 1, seed: opts.seed ?? 0 };
    checkSamplingOptions(sampling);
    const sess = this.session(mode, opts.sinks, opts.window);
    const input = new Int32Array(1);
    if (mode === 'narration' && sess.pending >= 0) {
      // The previous sentence's last token, fed under that sentence's frame (still conditioned).
      input[0] = sess.pending;
      decode(this, sess, input, 0, 1, false);
      sess.pending = -1;
    }
    this.condition(sess, cond);
    if (mode === 'caption') sess.resetCache();
    this.sampler.reset(sampling);
    input[0] = sess.fed === 0 ? tok.bosId : tok.eosId;
    const dec = tok.streamDecoder();
    let text = '';
    for (let index = 0; index < maxTokens; index++) {
      decode(this, sess, input, 0, 1, false);
      sess.pending = -1;
      const id = this.sampler.sample(this.state.logits, 0, this.state.logitsArgmax);
      if (id === tok.eosId) return; // <eos> is fed as the input that starts the next sentence
      sess.pending = id;
      const piece = dec.push(id);
      text += piece;
      input[0] = id;
      yield { index, tokenId: id, piece, text, atMs: performance.now() };
    }
  }

  /**
   * Encode a batch and a prompt and generate one caption (or narration sentence). `onToken` sees
   * each token; `isCancelled` is polled between tokens and stops with `cancelled: true`.
   */
  describe(input: DescribeInput, onToken?: (t: GeneratedToken) => void, isCancelled?: () => boolean): DescribeOutput {
    const t0 = performance.now();
    if (input.images.length === 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'describe needs at least one image');
    // Only the newest frame conditions the caption: encode it alone first, so the older frames of
    // the batch (they only feed memory) never delay the first token.
    const cond = this.prepare(input.images.slice(-1), input.prompt);
    const t1 = performance.now();
    const tokenIds: number[] = [];
    let text = '';
    let firstAt = -1;
    let cancelled = isCancelled?.() === true;
    for (const t of cancelled ? [] : this.generate(cond, input)) {
      if (firstAt < 0) firstAt = t.atMs;
      tokenIds.push(t.tokenId);
      text = t.text;
      onToken?.(t);
      if (isCancelled?.() === true) {
        cancelled = true;
        break;
      }
    }
    const t2 = performance.now();
    const episodes = this.batchEpisodes(input.images, cond);
    return {
      text,
      tokenIds,
      episodes,
      cancelled,
      encodeMs: t1 - t0,
      firstTokenMs: (firstAt < 0 ? t2 : firstAt) - t0,
      decodeMs: t2 - t1,
    };
  }
}
