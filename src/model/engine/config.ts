/**
 * bitmar-stream hyperparameters (docs/bitmar-stream.md §1), read from GGUF metadata with the
 * prefix `bitmar-stream.` and validated once at load.
 */
import { BitmarError } from '../../errors.js';
import type { GgufReader } from '../gguf/reader.js';

export const STREAM_ARCH = 'bitmar-stream';

export interface StreamConfig {
  /** Square input side the frame is resized to (pixels). */
  readonly imageSize: number;
  /** ViT patch side P (pixels). */
  readonly patchSize: number;
  /** Width d. */
  readonly dim: number;
  /** Heads h (head width dim/heads). */
  readonly heads: number;
  readonly headDim: number;
  /** FFN width f. */
  readonly ffnDim: number;
  readonly visionLayers: number;
  readonly textLayers: number;
  readonly fusionLayers: number;
  readonly decoderLayers: number;
  /** Tmax: most prompt tokens. */
  readonly textContext: number;
  /** Default token cap per caption. */
  readonly maxCaptionTokens: number;
  /** Default S. */
  readonly sinkCount: number;
  /** Default W. */
  readonly windowLength: number;
  readonly ropeBase: number;
  readonly lnEps: number;
  /** N = (imageSize/patchSize)². */
  readonly patches: number;
  /** 3·P². */
  readonly patchDim: number;
  /** Vocabulary size V (from the tokenizer's token list). */
  readonly vocabSize: number;
}

/** The Shapes defaults of docs §1, also used by tools/make-random-model.ts. */
export const SHAPES_HPARAMS = {
  image_size: 64,
  patch_size: 8,
  embedding_length: 128,
  head_count: 4,
  feed_forward_length: 256,
  'vision.block_count': 3,
  'text.block_count': 1,
  'fusion.block_count': 1,
  'decoder.block_count': 3,
  'text.context_length': 16,
  'decoder.max_caption_tokens': 24,
  'attention.sink_count': 4,
  'attention.window_length': 60,
  'rope.freq_base': 10000,
  layer_norm_epsilon: 1e-5,
} as const;

export type StreamHparamKey = keyof typeof SHAPES_HPARAMS;

/** Keys whose value is a float (f32) in the GGUF; the rest are u32. */
export const FLOAT_HPARAMS: ReadonlySet<StreamHparamKey> = new Set(['rope.freq_base', 'layer_norm_epsilon']);

function mismatch(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${source}: ${message}`);
}

/**
 * Read and check the hyperparameters. Throws BITMAR_ERR_MODEL_ARCH for another architecture and
 * BITMAR_ERR_MODEL_MISMATCH naming the key for a missing or inconsistent value.
 */
export function readStreamConfig(r: GgufReader, vocabSize: number): StreamConfig {
  const arch = r.get('general.architecture');
  if (arch === undefined || arch.type !== 'string' || arch.value !== STREAM_ARCH) {
    const found = arch === undefined ? 'none' : arch.type === 'string' ? `"${arch.value}"` : arch.type;
    throw new BitmarError(
      'BITMAR_ERR_MODEL_ARCH',
      `${r.source}: general.architecture is ${found}; this engine runs "${STREAM_ARCH}" only`,
    );
  }
  // Upper bounds keep a corrupt header from sizing huge buffers before the tensors are checked.
  const MAX: Partial<Record<StreamHparamKey, number>> = {
    image_size: 4096,
    patch_size: 512,
    embedding_length: 65536,
    head_count: 1024,
    feed_forward_length: 1 << 20,
    'vision.block_count': 1024,
    'text.block_count': 1024,
    'fusion.block_count': 1024,
    'decoder.block_count': 1024,
    'text.context_length': 65536,
    'decoder.max_caption_tokens': 4096,
    'attention.sink_count': 64,
    'attention.window_length': 65536,
  };
  const u = (k: StreamHparamKey, min = 1): number => {
    const v = r.getUint(`${STREAM_ARCH}.${k}`);
    if (v < min) throw mismatch(r.source, `${STREAM_ARCH}.${k} = ${v} must be ≥ ${min}`);
    const max = MAX[k];
    if (max !== undefined && v > max) throw mismatch(r.source, `${STREAM_ARCH}.${k} = ${v} must be ≤ ${max}`);
    return v;
  };
  const f = (k: StreamHparamKey): number => {
    const v = r.getNumber(`${STREAM_ARCH}.${k}`);
    if (!(Number.isFinite(v) && v > 0)) throw mismatch(r.source, `${STREAM_ARCH}.${k} = ${v} must be a positive number`);
    return v;
  };
  const imageSize = u('image_size');
  const patchSize = u('patch_size');
  const dim = u('embedding_length');
  const heads = u('head_count');
  if (imageSize % patchSize !== 0) {
    throw mismatch(r.source, `${STREAM_ARCH}.image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  }
  if (dim % heads !== 0 || (dim / heads) % 2 !== 0) {
    throw mismatch(r.source, `${STREAM_ARCH}.embedding_length ${dim} / head_count ${heads} must be an even integer (RoPE half-split)`);
  }
  const patches = (imageSize / patchSize) ** 2;
  return {
    imageSize,
    patchSize,
    dim,
    heads,
    headDim: dim / heads,
    ffnDim: u('feed_forward_length'),
    visionLayers: u('vision.block_count', 0),
    textLayers: u('text.block_count', 0),
    fusionLayers: u('fusion.block_count', 0),
    decoderLayers: u('decoder.block_count'),
    textContext: u('text.context_length'),
    maxCaptionTokens: u('decoder.max_caption_tokens'),
    sinkCount: u('attention.sink_count', 0),
    windowLength: u('attention.window_length'),
    ropeBase: f('rope.freq_base'),
    lnEps: Math.fround(f('layer_norm_epsilon')),
    patches,
    patchDim: 3 * patchSize * patchSize,
    vocabSize,
  };
}
