/** What a loaded model is: reported by InferenceWorker.info and loadModel().info. */
import type { StreamConfig } from './config.js';
import type { StreamEngine } from './engine.js';

export interface ModelInfo {
  /** `general.architecture` ("bitmar-stream"). */
  readonly arch: string;
  /** `general.name`. */
  readonly name: string;
  /** The file it was loaded from. */
  readonly path: string;
  readonly hparams: StreamConfig;
  readonly vocabSize: number;
  /** `tokenizer.ggml.model`. */
  readonly tokenizer: string;
  /** Kernel backend name ("typescript", "native-avx2", …). */
  readonly kernels: string;
  /** Why the TypeScript kernels are in use when native ones were wanted ('auto' fallback). */
  readonly fallbackReason?: string;
  /** Width of episode (e) and text (u) vectors: d. */
  readonly episodeDim: number;
}

export function modelInfo(engine: StreamEngine, path: string, fallbackReason?: string): ModelInfo {
  return {
    arch: 'bitmar-stream',
    name: engine.name,
    path,
    hparams: engine.config,
    vocabSize: engine.config.vocabSize,
    tokenizer: engine.tokenizer.kind,
    kernels: engine.kernels.name,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
    episodeDim: engine.config.dim,
  };
}
