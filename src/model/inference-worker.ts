/**
 * Runs the model in a worker_thread so the main event loop never blocks (ROS 2 callbacks and MQTT
 * keep-alives run there). Requests are served one at a time in order. The GGUF's
 * `general.architecture` picks the engine: bitmar-stream (StreamEngine) or bitmar-r1 (R1NodeSession:
 * 768-d feature vectors per frame, from `features` or from images through the DINOv2 ONNX extractor
 * named by `visionOnnx`; R1's exact generation; docs/bitmar-r1.md §7). `info.arch` tells them apart.
 *
 * Lifecycle: `await InferenceWorker.start({modelPath})` (starting → ready), any number of
 * describe/encodeText/encodeImage/setMemory calls, then `await close()` (stopping → closed).
 * Every failure is a rejected promise with a BitmarError: errors raised in the worker keep their
 * code; a worker that dies rejects everything pending with a message saying so, and later calls
 * reject at once. The worker does not keep the process alive while idle.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { BitmarError, ERROR_CODES, type ErrorCode } from '../errors.js';
import type { GenerationOptions } from './engine/engine.js';
import type { ModelInfo } from './engine/model-info.js';
import type { RgbImage } from './preprocess.js';
import type { R1ModelInfo } from './r1/index.js';
import type { R1NodeMemory } from './r1/node-session.js';
import type { VisionOnnxInfo } from './r1/vision-onnx.js';
import { startModuleWorker } from '../worker-start.js';

export type { ModelInfo } from './engine/model-info.js';
export type { R1NodeMemory } from './r1/node-session.js';

/** A worker serving a bitmar-stream model. */
export interface StreamWorkerInfo extends ModelInfo {
  readonly arch: 'bitmar-stream';
}

/** A worker serving a bitmar-r1 model. */
export interface R1WorkerInfo extends R1ModelInfo {
  /** The DINOv2 ONNX extractor for image frames, or null (feature vectors only). */
  readonly vision: VisionOnnxInfo | null;
  /** How R1's stateful memory reads behave across captions. */
  readonly memoryMode: R1NodeMemory;
}

/** What a worker loaded: tell the architectures apart by `arch`. */
export type WorkerModelInfo = StreamWorkerInfo | R1WorkerInfo;

/** How to start the worker. */
export interface InferenceWorkerOptions {
  /** bitmar-stream or bitmar-r1 GGUF file. */
  readonly modelPath: string;
  /** Kernel backend (default 'auto': native when built, else TypeScript with `info.fallbackReason`). */
  readonly kernels?: 'auto' | 'native' | 'typescript';
  /** Intra-op threads for the native kernels (default 1; the TypeScript kernels ignore it). */
  readonly threads?: number;
  /** bitmar-r1 only: a DINOv2 ONNX file turning images into feature vectors (needs onnxruntime-node). Ignored for bitmar-stream. */
  readonly visionOnnx?: string;
  /** bitmar-r1 only: 'reset' (default), 'carry' or 'frozen' (R1NodeMemory). */
  readonly r1Memory?: R1NodeMemory;
}

/** A frame batch and a prompt to describe (docs/bitmar-stream.md §4, docs/bitmar-r1.md §7). */
export interface DescribeRequest {
  /** A batch; every image is encoded, the newest (last) conditions the decoder. RGB8, stride width·3. */
  images: { width: number; height: number; data: Uint8Array }[];
  /**
   * bitmar-r1 only: the frames as feature vectors (the model's `visionInput` floats each, a 768-d
   * DINOv2 embedding), used instead of `images` when non-empty; the newest (last) is captioned.
   */
  features?: Float32Array[];
  /** bitmar-stream: selects the task; empty means "describe the scene". bitmar-r1: the caption's prefix; empty means "a". */
  prompt: string;
  /** Token cap (default `decoder.max_caption_tokens`). */
  maxTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  /** Nucleus mass in (0, 1], default 1 (off). */
  topP?: number;
  /** RNG seed for sampling, default 0. */
  seed?: number;
  /** bitmar-stream only (R1 ignores mode, sinks and window: exact generation). 'caption' (default): a fresh KV cache per caption; 'narration': one cache across calls. */
  mode?: 'caption' | 'narration';
  /** Attention sinks S (default `attention.sink_count`). */
  sinks?: number;
  /** Window W ≥ 1 (default `attention.window_length`). */
  window?: number;
}

/** One streamed token. */
export interface WorkerToken {
  index: number;
  tokenId: number;
  /** Text this token adds; pieces joined = text. */
  piece: string;
  /** Caption so far. */
  text: string;
  /** When it was sampled, in this thread's performance.now() milliseconds. */
  atMs: number;
}

export interface DescribeResult {
  text: string;
  tokenIds: number[];
  /** One unit episode vector e per image, in request order. */
  episodes: Float32Array[];
  /** True when the signal aborted it; text and tokenIds are then the partial caption. */
  cancelled: boolean;
  /** Encoding the newest frame and the prompt, fusion, memory read and conditioning: what precedes the first token (ms). */
  encodeMs: number;
  /** From the start of the request in the worker to its first token (ms). */
  firstTokenMs: number;
  /** From the end of encoding to the end of the request (ms). */
  decodeMs: number;
}

// ---- protocol (shared with inference-worker-main.ts) ------------------------------------------

/** Size of the shared cancel table: request id mod CANCEL_SLOTS holds the id when it is cancelled. */
export const CANCEL_SLOTS = 256;

export interface WorkerInit {
  readonly modelPath: string;
  readonly kernels: 'auto' | 'native' | 'typescript';
  readonly threads: number;
  /** '' = none. */
  readonly visionOnnx: string;
  readonly r1Memory: R1NodeMemory;
  /** Int32Array(CANCEL_SLOTS). */
  readonly cancel: SharedArrayBuffer;
}

export interface SerializedError {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
}

export type ToWorker =
  | {
      readonly type: 'describe';
      readonly id: number;
      readonly images: readonly RgbImage[];
      /** bitmar-r1 frames as feature vectors (empty: use `images`). */
      readonly features: readonly Float32Array[];
      readonly prompt: string;
      readonly options: GenerationOptions;
    }
  | { readonly type: 'encodeText'; readonly id: number; readonly text: string }
  /** One frame: `image`, or (bitmar-r1) `features`; `prompt` is R1's episode text (stream ignores it). */
  | { readonly type: 'encodeImage'; readonly id: number; readonly image: RgbImage | null; readonly features?: Float32Array; readonly prompt: string }
  | { readonly type: 'setMemory'; readonly slots: Float32Array; readonly count: number }
  | { readonly type: 'close'; readonly id: number };

export type FromWorker =
  | { readonly type: 'ready'; readonly info: WorkerModelInfo }
  | { readonly type: 'startError'; readonly error: SerializedError }
  | { readonly type: 'token'; readonly id: number; readonly token: Omit<WorkerToken, 'atMs'> & { readonly atEpochMs: number } }
  | { readonly type: 'describeResult'; readonly id: number; readonly result: DescribeResult }
  | { readonly type: 'vector'; readonly id: number; readonly vector: Float32Array }
  | { readonly type: 'closed'; readonly id: number }
  /** id −1: a setMemory that failed in the worker (reported on the next request). */
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError };

// ---- main-thread side -------------------------------------------------------------------------

interface Pending {
  resolve(v: unknown): void;
  reject(e: BitmarError): void;
  onToken?: (t: WorkerToken) => void;
}

function toBitmarError(e: SerializedError): BitmarError {
  if (e.code !== undefined && e.code in ERROR_CODES) return new BitmarError(e.code as ErrorCode, e.message);
  return new BitmarError('BITMAR_ERR_GENERATION_CANCELLED', `inference failed in the worker: ${e.name}: ${e.message}`);
}

/** The worker thread (inference-worker-main; src/worker-start.ts handles .js and tsx). */
function createWorker(init: WorkerInit): Worker {
  return startModuleWorker(import.meta.url, './inference-worker-main', { workerData: init, name: 'bitmar-inference' });
}

/** Copy an image's bytes unless it owns a whole transferable ArrayBuffer. */
function transferable(img: { width: number; height: number; data: Uint8Array }, transfer: ArrayBuffer[]): RgbImage {
  const { data } = img;
  if (!(data instanceof Uint8Array)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'image data must be a Uint8Array of RGB8 bytes');
  const buf = data.buffer;
  if (buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength && !transfer.includes(buf)) {
    transfer.push(buf);
    return { width: img.width, height: img.height, data };
  }
  return { width: img.width, height: img.height, data: data.slice() };
}

/**
 * The worker. `I` is what it serves: `InferenceWorker.start` gives `InferenceWorker<WorkerModelInfo>`
 * (either architecture; narrow with `isStream()` / `isR1()`); the bare `InferenceWorker` type is a
 * bitmar-stream worker (what the Shapes eval needs).
 */
export class InferenceWorker<I extends WorkerModelInfo = StreamWorkerInfo> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private deadReason: string | null = null;
  private isClosing = false;
  private memoryError: BitmarError | null = null;
  private readonly cancel: Int32Array;

  private constructor(
    private readonly worker: Worker,
    cancel: SharedArrayBuffer,
    /** The loaded model: arch, name, hparams, vocab size, kernels, fallbackReason, episodeDim (+ R1's vision extractor). */
    readonly info: I,
  ) {
    this.cancel = new Int32Array(cancel);
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.die(`the inference worker crashed: ${e.message}`));
    worker.on('exit', (code) => this.die(`the inference worker exited (code ${code})`));
    worker.unref();
  }

  /**
   * Start a worker and load the model in it. Rejects with the loader's BitmarError
   * (BITMAR_ERR_MODEL_NOT_FOUND, _FORMAT, _MISMATCH, _ARCH, BITMAR_ERR_NATIVE_UNAVAILABLE, …).
   */
  static async start(opts: InferenceWorkerOptions): Promise<InferenceWorker<WorkerModelInfo>> {
    const threads = opts.threads ?? 1;
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64)) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `threads ${threads} must be an integer from 1 to 64`);
    const cancel = new SharedArrayBuffer(CANCEL_SLOTS * 4);
    const init: WorkerInit = { modelPath: opts.modelPath, kernels: opts.kernels ?? 'auto', threads, visionOnnx: opts.visionOnnx ?? '', r1Memory: opts.r1Memory ?? 'reset', cancel };
    const worker = createWorker(init);
    const info = await new Promise<WorkerModelInfo>((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.type === 'ready') {
          cleanup();
          resolve(m.info);
        } else if (m.type === 'startError') {
          cleanup();
          void worker.terminate();
          const e = m.error;
          reject(e.code !== undefined && e.code in ERROR_CODES ? toBitmarError(e) : new BitmarError('BITMAR_ERR_MODEL_FORMAT', `loading ${opts.modelPath} failed: ${e.name}: ${e.message}`));
        }
      };
      const onError = (e: Error): void => {
        cleanup();
        void worker.terminate();
        reject(new BitmarError('BITMAR_ERR_MODEL_FORMAT', `the inference worker failed while loading ${opts.modelPath}: ${e.message}`, { cause: e }));
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new BitmarError('BITMAR_ERR_MODEL_FORMAT', `the inference worker exited (code ${code}) while loading ${opts.modelPath}`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    return new InferenceWorker<WorkerModelInfo>(worker, cancel, info);
  }

  /** True when the worker serves a bitmar-stream model. */
  isStream(): this is InferenceWorker<StreamWorkerInfo> {
    return this.info.arch === 'bitmar-stream';
  }

  /** True when the worker serves a bitmar-r1 model. */
  isR1(): this is InferenceWorker<R1WorkerInfo> {
    return this.info.arch === 'bitmar-r1';
  }

  /**
   * Encode the batch, stream the caption of its newest image token by token, and resolve with the
   * whole caption and one episode per image. Aborting `signal` stops between tokens and resolves
   * with `cancelled: true` and the partial text. Image buffers are transferred to the worker
   * (detached here) when each owns its whole ArrayBuffer, otherwise copied; feature vectors are copied.
   * bitmar-r1: the frames are `features` when given, else `images` through the vision extractor
   * (BITMAR_ERR_CONFIG_INVALID without one); no frame at all captions the prompt alone.
   */
  describe(req: DescribeRequest, onToken: (t: WorkerToken) => void, signal?: AbortSignal): Promise<DescribeResult> {
    const transfer: ArrayBuffer[] = [];
    let images: RgbImage[];
    let features: Float32Array[];
    try {
      if (!Array.isArray(req.images)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'describe needs images: an array of RGB8 images');
      if (typeof req.prompt !== 'string') throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', 'prompt must be a string');
      features = this.copyFeatures(req.features ?? [], transfer);
      images = req.images.map((img) => transferable(img, transfer));
    } catch (e) {
      return Promise.reject(e);
    }
    const { maxTokens, temperature, topP, seed, mode, sinks, window } = req;
    const options: GenerationOptions = { maxTokens, temperature, topP, seed, mode, sinks, window };
    return this.request<DescribeResult>(
      (id) => ({ type: 'describe', id, images, features, prompt: req.prompt, options }),
      transfer,
      onToken,
      signal,
    );
  }

  /**
   * The recall key of a text, in the space of the episodes: bitmar-stream's unit text vector u;
   * bitmar-r1's unit episode of a text-only row, BL_te(mean_T Z).
   */
  encodeText(text: string): Promise<Float32Array> {
    return this.request<Float32Array>((id) => ({ type: 'encodeText', id, text }), []);
  }

  /**
   * The unit episode vector e of one RGB8 image (its buffer is transferred when possible).
   * bitmar-r1: e of (prompt, image) — R1's episode depends on the text too; `prompt` should be the
   * one the episodes were written with (empty = "a"); it needs the vision extractor.
   */
  encodeImage(img: { width: number; height: number; data: Uint8Array }, prompt = ''): Promise<Float32Array> {
    const transfer: ArrayBuffer[] = [];
    let image: RgbImage;
    try {
      image = transferable(img, transfer);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.request<Float32Array>((id) => ({ type: 'encodeImage', id, image, prompt }), transfer);
  }

  /** bitmar-r1 only: the unit episode vector e of (prompt, feature vector), as `encodeImage`. */
  encodeFeatures(features: Float32Array, prompt = ''): Promise<Float32Array> {
    let f: Float32Array;
    try {
      [f] = this.copyFeatures([features], []) as [Float32Array];
    } catch (e) {
      return Promise.reject(e);
    }
    return this.request<Float32Array>((id) => ({ type: 'encodeImage', id, image: null, features: f, prompt }), [f.buffer as ArrayBuffer]);
  }

  /**
   * Replace the worker's copy of the live memory slots: `count` unit vectors [count, d] (copied).
   * Throws BITMAR_ERR_MEMORY_VECTOR at once for a wrong size or a non-finite value.
   */
  setMemory(slots: Float32Array, count: number): void {
    const d = this.info.episodeDim;
    if (!(Number.isInteger(count) && count >= 0)) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slot count ${count} must be an integer ≥ 0`);
    if (!(slots instanceof Float32Array) || slots.length < count * d) {
      throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slots hold ${slots.length} floats; ${count} slots of width ${d} need ${count * d}`);
    }
    const copy = slots.slice(0, count * d);
    for (let i = 0; i < copy.length; i++) {
      if (!Number.isFinite(copy[i]!)) throw new BitmarError('BITMAR_ERR_MEMORY_VECTOR', `memory slot ${Math.floor(i / d)} holds ${copy[i]} at column ${i % d}`);
    }
    if (this.deadReason !== null) throw new BitmarError('BITMAR_ERR_GENERATION_CANCELLED', this.deadReason);
    // bitmar-r1 reads the K memory slots of its GGUF, not the node's episodes: checked, then ignored.
    if (this.info.arch === 'bitmar-r1') return;
    const m: ToWorker = { type: 'setMemory', slots: copy, count };
    this.worker.postMessage(m, [copy.buffer]);
  }

  /** Finish queued requests, then stop the worker. Idempotent. */
  async close(): Promise<void> {
    if (this.deadReason !== null || this.isClosing) return;
    this.isClosing = true;
    try {
      await this.request<void>((id) => ({ type: 'close', id }), []);
    } catch {
      // already dead: nothing to stop
    }
    this.deadReason = 'the inference worker is closed';
    await this.worker.terminate();
  }

  /** Checked copies of feature vectors (bitmar-r1 only), their buffers added to `transfer`. */
  private copyFeatures(features: readonly Float32Array[], transfer: ArrayBuffer[]): Float32Array[] {
    if (!Array.isArray(features)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', 'features must be an array of Float32Array');
    if (features.length === 0) return [];
    if (this.info.arch !== 'bitmar-r1') {
      throw new BitmarError('BITMAR_ERR_MODEL_ARCH', `feature vectors are bitmar-r1 input; ${this.info.name} is a ${this.info.arch} model, which takes images`);
    }
    const w = this.info.hparams.visionInput;
    return features.map((f, i) => {
      if (!(f instanceof Float32Array) || f.length !== w) {
        throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `feature vector ${i} has ${(f as { length?: number } | null)?.length ?? 0} values; this bitmar-r1 model takes ${w}`);
      }
      const c = f.slice();
      for (let j = 0; j < w; j++) if (!Number.isFinite(c[j]!)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `feature vector ${i} holds ${c[j]} at ${j}`);
      transfer.push(c.buffer as ArrayBuffer);
      return c;
    });
  }

  private request<T>(make: (id: number) => ToWorker, transfer: ArrayBuffer[], onToken?: (t: WorkerToken) => void, signal?: AbortSignal): Promise<T> {
    if (this.deadReason !== null) return Promise.reject(new BitmarError('BITMAR_ERR_GENERATION_CANCELLED', this.deadReason));
    if (this.memoryError !== null) {
      const e = this.memoryError;
      this.memoryError = null;
      return Promise.reject(e);
    }
    const id = this.nextId++;
    const slot = id % CANCEL_SLOTS;
    Atomics.store(this.cancel, slot, 0);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => void Atomics.store(this.cancel, slot, id);
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
      };
      this.pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v as T);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        onToken,
      });
      if (signal !== undefined) {
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
      this.worker.ref();
      this.worker.postMessage(make(id), transfer);
    });
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'token': {
        const p = this.pending.get(m.id);
        const { atEpochMs, ...rest } = m.token;
        try {
          p?.onToken?.({ ...rest, atMs: atEpochMs - performance.timeOrigin });
        } catch {
          // a throwing callback must not break the protocol; the request still completes
        }
        break;
      }
      case 'describeResult':
        this.pending.get(m.id)?.resolve(m.result);
        break;
      case 'vector':
        this.pending.get(m.id)?.resolve(m.vector);
        break;
      case 'closed':
        this.pending.get(m.id)?.resolve(undefined);
        break;
      case 'error':
        if (m.id === -1) this.memoryError = toBitmarError(m.error);
        else this.pending.get(m.id)?.reject(toBitmarError(m.error));
        break;
      case 'ready':
      case 'startError':
        break;
    }
  }

  private die(reason: string): void {
    if (this.deadReason !== null) return;
    this.deadReason = this.isClosing ? 'the inference worker is closed' : `${reason}; start a new InferenceWorker`;
    const err = new BitmarError('BITMAR_ERR_GENERATION_CANCELLED', this.deadReason);
    for (const p of [...this.pending.values()]) p.reject(err);
  }
}
