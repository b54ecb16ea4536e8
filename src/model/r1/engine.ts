/**
 * The bitmar-r1 engine in the calling thread: load + validate a GGUF file, run the authors' forward
 * (bitmar-reference-spec.md), and generate exactly as their `generate()` does (a full forward per
 * token, spec §6.1/§12.4), or approximately with a bounded cache (streaming.ts, spec §6.3).
 *
 * Memory: reads are stateful in the authors' code. `memoryMode` "reference" (the default) applies
 * their usage/importance updates after every forward; "frozen" never changes the memory. The state
 * starts as the file's buffers; `memoryState()` / `setMemoryState()` / `resetMemory()` persist it.
 */
import { performance } from 'node:perf_hooks';
import { BitmarError } from '../../errors.js';
import { GgufReader } from '../gguf/reader.js';
import type { Kernels } from '../kernels.js';
import { Sampler, checkSamplingOptions } from '../engine/sampler.js';
import { loadTokenizer } from '../tokenizer/load-tokenizer.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { readR1Config, type R1Config } from './config.js';
import { R1Scratch, encodeTextBatch, encodeVisionBatch, episodeBatch, forwardBatch, type LogitRows, type R1Batch, type R1ForwardResult, type R1Model, type R1Trace } from './forward.js';
import { R1Memory, checkMemoryMode, type R1MemoryMode } from './memory.js';
import { R1StreamingSession, type R1StreamingOptions } from './streaming.js';
import { loadR1Weights, type R1MemoryBuffers, type R1Weights } from './weights.js';

/** One sequence to run. */
export interface R1ForwardInput {
  /** Token ids (1 ≤ length ≤ context length). */
  readonly inputIds: readonly number[];
  /** 1 = token, 0 = padding; right padding only, first entry 1 (default all 1). */
  readonly attentionMask?: readonly number[];
  /** The image's feature vector (visionInput floats, e.g. a 768-d DINOv2 embedding). */
  readonly visionFeatures?: Float32Array | readonly number[];
  /**
   * Whether the row has an image (spec §3.4, §12.8). Default: true when `visionFeatures` is given.
   * false: vis := 0 and no vision term in the episode (how training saw text-only rows).
   * true without features: a zero vector goes through the vision encoder (what the authors'
   * generate() and eval harness do for text-only prompts).
   */
  readonly hasVision?: boolean;
}

export interface R1ForwardOptions {
  /** Memory mode of this forward (default: the engine's `memoryMode`). */
  readonly memory?: R1MemoryMode;
  /** 'all' positions (default) or the 'last' position of each row (same values, cheaper lm_head). */
  readonly logits?: 'all' | 'last';
  /** Observer of intermediates (parity tests). */
  readonly trace?: R1Trace;
}

export interface R1ForwardOutput extends R1ForwardResult {
  /** Rows of `logits` (B·T for 'all', B for 'last'). */
  readonly rows: number;
  readonly vocabSize: number;
}

/** Options of one generation. */
export interface R1GenerateOptions {
  /** Prompt text (GPT-2 BPE; no BOS is added, as in training). Ignored when `promptIds` is given. */
  readonly prompt?: string;
  readonly promptIds?: readonly number[];
  readonly visionFeatures?: Float32Array | readonly number[];
  readonly hasVision?: boolean;
  /** Most tokens to generate (default 32). Exact mode also stops at the context length. */
  readonly maxNewTokens?: number;
  /** 0 = greedy (default); else softmax(logits / temperature). */
  readonly temperature?: number;
  /** Nucleus mass in (0, 1] (default 1 = off; spec §12.5). */
  readonly topP?: number;
  /** RNG seed (default 0). */
  readonly seed?: number;
  /** Stop after <|endoftext|> (default true; the token is still reported). */
  readonly stopAtEos?: boolean;
  readonly memory?: R1MemoryMode;
  /** 'exact' (default: a full forward per token, the authors' output) or 'streaming' (APPROXIMATE, spec §6.3). */
  readonly mode?: 'exact' | 'streaming';
  /** Streaming mode only. */
  readonly streaming?: R1StreamingOptions;
}

/** One generated token. */
export interface R1GeneratedToken {
  /** 0-based index among the generated tokens. */
  readonly index: number;
  readonly tokenId: number;
  /** Text this token adds (pieces joined = text). */
  readonly piece: string;
  /** Generated text so far. */
  readonly text: string;
  /** performance.now() when the token was sampled. */
  readonly atMs: number;
  /** Duration of the forward whose logits gave this token. */
  readonly forwardMs: number;
}

/** What a finished generation did. */
export interface R1GenerationSummary {
  readonly promptIds: readonly number[];
  readonly tokenIds: readonly number[];
  readonly text: string;
  /** Forwards run (exact mode: prompt + one per token not ending the generation, spec §12.4). */
  readonly forwards: number;
  /** Memory reads that updated the memory ("reference" mode). */
  readonly memoryUpdates: number;
  readonly mode: 'exact' | 'streaming';
}

function invalid(message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_CONFIG_INVALID', message);
}

export class R1Engine implements R1Model {
  readonly scratch: R1Scratch;
  readonly mem: R1Memory;
  /** `general.name`, or the file name. */
  readonly name: string;
  /** Default memory mode of forward() and generate(). */
  memoryMode: R1MemoryMode = 'reference';

  private constructor(
    readonly config: R1Config,
    readonly weights: R1Weights,
    readonly kernels: Kernels,
    readonly tokenizer: Tokenizer,
    name: string,
  ) {
    this.name = name;
    this.scratch = new R1Scratch(config);
    this.mem = new R1Memory(config.memorySlots, config.dim, weights.memory);
  }

  /** Load and validate a bitmar-r1 GGUF (BitmarError BITMAR_ERR_MODEL_*, BITMAR_ERR_TOKENIZER). */
  static load(path: string, kernels: Kernels): R1Engine {
    return R1Engine.fromReader(GgufReader.open(path), kernels);
  }

  static fromReader(r: GgufReader, kernels: Kernels): R1Engine {
    const tokenizer = loadTokenizer(r);
    const config = readR1Config(r, tokenizer.vocabSize);
    const weights = loadR1Weights(r, config, kernels);
    const nameValue = r.get('general.name');
    const name = nameValue?.type === 'string' ? nameValue.value : (r.source.split('/').pop() ?? r.source);
    return new R1Engine(config, weights, kernels, tokenizer, name);
  }

  // ---- memory ----------------------------------------------------------------------------------

  /** A copy of the live memory buffers. */
  memoryState(): R1MemoryBuffers {
    return this.mem.snapshot();
  }

  /** Replace some or all live memory buffers (copied, checked). */
  setMemoryState(state: Partial<R1MemoryBuffers>): void {
    this.mem.restore(state);
  }

  /** Back to the buffers stored in the model file. */
  resetMemory(): void {
    this.mem.restore(this.weights.memory);
  }

  // ---- forward -------------------------------------------------------------------------------

  /** Tokenize text (GPT-2 BPE, no special tokens). Throws BITMAR_ERR_PROMPT_INVALID when empty or too long. */
  tokenize(text: string): number[] {
    const ids = this.tokenizer.encode(text);
    if (ids.length === 0) throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', 'the prompt is empty: R1 needs at least one token (e.g. "a"; there is no BOS)');
    if (ids.length > this.config.contextLength) {
      throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', `prompt has ${ids.length} tokens; this model reads at most ${this.config.contextLength}`);
    }
    return ids;
  }

  /** Encode text with the text encoder: ids and Z [T, d] (bidirectional, so Z depends on all of it). */
  encodeText(text: string): { ids: number[]; Z: Float32Array } {
    const ids = this.tokenize(text);
    const batch = this.batchOf([{ inputIds: ids }]);
    const Z = new Float32Array(ids.length * this.config.dim);
    encodeTextBatch(this, batch, Z);
    return { ids, Z };
  }

  /**
   * Episode vectors e [d] (spec §3.6) of one prompt with each frame: a feature vector (an image) or
   * null (text only: hasVision false, e = BL_te(mean Z)). Each is exactly the `episode` a single-row
   * forward on (prompt, frame) computes — the query of R1's own memory read — without the memory
   * read, the fusion or the decoder (no side effects). The prompt is encoded once.
   */
  episodes(promptIds: readonly number[], frames: readonly (Float32Array | readonly number[] | null)[]): Float32Array[] {
    const d = this.config.dim;
    const text = this.batchOf([{ inputIds: promptIds }]);
    const Z = new Float32Array(text.T * d);
    encodeTextBatch(this, text, Z);
    return frames.map((f) => {
      const b = this.batchOf([f === null ? { inputIds: promptIds, hasVision: false } : { inputIds: promptIds, visionFeatures: f }]);
      const vis = new Float32Array(d);
      encodeVisionBatch(this, b.vision, b.hasVision, 1, vis);
      const e = new Float32Array(d);
      episodeBatch(this, Z, vis, b.hasVision, 1, b.T, e);
      return e;
    });
  }

  /** Check and pack rows into a batch (all rows the same length; shorter ones right-padded with masks). */
  batchOf(rows: readonly R1ForwardInput[]): R1Batch {
    const c = this.config;
    const B = rows.length;
    if (B < 1) throw new RangeError('a forward needs at least one row');
    const T = rows[0]!.inputIds.length;
    const ids = new Int32Array(B * T);
    const vision = new Float32Array(B * c.visionInput);
    const hasVision = new Uint8Array(B);
    let mask: Uint8Array | null = null;
    rows.forEach((row, b) => {
      const n = row.inputIds.length;
      if (n !== T) throw new RangeError(`row ${b} has ${n} ids, row 0 has ${T}: pad every row to one length and pass attentionMask`);
      if (n < 1 || n > c.contextLength) throw new RangeError(`row ${b}: length ${n} must be 1..${c.contextLength} (the learned position table)`);
      row.inputIds.forEach((id, t) => {
        if (!(Number.isInteger(id) && id >= 0 && id < c.vocabSize)) throw new RangeError(`row ${b}: token id ${id} at ${t} is outside the vocabulary (size ${c.vocabSize})`);
        ids[b * T + t] = id;
      });
      if (row.attentionMask !== undefined) {
        const m = row.attentionMask;
        if (m.length !== T) throw new RangeError(`row ${b}: attentionMask has ${m.length} entries, expected ${T}`);
        mask ??= new Uint8Array(B * T).fill(1);
        let seenPad = false;
        m.forEach((v, t) => {
          if (v !== 0 && v !== 1) throw new RangeError(`row ${b}: attentionMask[${t}] = ${v} must be 0 or 1`);
          if (v === 0) seenPad = true;
          else if (seenPad) throw new RangeError(`row ${b}: attentionMask must be right padding (1…1 0…0): a fully masked query row makes the whole batch NaN (spec §12.7)`);
          mask![b * T + t] = v;
        });
        if (m[0] === 0) throw new RangeError(`row ${b}: attentionMask masks every position`);
      }
      const vf = row.visionFeatures;
      if (vf !== undefined) {
        if (vf.length !== c.visionInput) throw new RangeError(`row ${b}: visionFeatures has ${vf.length} values, this model takes ${c.visionInput}`);
        for (let i = 0; i < vf.length; i++) {
          const v = vf[i]!;
          if (!Number.isFinite(v)) throw new RangeError(`row ${b}: visionFeatures[${i}] = ${v} is not finite`);
          vision[b * c.visionInput + i] = v;
        }
      }
      hasVision[b] = (row.hasVision ?? vf !== undefined) ? 1 : 0;
    });
    return { B, T, ids, mask, vision, hasVision };
  }

  /** One forward of one sequence: logits [T, V] (or [1, V] with logits 'last'). */
  forward(input: R1ForwardInput, opts: R1ForwardOptions = {}): R1ForwardOutput {
    return this.forwardRows([input], opts);
  }

  /**
   * One forward of a batch (every row the same length; per-tensor activation ranges span the whole
   * batch, as in the authors' code, so results depend on the batch). Memory updates sum over rows.
   */
  forwardRows(rows: readonly R1ForwardInput[], opts: R1ForwardOptions = {}): R1ForwardOutput {
    const batch = this.batchOf(rows);
    const update = checkMemoryMode(opts.memory ?? this.memoryMode) === 'reference';
    const which: LogitRows = opts.logits ?? 'all';
    if (which !== 'all' && which !== 'last') throw invalid(`logits "${String(which)}" is invalid: use "all" or "last"`);
    const res = forwardBatch(this, batch, which, update, opts.trace);
    return { ...res, rows: which === 'all' ? batch.B * batch.T : batch.B, vocabSize: this.config.vocabSize };
  }

  // ---- generation ----------------------------------------------------------------------------

  /**
   * Generate token by token (yielding each as it is sampled); returns the summary. Exact mode is the
   * authors' generate(): one forward on the prompt, then per step sample, append, stop at EOS, else a
   * forward on the extended sequence — N tokens without EOS take N+1 forwards, and in "reference"
   * memory mode each updates the memory (the last one only reads the memory: its logits are unused).
   */
  *generate(opts: R1GenerateOptions): Generator<R1GeneratedToken, R1GenerationSummary, undefined> {
    const c = this.config;
    const tok = this.tokenizer;
    const promptIds = opts.promptIds !== undefined ? [...opts.promptIds] : this.tokenize(opts.prompt ?? '');
    if (promptIds.length < 1 || promptIds.length > c.contextLength) {
      throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', `the prompt has ${promptIds.length} tokens; it needs 1..${c.contextLength}`);
    }
    const mode = opts.mode ?? 'exact';
    if (mode !== 'exact' && mode !== 'streaming') throw invalid(`mode "${String(mode)}" is invalid: use "exact" or "streaming" (approximate)`);
    const maxNew = opts.maxNewTokens ?? 32;
    if (!(Number.isInteger(maxNew) && maxNew >= 0)) throw invalid(`maxNewTokens ${maxNew} is invalid: must be an integer ≥ 0`);
    const sampling = { temperature: opts.temperature ?? 0, topP: opts.topP ?? 1, seed: opts.seed ?? 0 };
    checkSamplingOptions(sampling);
    const update = checkMemoryMode(opts.memory ?? this.memoryMode) === 'reference';
    const stopAtEos = opts.stopAtEos ?? true;
    const sampler = new Sampler(c.vocabSize);
    sampler.reset(sampling);
    const row = (ids: readonly number[]): R1ForwardInput => ({
      inputIds: ids,
      ...(opts.visionFeatures === undefined ? {} : { visionFeatures: opts.visionFeatures }),
      ...(opts.hasVision === undefined ? {} : { hasVision: opts.hasVision }),
    });
    const ids = [...promptIds];
    const tokenIds: number[] = [];
    const dec = tok.streamDecoder();
    let text = '';
    let forwards = 0;
    let updates = 0;
    const limit = mode === 'exact' ? Math.min(maxNew, c.contextLength - promptIds.length) : maxNew;

    let t0 = performance.now();
    let session: R1StreamingSession | null = null;
    let logits: Float32Array;
    if (mode === 'exact') {
      logits = forwardBatch(this, this.batchOf([row(ids)]), 'last', update).logits;
    } else {
      // exact prefill, capturing c, vis and every decoder layer's K/V
      let cVec = new Float32Array(0);
      let vis = new Float32Array(0);
      const pending: [number, Float32Array, Float32Array, number][] = [];
      const trace: R1Trace = (name, data) => {
        if (name === 'c') cVec = data.slice();
        if (name === 'vis') vis = data.slice();
      };
      logits = forwardBatch(this, this.batchOf([row(ids)]), 'last', update, trace, (l, k, v, n) => pending.push([l, k.slice(0, n * c.dim), v.slice(0, n * c.dim), n])).logits;
      session = new R1StreamingSession(this, opts.streaming ?? {}, cVec, vis, promptIds);
      for (const [l, k, v, n] of pending) session.capture(l, k, v, n);
    }
    forwards++;
    if (update) updates++;
    let forwardMs = performance.now() - t0;

    for (let index = 0; index < limit; index++) {
      const id = sampler.sample(logits, 0);
      tokenIds.push(id);
      ids.push(id);
      const piece = dec.push(id);
      text += piece;
      yield { index, tokenId: id, piece, text, atMs: performance.now(), forwardMs };
      if (stopAtEos && id === tok.eosId) break;
      t0 = performance.now();
      if (session !== null) {
        logits = session.step(id);
      } else if (index === limit - 1) {
        // the authors' loop still runs this forward; only its memory read is observable
        if (update) forwardBatch(this, this.batchOf([row(ids)]), 'none', true);
      } else {
        logits = forwardBatch(this, this.batchOf([row(ids)]), 'last', update).logits;
      }
      if (session === null) {
        forwards++;
        if (update) updates++;
      }
      forwardMs = performance.now() - t0;
    }
    text += dec.end();
    return { promptIds, tokenIds, text, forwards, memoryUpdates: updates, mode };
  }
}
