/**
 * Pixels → bitmar-r1 vision input: runs a user-supplied DINOv2 ONNX file through onnxruntime-node
 * and returns one 768-d feature vector per image (docs/bitmar-r1.md §5). bitmar-r1 itself takes
 * precomputed 768-d DINOv2 global embeddings (spec §3.4); this is the optional extractor for images.
 *
 * onnxruntime-node is NOT a dependency of bitmar-node: it is imported dynamically on first use and
 * its absence is a BitmarError saying how to install it. onnxruntime-node's `run` returns a promise
 * but computes on the calling thread (1.23: deferred by a tick, then the thread is busy for the
 * whole run; measured), so the node runs the extractor inside the inference worker, never on the
 * main thread; an embedder calling `extract` in-thread blocks its event loop for each run.
 *
 * The model: one float32 input (`pixel_values`, or the only input) [B, 3, S, S] and either
 * `pooler_output` [B, 768] (preferred when present; Hugging Face's Dinov2Model pooler is the final
 * LayerNorm's CLS token) or `last_hidden_state` [B, T, 768], of which the CLS token (row 0) is taken.
 * Without those names a single output of rank 2 or 3 ending in 768 is accepted the same way;
 * anything else is refused, naming the outputs the file has.
 *
 * Preprocessing of a W×H RGB8 frame: exact area (box-filter) resize of the WHOLE frame to S×S (no
 * crop; aspect ratio not kept; src/model/preprocess.ts `resizeAreaU8`, rounded to uint8), then
 * x = (v/255 − mean_c)/std_c with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224,
 * 0.225), CHW. S = 224, or the model's own fixed square size when its input declares one.
 */
import { existsSync } from 'node:fs';
import { BitmarError } from '../../errors.js';
import { resizeAreaU8, type RgbImage } from '../preprocess.js';

/** The message when onnxruntime-node is not installed. */
export const VISION_ONNX_MISSING = 'bitmar-r1 pixel input needs onnxruntime-node: npm install onnxruntime-node';
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** Input side when the model does not fix one. */
export const DINOV2_SIZE = 224;
/** DINOv2-B's width = bitmar-r1's vision input. */
export const DINOV2_WIDTH = 768;

// ---- the parts of onnxruntime-node used here (it is optional, so its types are not imported) ----

type Dim = number | string;
interface OrtTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
  dispose?(): void;
}
interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor?: boolean;
  readonly type?: string;
  readonly shape?: readonly Dim[];
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** onnxruntime ≥ 1.22 */
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtModule {
  readonly InferenceSession: { create(path: string, options?: Record<string, unknown>): Promise<OrtSession> };
  readonly Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

/**
 * Import onnxruntime-node (or another specifier, for tests). Missing → BitmarError
 * BITMAR_ERR_CONFIG_INVALID with VISION_ONNX_MISSING; a broken install → the same code with the cause.
 */
export async function importOrt(specifier = 'onnxruntime-node'): Promise<OrtModule> {
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', VISION_ONNX_MISSING, { cause: e });
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `${VISION_ONNX_MISSING} (it is installed but failed to load: ${(e as Error).message})`, { cause: e });
  }
  const pick = (m: unknown): OrtModule | null => {
    const o = m as Partial<OrtModule> | null;
    return o !== null && typeof o === 'object' && typeof o.InferenceSession?.create === 'function' && typeof o.Tensor === 'function' ? (o as OrtModule) : null;
  };
  const ort = pick(mod) ?? pick((mod as { default?: unknown }).default);
  if (ort === null) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `${VISION_ONNX_MISSING} (${specifier} has no InferenceSession/Tensor)`);
  return ort;
}

// ---- model inspection ---------------------------------------------------------------------------

/** What a loaded extractor runs. */
export interface VisionOnnxInfo {
  readonly path: string;
  readonly input: string;
  /** The output read, and how: the whole row ('pooled') or its CLS token, row 0 ('cls'). */
  readonly output: string;
  readonly pooling: 'pooled' | 'cls';
  /** Side S of the square input. */
  readonly size: number;
  /** The model's fixed batch, or null when the batch dimension is dynamic. */
  readonly batch: number | null;
  /** Feature width (768). */
  readonly width: number;
}

const shapeText = (m: OrtValueMetadata): string => (m.shape === undefined ? '[?]' : `[${m.shape.join(', ')}]`);

function mismatch(path: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${path}: ${message}`);
}

/**
 * Choose the input and the output (pure; tested on metadata alone). `inputs` / `outputs` carry
 * shapes when the runtime reports them (onnxruntime ≥ 1.22), else names only; run time checks the
 * actual dims again.
 */
export function inspectVisionModel(path: string, inputs: readonly OrtValueMetadata[], outputs: readonly OrtValueMetadata[], width = DINOV2_WIDTH): VisionOnnxInfo {
  const listing = `inputs ${inputs.map((m) => `${m.name} ${shapeText(m)}`).join(', ') || 'none'}; outputs ${outputs.map((m) => `${m.name} ${shapeText(m)}`).join(', ') || 'none'}`;
  const input = inputs.find((m) => m.name === 'pixel_values') ?? (inputs.length === 1 ? inputs[0] : undefined);
  if (input === undefined) throw mismatch(path, `a DINOv2 feature extractor needs one input "pixel_values" [B, 3, H, W]; this file has ${listing}`);
  if (input.type !== undefined && input.type !== 'float32') throw mismatch(path, `input "${input.name}" is ${input.type}; export the model with float32 inputs (${listing})`);
  let size = DINOV2_SIZE;
  let batch: number | null = null;
  if (input.shape !== undefined && input.shape.length > 0) {
    const [b, c, h, w] = input.shape;
    if (input.shape.length !== 4 || (typeof c === 'number' && c !== 3)) throw mismatch(path, `input "${input.name}" must be [B, 3, H, W] pixels; it is ${shapeText(input)}`);
    if (typeof h === 'number' && typeof w === 'number') {
      if (h !== w) throw mismatch(path, `input "${input.name}" is fixed to ${w}×${h}; only square inputs are supported`);
      size = h;
    } else if (typeof h === 'number' || typeof w === 'number') {
      size = typeof h === 'number' ? h : (w as number);
    }
    if (typeof b === 'number' && b > 0) batch = b;
  }
  const rankOk = (m: OrtValueMetadata, rank: number): boolean => m.shape === undefined || m.shape.length === 0 || m.shape.length === rank;
  const endsIn = (m: OrtValueMetadata): boolean => m.shape !== undefined && m.shape.length > 0 && m.shape[m.shape.length - 1] === width;
  let out: OrtValueMetadata | undefined;
  let pooling: 'pooled' | 'cls' = 'pooled';
  const pooled = outputs.find((m) => m.name === 'pooler_output' && rankOk(m, 2));
  const hidden = outputs.find((m) => m.name === 'last_hidden_state' && rankOk(m, 3));
  if (pooled !== undefined) out = pooled;
  else if (hidden !== undefined) [out, pooling] = [hidden, 'cls'];
  else {
    const r2 = outputs.filter((m) => m.shape?.length === 2 && endsIn(m));
    const r3 = outputs.filter((m) => m.shape?.length === 3 && endsIn(m));
    if (r2.length === 1) out = r2[0];
    else if (r2.length === 0 && r3.length === 1) [out, pooling] = [r3[0], 'cls'];
  }
  if (out === undefined) {
    throw mismatch(path, `a DINOv2 feature extractor needs an output "pooler_output" [B, ${width}] or "last_hidden_state" [B, T, ${width}] (its CLS token is used); this file has ${listing}`);
  }
  const last = out.shape?.[out.shape.length - 1];
  if (typeof last === 'number' && last !== width) {
    throw mismatch(path, `output "${out.name}" gives ${last}-d features; bitmar-r1 takes ${width}-d vectors (a DINOv2-B / ViT-B/14 model)`);
  }
  if (out.type !== undefined && out.type !== 'float32') throw mismatch(path, `output "${out.name}" is ${out.type}; export the model with float32 outputs`);
  return { path, input: input.name, output: out.name, pooling, size, batch, width };
}

// ---- preprocessing ------------------------------------------------------------------------------

/**
 * One frame → x [3, S, S] (CHW float32) written at `out[offset…]`: area resize of the whole frame
 * to S×S, rounded to uint8, then (v/255 − mean_c)/std_c (computed in float64, stored as float32).
 */
export function dinov2Pixels(image: RgbImage, size: number, out: Float32Array = new Float32Array(3 * size * size), offset = 0): Float32Array {
  const px = resizeAreaU8(image.data, image.width, image.height, size);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const m = IMAGENET_MEAN[c]!;
    const s = IMAGENET_STD[c]!;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = (px[i * 3 + c]! / 255 - m) / s;
  }
  return out;
}

// ---- the extractor ------------------------------------------------------------------------------

export interface VisionOnnxOptions {
  /** ORT intra-op threads (default 1: the node shares a small CPU with the BitMar kernels). */
  readonly threads?: number;
  /** Expected feature width (default 768: bitmar-r1's `vision.input_length`). */
  readonly width?: number;
  /** The onnxruntime module (default: import('onnxruntime-node')). */
  readonly ort?: OrtModule;
}

export interface VisionExtractor {
  readonly info: VisionOnnxInfo;
  /** One feature vector (info.width floats) per image, in order (computes on this thread: see above). */
  extract(images: readonly RgbImage[]): Promise<Float32Array[]>;
  /** The same from already preprocessed pixels: n images of [3, S, S] (tests, other preprocessing). */
  extractPixels(pixels: Float32Array, n: number): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/**
 * Load a DINOv2 ONNX file. BitmarError: BITMAR_ERR_MODEL_NOT_FOUND (no file),
 * BITMAR_ERR_CONFIG_INVALID (onnxruntime-node missing), BITMAR_ERR_MODEL_FORMAT (ORT cannot load
 * it), BITMAR_ERR_MODEL_MISMATCH (not a [B,3,S,S] → 768-d model).
 */
export async function loadVisionOnnx(path: string, opts: VisionOnnxOptions = {}): Promise<VisionExtractor> {
  if (!existsSync(path)) throw new BitmarError('BITMAR_ERR_MODEL_NOT_FOUND', `vision ONNX file ${path} does not exist (model.visionOnnx / --vision-onnx)`);
  const threads = opts.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `threads ${threads} must be an integer ≥ 1`);
  const width = opts.width ?? DINOV2_WIDTH;
  const ort = opts.ort ?? (await importOrt());
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `onnxruntime cannot load ${path}: ${(e as Error).message}`, { cause: e });
  }
  const meta = (names: readonly string[], md: readonly OrtValueMetadata[] | undefined): OrtValueMetadata[] =>
    names.map((name) => md?.find((m) => m.name === name) ?? { name });
  let info: VisionOnnxInfo;
  try {
    info = inspectVisionModel(path, meta(session.inputNames, session.inputMetadata), meta(session.outputNames, session.outputMetadata), width);
  } catch (e) {
    await session.release().catch(() => undefined);
    throw e;
  }
  const S = info.size;
  const per = 3 * S * S;
  let closed = false;

  async function runChunk(pixels: Float32Array, n: number): Promise<Float32Array[]> {
    const B = info.batch ?? n;
    let x = pixels;
    if (B !== n) {
      // a fixed batch larger than the chunk: pad with zero images
      x = new Float32Array(B * per);
      x.set(pixels.subarray(0, n * per));
    }
    const feeds = { [info.input]: new ort.Tensor('float32', x, [B, 3, S, S]) };
    let res: Record<string, OrtTensor>;
    try {
      // every output: with a fetch list, onnxruntime-node 1.23 returned ['pooler_output']'s result
      // keyed "last_hidden_state" (seen on the stand-in model)
      res = await session.run(feeds);
    } catch (e) {
      throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${path}: onnxruntime run failed: ${(e as Error).message}`, { cause: e });
    }
    const t = res[info.output];
    try {
      if (t === undefined) throw mismatch(path, `the run returned no "${info.output}"`);
      const want = info.pooling === 'pooled' ? `[${B}, ${width}]` : `[${B}, T, ${width}]`;
      const ok = t.dims[0] === B && t.dims[t.dims.length - 1] === width && t.dims.length === (info.pooling === 'pooled' ? 2 : 3) && t.type === 'float32';
      if (!ok || !(t.data instanceof Float32Array)) throw mismatch(path, `output "${info.output}" is ${t.type} [${t.dims.join(', ')}], expected float32 ${want}`);
      const stride = info.pooling === 'pooled' ? width : t.dims[1]! * width;
      const out: Float32Array[] = [];
      for (let b = 0; b < n; b++) {
        const v = t.data.slice(b * stride, b * stride + width); // CLS = token 0
        for (let i = 0; i < width; i++) {
          if (!Number.isFinite(v[i]!)) throw mismatch(path, `feature ${i} of image ${b} is ${v[i]}`);
        }
        out.push(v);
      }
      return out;
    } finally {
      for (const v of Object.values(res)) v.dispose?.();
    }
  }

  async function extractPixels(pixels: Float32Array, n: number): Promise<Float32Array[]> {
    if (closed) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `the vision extractor for ${path} is closed`);
    if (!(Number.isInteger(n) && n >= 0) || pixels.length < n * per) throw new RangeError(`pixels hold ${pixels.length} floats; ${n} images of [3, ${S}, ${S}] need ${n * per}`);
    const chunk = info.batch ?? Math.max(n, 1);
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const part = i === 0 && m * per === pixels.length && pixels.byteOffset === 0 ? pixels : pixels.slice(i * per, (i + m) * per); // ORT wants a whole buffer
      out.push(...(await runChunk(part, m)));
    }
    return out;
  }

  return {
    info,
    extractPixels,
    async extract(images) {
      const px = new Float32Array(images.length * per);
      images.forEach((img, i) => dinov2Pixels(img, S, px, i * per));
      return extractPixels(px, images.length);
    },
    async close() {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
