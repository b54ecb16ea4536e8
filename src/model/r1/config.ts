/**
 * bitmar-r1 hyperparameters and tensor layout (docs/bitmar-r1.md §1–§2).
 *
 * The layout is the authors' state_dict (bitmar-reference-spec.md §7): `r1StateDict(h)` lists every
 * key with its PyTorch shape, in the authors' order, for any layer counts and widths. The converter
 * infers the hyperparameters from a checkpoint's shapes (`inferR1Hparams`) and stores them as GGUF
 * metadata with the prefix `bitmar-r1.`; the engine reads them back (`readR1Config`) and checks every
 * tensor against them.
 */
import { BitmarError } from '../../errors.js';
import type { GgufReader } from '../gguf/reader.js';
import type { GgufValue } from '../gguf/types.js';

export const R1_ARCH = 'bitmar-r1';

/** The numbers that define an R1 model. All widths (text, fusion, vision latent, episode, decoder) are `dim`. */
export interface R1Hparams {
  readonly vocabSize: number;
  /** d: text encoder, fusion, vision latent, episode and decoder width. */
  readonly dim: number;
  /** Rows of both learned position tables (max_seq_len). */
  readonly contextLength: number;
  readonly encoderLayers: number;
  readonly encoderHeads: number;
  readonly encoderFfn: number;
  readonly decoderLayers: number;
  readonly decoderHeads: number;
  readonly decoderFfn: number;
  /** Width of the vision input vector (768 for DINOv2-B). */
  readonly visionInput: number;
  /** vision_hidden_size. */
  readonly visionHidden: number;
  /** Number of hidden BitLinear + LN + GELU stages in the vision MLP (2 in R1). */
  readonly visionLayers: number;
  readonly fusionLayers: number;
  readonly fusionHeads: number;
  /** K, memory slots. */
  readonly memorySlots: number;
  /** α of the (training-only) memory write. */
  readonly memoryAlpha: number;
  readonly lnEps: number;
}

/** R1Hparams plus derived values. */
export interface R1Config extends R1Hparams {
  readonly encoderHeadDim: number;
  readonly decoderHeadDim: number;
}

/** One state-dict entry: its PyTorch shape and role. */
export interface R1Entry {
  readonly shape: readonly number[];
  /** 'bitlinear' marks NAME.weight of a BitLinear; 'scale' its weight_scale/input_scale buffers. */
  readonly role: 'bitlinear' | 'bias' | 'scale' | 'float' | 'dropped' | 'count';
}

/** A BitLinear layer of the model: name prefix, in and out widths, whether it has a bias. */
export interface R1BitLinearSpec {
  readonly name: string;
  readonly inDim: number;
  readonly outDim: number;
  readonly bias: boolean;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Every BitLinear of the model, in state-dict order (75 for the paper model). */
export function r1BitLinears(h: R1Hparams): R1BitLinearSpec[] {
  const d = h.dim;
  const out: R1BitLinearSpec[] = [];
  const add = (name: string, inDim: number, outDim: number, bias = true): void => void out.push({ name, inDim, outDim, bias });
  const block = (p: string, ffn: number): void => {
    for (const x of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) add(`${p}.attn.${x}`, d, d);
    add(`${p}.mlp.fc1`, d, ffn);
    add(`${p}.mlp.fc2`, ffn, d);
  };
  for (const i of range(h.encoderLayers)) block(`text_encoder.layers.${i}`, h.encoderFfn);
  for (const i of range(h.decoderLayers)) block(`text_decoder.layers.${i}`, h.decoderFfn);
  add('text_decoder.lm_head', d, h.vocabSize, false);
  for (const i of range(h.visionLayers)) add(`vision_encoder.layers.${i}`, i === 0 ? h.visionInput : h.visionHidden, h.visionHidden);
  add('vision_encoder.output_proj', h.visionHidden, d);
  add('fusion.text_proj', d, d);
  add('fusion.vision_proj', d, d);
  for (const j of range(h.fusionLayers)) for (const x of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) add(`fusion.cross_attention_layers.${j}.${x}`, d, d);
  add('fusion.output_proj', d, d);
  for (const n of ['query_net', 'key_net', 'value_net']) {
    add(`memory.${n}.0`, d, d);
    add(`memory.${n}.3`, d, d);
  }
  add('memory.consolidation_net.0', d, 2 * d);
  add('memory.consolidation_net.4', 2 * d, d);
  for (const n of ['text_to_episode', 'vision_to_episode', 'memory_to_decoder', 'decoder_input_proj']) add(n, d, d);
  return out;
}

/**
 * The authors' state_dict for these hyperparameters: key → PyTorch shape and role, in the
 * authors' order (383 entries for the paper model; bitmar-r1-state-dict-keys.tsv).
 */
export function r1StateDict(h: R1Hparams): Map<string, R1Entry> {
  const d = h.dim;
  const m = new Map<string, R1Entry>();
  const f = (name: string, ...shape: number[]): void => void m.set(name, { shape, role: 'float' });
  const ln = (p: string, w: number): void => {
    f(`${p}.weight`, w);
    f(`${p}.bias`, w);
  };
  const bl = (name: string, inDim: number, outDim: number, bias = true): void => {
    m.set(`${name}.weight`, { shape: [outDim, inDim], role: 'bitlinear' });
    if (bias) m.set(`${name}.bias`, { shape: [outDim], role: 'bias' });
    m.set(`${name}.weight_scale`, { shape: [1], role: 'scale' });
    m.set(`${name}.input_scale`, { shape: [1], role: 'scale' });
  };
  const block = (p: string, ffn: number): void => {
    ln(`${p}.norm1`, d);
    for (const x of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) bl(`${p}.attn.${x}`, d, d);
    ln(`${p}.norm2`, d);
    bl(`${p}.mlp.fc1`, d, ffn);
    bl(`${p}.mlp.fc2`, ffn, d);
    ln(`${p}.mlp.norm`, d);
  };
  f('text_encoder.token_embedding.weight', h.vocabSize, d);
  f('text_encoder.position_embedding.weight', h.contextLength, d);
  for (const i of range(h.encoderLayers)) block(`text_encoder.layers.${i}`, h.encoderFfn);
  ln('text_encoder.norm', d);
  m.set('text_decoder.causal_mask', { shape: [1, 1, h.contextLength, h.contextLength], role: 'dropped' });
  m.set('text_decoder.token_embedding.weight', { shape: [h.vocabSize, d], role: 'dropped' });
  f('text_decoder.position_embedding.weight', h.contextLength, d);
  for (const i of range(h.decoderLayers)) block(`text_decoder.layers.${i}`, h.decoderFfn);
  ln('text_decoder.norm', d);
  bl('text_decoder.lm_head', d, h.vocabSize, false);
  for (const i of range(h.visionLayers)) bl(`vision_encoder.layers.${i}`, i === 0 ? h.visionInput : h.visionHidden, h.visionHidden);
  bl('vision_encoder.output_proj', h.visionHidden, d);
  for (const i of range(h.visionLayers)) ln(`vision_encoder.layer_norms.${i}`, h.visionHidden);
  bl('fusion.text_proj', d, d);
  bl('fusion.vision_proj', d, d);
  for (const j of range(h.fusionLayers)) for (const x of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) bl(`fusion.cross_attention_layers.${j}.${x}`, d, d);
  for (const j of range(h.fusionLayers)) ln(`fusion.layer_norms.${j}`, d);
  bl('fusion.output_proj', d, d);
  f('memory.attention_temperature');
  f('memory.memory', h.memorySlots, d);
  for (const b of ['memory_age', 'memory_usage', 'memory_quality', 'memory_importance']) f(`memory.${b}`, h.memorySlots);
  f('memory.memory_mean', d);
  f('memory.memory_std', d);
  m.set('memory.update_count', { shape: [], role: 'count' });
  for (const n of ['query_net', 'key_net', 'value_net']) {
    bl(`memory.${n}.0`, d, d);
    ln(`memory.${n}.1`, d);
    bl(`memory.${n}.3`, d, d);
  }
  bl('memory.consolidation_net.0', d, 2 * d);
  ln('memory.consolidation_net.1', 2 * d);
  bl('memory.consolidation_net.4', 2 * d, d);
  ln('memory.consolidation_net.5', d);
  for (const n of ['text_to_episode', 'vision_to_episode', 'memory_to_decoder', 'decoder_input_proj']) bl(n, d, d);
  return m;
}

/** Layer counts from key names: 1 + the largest i of `${prefix}.{i}.`, or 0. */
export function countIndexed(keys: Iterable<string>, prefix: string): number {
  let n = 0;
  const p = `${prefix}.`;
  for (const k of keys) {
    if (!k.startsWith(p)) continue;
    const rest = k.slice(p.length);
    const dot = rest.indexOf('.');
    const i = Number(dot < 0 ? rest : rest.slice(0, dot));
    if (Number.isInteger(i) && i >= 0 && i < 10_000) n = Math.max(n, i + 1);
  }
  return n;
}

/** The layer counts a key set implies (widths set to 1: only names matter). */
export function r1CountsFromKeys(keys: readonly string[]): R1Hparams {
  return {
    vocabSize: 1,
    dim: 1,
    contextLength: 1,
    encoderLayers: countIndexed(keys, 'text_encoder.layers'),
    encoderHeads: 1,
    encoderFfn: 1,
    decoderLayers: countIndexed(keys, 'text_decoder.layers'),
    decoderHeads: 1,
    decoderFfn: 1,
    visionInput: 1,
    visionHidden: 1,
    visionLayers: countIndexed(keys, 'vision_encoder.layers'),
    fusionLayers: countIndexed(keys, 'fusion.cross_attention_layers'),
    fusionHeads: 1,
    memorySlots: 1,
    memoryAlpha: 0.2,
    lnEps: 1e-5,
  };
}

export interface R1HeadCounts {
  readonly encoder: number;
  readonly decoder: number;
  readonly fusion: number;
}

/**
 * Infer the hyperparameters from state-dict shapes (keys already checked). Throws
 * BITMAR_ERR_MODEL_MISMATCH listing every tensor whose shape disagrees with the inferred model.
 */
export function inferR1Hparams(shapes: ReadonlyMap<string, readonly number[]>, heads: R1HeadCounts, memoryAlpha = 0.2, source = '<checkpoint>'): R1Hparams {
  const keys = [...shapes.keys()];
  const dimsOf = (k: string): readonly number[] => {
    const s = shapes.get(k);
    if (s === undefined) throw new BitmarError('BITMAR_ERR_MODEL_CHECKPOINT_KEYS', `${source}: key "${k}" is missing`);
    return s;
  };
  const counts = r1CountsFromKeys(keys);
  const [vocabSize, dim] = dimsOf('text_encoder.token_embedding.weight') as [number, number];
  const h: R1Hparams = {
    ...counts,
    vocabSize,
    dim,
    contextLength: dimsOf('text_encoder.position_embedding.weight')[0]!,
    encoderHeads: heads.encoder,
    encoderFfn: dimsOf('text_encoder.layers.0.mlp.fc1.weight')[0]!,
    decoderHeads: heads.decoder,
    decoderFfn: dimsOf('text_decoder.layers.0.mlp.fc1.weight')[0]!,
    visionInput: dimsOf('vision_encoder.layers.0.weight')[1]!,
    visionHidden: dimsOf('vision_encoder.layers.0.weight')[0]!,
    fusionHeads: heads.fusion,
    memorySlots: dimsOf('memory.memory')[0]!,
    memoryAlpha,
  };
  const wrong: string[] = [];
  for (const [k, e] of r1StateDict(h)) {
    const got = shapes.get(k);
    if (got === undefined) continue;
    const ok =
      e.role === 'scale' || e.role === 'count' || k === 'memory.attention_temperature'
        ? got.reduce((a, b) => a * b, 1) === 1 && got.length <= 1 // [] or [1] (spec §12.3)
        : got.length === e.shape.length && got.every((v, i) => v === e.shape[i]);
    if (!ok) wrong.push(`${k}: [${got.join(', ')}], expected [${e.shape.join(', ')}]`);
  }
  if (wrong.length > 0) {
    throw new BitmarError(
      'BITMAR_ERR_MODEL_MISMATCH',
      `${source}: ${wrong.length} tensor shape${wrong.length > 1 ? 's do' : ' does'} not fit an R1 model with d=${dim}, ` +
        `vocab ${vocabSize}, ${h.encoderLayers}+${h.decoderLayers} layers (bitmar-r1 needs one width d for the text, fusion, ` +
        `vision latent, episode and decoder):\n  ${listCapped(wrong, 30).join('\n  ')}`,
    );
  }
  checkHparams(h, source);
  return h;
}

/** Up to `max` items, then "… and N more". */
export function listCapped(items: readonly string[], max: number): string[] {
  return items.length <= max ? [...items] : [...items.slice(0, max), `… and ${items.length - max} more`];
}

function checkHparams(h: R1Hparams, source: string): void {
  const bad = (msg: string): never => {
    throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${source}: ${msg}`);
  };
  if (h.encoderLayers < 1 || h.decoderLayers < 1) bad(`an R1 model needs ≥ 1 encoder and decoder layer (found ${h.encoderLayers} and ${h.decoderLayers})`);
  if (h.visionLayers < 1) bad('an R1 model needs ≥ 1 vision MLP layer');
  for (const [what, heads] of [['encoder', h.encoderHeads], ['decoder', h.decoderHeads], ['fusion', h.fusionHeads]] as const) {
    if (!(Number.isInteger(heads) && heads >= 1 && h.dim % heads === 0)) bad(`${what} head count ${heads} must be a positive divisor of d=${h.dim}`);
  }
  if (h.vocabSize < 257) bad(`vocabulary size ${h.vocabSize} is below 257 (a gpt2 vocabulary needs the 256 byte tokens and <|endoftext|>)`);
}

/** Metadata key → hyperparameter, each u32 unless listed in R1_FLOAT_KEYS. */
export const R1_METADATA_KEYS = {
  embedding_length: 'dim',
  context_length: 'contextLength',
  'encoder.block_count': 'encoderLayers',
  'encoder.head_count': 'encoderHeads',
  'encoder.feed_forward_length': 'encoderFfn',
  'decoder.block_count': 'decoderLayers',
  'decoder.head_count': 'decoderHeads',
  'decoder.feed_forward_length': 'decoderFfn',
  'vision.input_length': 'visionInput',
  'vision.hidden_length': 'visionHidden',
  'vision.block_count': 'visionLayers',
  'fusion.block_count': 'fusionLayers',
  'fusion.head_count': 'fusionHeads',
  'memory.slot_count': 'memorySlots',
  'memory.alpha': 'memoryAlpha',
  layer_norm_epsilon: 'lnEps',
} as const satisfies Record<string, Exclude<keyof R1Hparams, 'vocabSize'>>;

const R1_FLOAT_KEYS: ReadonlySet<string> = new Set(['memory.alpha', 'layer_norm_epsilon']);

/** The `bitmar-r1.*` metadata entries of a model. */
export function r1Metadata(h: R1Hparams): [string, GgufValue][] {
  return Object.entries(R1_METADATA_KEYS).map(([k, field]) => {
    const v = h[field];
    return [`${R1_ARCH}.${k}`, R1_FLOAT_KEYS.has(k) ? { type: 'f32', value: v } : { type: 'u32', value: v }];
  });
}

/** Read and check the hyperparameters of a bitmar-r1 GGUF (vocabulary size from its tokenizer). */
export function readR1Config(r: GgufReader, vocabSize: number): R1Config {
  const arch = r.get('general.architecture');
  if (arch === undefined || arch.type !== 'string' || arch.value !== R1_ARCH) {
    const found = arch === undefined ? 'none' : arch.type === 'string' ? `"${arch.value}"` : arch.type;
    throw new BitmarError('BITMAR_ERR_MODEL_ARCH', `${r.source}: general.architecture is ${found}; this engine runs "${R1_ARCH}" only`);
  }
  const values: Record<string, number> = { vocabSize };
  for (const [k, field] of Object.entries(R1_METADATA_KEYS)) {
    const key = `${R1_ARCH}.${k}`;
    const v = R1_FLOAT_KEYS.has(k) ? r.getNumber(key) : r.getUint(key);
    if (!Number.isFinite(v)) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${r.source}: ${key} = ${v} must be finite`);
    values[field] = v;
  }
  const h = values as unknown as R1Hparams;
  const min1 = ['dim', 'contextLength', 'encoderFfn', 'decoderFfn', 'visionInput', 'visionHidden', 'memorySlots'] as const;
  for (const f of min1) if (h[f] < 1) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${r.source}: ${f} = ${h[f]} must be ≥ 1`);
  if (!(h.lnEps > 0)) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${r.source}: ${R1_ARCH}.layer_norm_epsilon must be > 0`);
  checkHparams(h, r.source);
  return { ...h, lnEps: Math.fround(h.lnEps), encoderHeadDim: h.dim / h.encoderHeads, decoderHeadDim: h.dim / h.decoderHeads };
}
