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
  /**
   * Patch vector length: 3·P² with the linear stem, C2·(P/2)² with the convolutional stem
   * (the width of v.patch_embed's rows).
   */
  readonly patchDim: number;
  /**
   * `vision.stem_channels` [C1, C2] of the convolutional stem (docs §1, §3), or null for the
   * linear patch stem (key absent).
   */
  readonly stemChannels: readonly [number, number] | null;
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

/** The optional u32-array key of the convolutional stem (docs §1), without the prefix. */
export const STEM_CHANNELS_KEY = 'vision.stem_channels';

/** Upper bound on C1 and C2 (a corrupt header must not size huge scratch buffers). */
const MAX_STEM_CHANNELS = 1024;

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
  const stemChannels = readStemChannels(r, imageSize, patchSize);
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
    patchDim: stemChannels === null ? 3 * patchSize * patchSize : stemChannels[1] * (patchSize / 2) ** 2,
    stemChannels,
    vocabSize,
  };
}

/**
 * `bitmar-stream.vision.stem_channels`: absent → null (linear patch stem); else exactly two
 * positive integers [C1, C2] (written as u32), with an even patch size and image size (the second
 * convolution has stride 2 and each patch becomes (P/2)² stem pixels).
 */
function readStemChannels(r: GgufReader, imageSize: number, patchSize: number): readonly [number, number] | null {
  const key = `${STREAM_ARCH}.${STEM_CHANNELS_KEY}`;
  const v = r.get(key);
  if (v === undefined) return null;
  const fix = `write it as a u32 array [C1, C2] of positive channel counts ≤ ${MAX_STEM_CHANNELS} (e.g. [16, 32]), or leave it out for the linear patch stem`;
  if (v.type !== 'array') throw mismatch(r.source, `${key} is a ${v.type}, must be an array of 2 u32; ${fix}`);
  const { itemType, items } = v.value;
  const integer = itemType === 'u8' || itemType === 'u16' || itemType === 'u32' || itemType === 'i8' || itemType === 'i16' || itemType === 'i32' || itemType === 'u64' || itemType === 'i64';
  if (!integer) throw mismatch(r.source, `${key} is an array of ${itemType}, must be an array of 2 u32; ${fix}`);
  const values = (items as readonly (number | bigint)[]).map(Number);
  if (values.length !== 2 || values.some((c) => !(Number.isSafeInteger(c) && c >= 1 && c <= MAX_STEM_CHANNELS))) {
    throw mismatch(r.source, `${key} = [${values.join(', ')}] is invalid; ${fix}`);
  }
  if (patchSize % 2 !== 0 || imageSize % 2 !== 0) {
    throw mismatch(
      r.source,
      `${key} is set (convolutional stem) but ${STREAM_ARCH}.patch_size ${patchSize} / image_size ${imageSize} must both be even ` +
        '(the stem halves the image: each P×P patch becomes (P/2)² stem pixels); use an even patch size, or drop the key for the linear stem',
    );
  }
  return [values[0]!, values[1]!];
}
