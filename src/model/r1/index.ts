/**
 * The bitmar-r1 API for embedders (re-exported by src/model/index.ts; `loadModel` dispatches here
 * for general.architecture "bitmar-r1"): forward, encodeText, and generate as an AsyncIterable of
 * tokens with per-token timing, cancellable through an AbortSignal.
 */
import { tokenStream } from '../generation-stream.js';
import { GgufReader } from '../gguf/reader.js';
import { loadKernels, type KernelChoice } from '../kernels.js';
import type { R1Config } from './config.js';
import { R1Engine, type R1ForwardInput, type R1ForwardOptions, type R1ForwardOutput, type R1GenerateOptions, type R1GeneratedToken, type R1GenerationSummary } from './engine.js';
import type { R1MemoryMode } from './memory.js';
import type { R1MemoryBuffers } from './weights.js';

export { R1Engine } from './engine.js';
export type { R1ForwardInput, R1ForwardOptions, R1ForwardOutput, R1GenerateOptions, R1GeneratedToken, R1GenerationSummary } from './engine.js';
export type { R1Config, R1Hparams } from './config.js';
export { R1_ARCH } from './config.js';
export type { R1MemoryMode } from './memory.js';
export type { R1MemoryBuffers } from './weights.js';
export type { R1StreamingOptions } from './streaming.js';

/** What a loaded bitmar-r1 model is. */
export interface R1ModelInfo {
  readonly arch: 'bitmar-r1';
  readonly name: string;
  readonly path: string;
  readonly hparams: R1Config;
  readonly vocabSize: number;
  readonly tokenizer: string;
  readonly kernels: string;
  readonly fallbackReason?: string;
  /** Width of the episode vector (d). */
  readonly episodeDim: number;
}

/** What an R1GenerationStream resolves with. */
export type R1StreamResult = R1GenerationSummary & { readonly cancelled: boolean; readonly firstTokenMs: number; readonly totalMs: number };

/** The tokens of one generation, and its summary once iteration ends. */
export interface R1GenerationStream extends AsyncIterable<R1GeneratedToken> {
  /** Resolves after the last token (or the abort). */
  readonly result: Promise<R1StreamResult>;
}

/** A bitmar-r1 model in the calling thread. */
export interface R1Model {
  readonly arch: 'bitmar-r1';
  readonly info: R1ModelInfo;
  readonly engine: R1Engine;
  /** One forward: logits [T, V] (or the last row), plus the intermediates. */
  forward(input: R1ForwardInput, opts?: R1ForwardOptions): R1ForwardOutput;
  /** Token ids and the text encoder's output Z [T, d]. */
  encodeText(text: string): { ids: number[]; Z: Float32Array };
  /**
   * Episode vectors e [d] of a prompt with each frame (a feature vector, or null for text only):
   * what a forward's memory read would query with; no side effects (R1Engine.episodes).
   */
  episodes(prompt: string | readonly number[], frames: readonly (Float32Array | readonly number[] | null)[]): Float32Array[];
  /** Default memory mode: "reference" (the authors' stateful reads) or "frozen". */
  memoryMode: R1MemoryMode;
  memoryState(): R1MemoryBuffers;
  setMemoryState(state: Partial<R1MemoryBuffers>): void;
  resetMemory(): void;
  /**
   * Generate token by token; yields to the event loop between tokens so an abort can land (the
   * iteration then ends and `result` has cancelled: true).
   */
  generate(opts: R1GenerateOptions, signal?: AbortSignal): R1GenerationStream;
}

export interface LoadR1Options {
  readonly kernels?: KernelChoice;
}

/** Wrap an engine (already loaded) as an R1Model. */
export function r1Model(engine: R1Engine, path: string, fallbackReason?: string): R1Model {
  const info: R1ModelInfo = {
    arch: 'bitmar-r1',
    name: engine.name,
    path,
    hparams: engine.config,
    vocabSize: engine.config.vocabSize,
    tokenizer: engine.tokenizer.kind,
    kernels: engine.kernels.name,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
    episodeDim: engine.config.dim,
  };
  return {
    arch: 'bitmar-r1',
    info,
    engine,
    forward: (input, opts) => engine.forward(input, opts),
    encodeText: (text) => engine.encodeText(text),
    episodes: (prompt, frames) => engine.episodes(typeof prompt === 'string' ? engine.tokenize(prompt) : prompt, frames),
    get memoryMode() {
      return engine.memoryMode;
    },
    set memoryMode(m: R1MemoryMode) {
      engine.memoryMode = m;
    },
    memoryState: () => engine.memoryState(),
    setMemoryState: (s) => engine.setMemoryState(s),
    resetMemory: () => engine.resetMemory(),
    generate: (opts, signal) => generationStream(engine, opts, signal),
  };
}

/** Load a bitmar-r1 GGUF into this thread (BitmarError BITMAR_ERR_MODEL_*, _TOKENIZER, _NATIVE_UNAVAILABLE). */
export function loadR1Model(path: string, opts: LoadR1Options = {}): R1Model {
  const loaded = loadKernels(opts.kernels ?? 'auto');
  return r1Model(R1Engine.fromReader(GgufReader.open(path), loaded.kernels), path, loaded.fallbackReason);
}

function generationStream(engine: R1Engine, opts: R1GenerateOptions, signal?: AbortSignal): R1GenerationStream {
  return tokenStream<R1GeneratedToken, R1GenerationSummary, R1StreamResult>(
    () => engine.generate(opts),
    (end) => {
      const base: R1GenerationSummary = end.summary ?? { promptIds: [], tokenIds: end.tokenIds, text: end.text, forwards: 0, memoryUpdates: 0, mode: opts.mode ?? 'exact' };
      return { ...base, cancelled: end.cancelled, firstTokenMs: end.firstAt - end.t0, totalMs: end.t2 - end.t0 };
    },
    signal,
    'an R1GenerationStream',
  );
}
