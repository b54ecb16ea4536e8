/**
 * The model module's public API.
 *
 * - `InferenceWorker`: the engine in a worker_thread (what the node uses; never blocks the caller).
 * - `loadModel`: the engine in the calling thread, for embedders and tools: encode images and
 *   prompts, and generate captions as an AsyncIterable of tokens with per-token timing,
 *   cancellable through an AbortSignal. It computes synchronously between tokens.
 * - `GgufReader` / `writeGguf`: the GGUF v3 reader and writer.
 * - `loadModel` dispatches on `general.architecture`: "bitmar-stream" (BitmarModel) or "bitmar-r1"
 *   (R1Model, the authors' architecture: src/model/r1/, docs/bitmar-r1.md); `loadR1Model` loads R1 only.
 * - `convertCheckpointFile`: an R1 checkpoint → bitmar-r1 GGUF (docs/convert.md).
 * - `loadVisionOnnx`: images → bitmar-r1's 768-d vision input through a DINOv2 ONNX file (needs the
 *   optional onnxruntime-node); `readFeatureFile`: feature vectors from .npy / .json / raw float32.
 */
import { StreamEngine, type EncodedImage, type EncodedText, type GeneratedToken } from './engine/engine.js';
import { modelInfo, type ModelInfo } from './engine/model-info.js';
import { tokenStream } from './generation-stream.js';
import type { DescribeRequest, DescribeResult } from './inference-worker.js';
import { GgufReader } from './gguf/reader.js';
import { loadKernels, type KernelChoice } from './kernels.js';
import type { RgbImage } from './preprocess.js';
import { R1_ARCH } from './r1/config.js';
import { R1Engine } from './r1/engine.js';
import { r1Model, type R1Model } from './r1/index.js';

export { InferenceWorker } from './inference-worker.js';
export type { DescribeRequest, DescribeResult, InferenceWorkerOptions, WorkerToken, WorkerModelInfo, StreamWorkerInfo, R1WorkerInfo, R1NodeMemory } from './inference-worker.js';
export type { ModelInfo } from './engine/model-info.js';
export { StreamEngine, DEFAULT_PROMPT } from './engine/engine.js';
export type { EncodedImage, EncodedText, GeneratedToken, GenerationOptions } from './engine/engine.js';
export type { StreamConfig } from './engine/config.js';
export { GgufReader } from './gguf/reader.js';
export { writeGguf, gv } from './gguf/writer.js';
export type { GgufTensorInput } from './gguf/writer.js';
export type { GgufValue, GgufTensorInfo, GgufArrayItems, GgmlTypeName } from './gguf/types.js';
export type { Tokenizer } from './tokenizer/tokenizer.js';
export { loadR1Model, R1Engine, R1_ARCH } from './r1/index.js';
export { loadVisionOnnx, dinov2Pixels, VISION_ONNX_MISSING } from './r1/vision-onnx.js';
export type { VisionExtractor, VisionOnnxInfo, VisionOnnxOptions } from './r1/vision-onnx.js';
export { readFeatureFile, parseFeatureFile } from './r1/features-file.js';
export type {
  R1Model, R1ModelInfo, R1GenerationStream, R1Config, R1Hparams, R1ForwardInput, R1ForwardOptions, R1ForwardOutput,
  R1GenerateOptions, R1GeneratedToken, R1GenerationSummary, R1MemoryMode, R1MemoryBuffers, R1StreamingOptions,
} from './r1/index.js';
export { convertCheckpointFile } from './convert/index.js';
export type { ConvertFileOptions, ConvertFileResult } from './convert/index.js';

export interface LoadModelOptions {
  /** Kernel backend (default 'auto'). */
  readonly kernels?: KernelChoice;
}

/** The tokens of one caption, and its summary once iteration ends. */
export interface GenerationStream extends AsyncIterable<GeneratedToken> {
  /** Resolves after the last token (or the abort) with the caption, episodes and timings. */
  readonly result: Promise<DescribeResult>;
}

/** The engine in the calling thread. */
export interface BitmarModel {
  readonly arch: 'bitmar-stream';
  readonly info: ModelInfo;
  /** The underlying engine (config, weights, tokenizer, forward pieces). */
  readonly engine: StreamEngine;
  /** Encode frames: V (patch tokens) and the unit episode vector e of each. */
  encodeImages(images: readonly RgbImage[]): EncodedImage[];
  /** Encode a prompt: Z and the unit text vector u. */
  encodeText(text: string): EncodedText;
  /** Replace the live memory slots ([count, d] unit vectors, copied). */
  setMemory(slots: Float32Array, count: number): void;
  /**
   * Describe a batch (the newest image conditions the decoder), token by token. One iteration per
   * stream; the engine yields to the event loop between tokens so an abort can land. Aborting ends
   * the iteration and `result` resolves with `cancelled: true`.
   */
  generate(req: DescribeRequest, signal?: AbortSignal): GenerationStream;
}

/**
 * Load a GGUF into this thread: a BitmarModel for "bitmar-stream", an R1Model for "bitmar-r1" (tell
 * them apart by `arch`). Throws BitmarError (BITMAR_ERR_MODEL_NOT_FOUND, _FORMAT, _MISMATCH, _ARCH,
 * BITMAR_ERR_TOKENIZER, BITMAR_ERR_NATIVE_UNAVAILABLE for 'native').
 */
export function loadModel(path: string, opts: LoadModelOptions = {}): BitmarModel | R1Model {
  const loaded = loadKernels(opts.kernels ?? 'auto');
  const reader = GgufReader.open(path);
  const arch = reader.get('general.architecture');
  if (arch?.type === 'string' && arch.value === R1_ARCH) return r1Model(R1Engine.fromReader(reader, loaded.kernels), path, loaded.fallbackReason);
  const engine = StreamEngine.fromReader(reader, loaded.kernels);
  const info = modelInfo(engine, path, loaded.fallbackReason);
  return {
    arch: 'bitmar-stream',
    info,
    engine,
    encodeImages: (images) => images.map((img) => engine.encodeImage(img)),
    encodeText: (text) => engine.encodeText(text),
    setMemory: (slots, count) => engine.setMemory(slots, count),
    generate: (req, signal) => generationStream(engine, req, signal),
  };
}

function generationStream(engine: StreamEngine, req: DescribeRequest, signal?: AbortSignal): GenerationStream {
  let cond: ReturnType<StreamEngine['prepare']> | undefined;
  return tokenStream<GeneratedToken, void, DescribeResult>(
    () => {
      cond = engine.prepare(req.images.slice(-1), req.prompt); // newest first: see batchEpisodes
      return engine.generate(cond, req);
    },
    (end) => ({
      text: end.text,
      tokenIds: end.tokenIds,
      episodes: cond === undefined ? [] : engine.batchEpisodes(req.images, cond),
      cancelled: end.cancelled,
      encodeMs: end.t1 - end.t0,
      firstTokenMs: end.firstAt - end.t0,
      decodeMs: end.t2 - end.t1,
    }),
    signal,
    'a GenerationStream',
  );
}
