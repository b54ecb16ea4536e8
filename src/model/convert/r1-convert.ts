/**
 * R1 checkpoint → bitmar-r1 GGUF (docs/bitmar-r1.md §2, docs/convert.md).
 *
 * 1. Recognise the key set (spec §7): R1 (Sept 2025) converts; the July-2025 BitMar flavour and the
 *    later FIBER/robot variant are recognised and refused (BITMAR_ERR_MODEL_ARCH); anything else is
 *    refused with the lists of unexpected and missing keys (BITMAR_ERR_MODEL_CHECKPOINT_KEYS).
 * 2. Infer the hyperparameters from the shapes; head counts come from the training config (or
 *    config.json, or the default 4), as shapes cannot tell them.
 * 3. Every BitLinear: s_w = clamp(mean|W|, 1e-5, 1e3) with the mean accumulated in fp64 and rounded
 *    to fp32 once (spec §12.2), t = +1 if fp32(W/s_w) > fp32(2/3), −1 if < −fp32(2/3), else 0, stored
 *    as t2-row-v1 I8 codes + F32 scale + bias. The stored weight_scale/input_scale buffers are ignored
 *    (stale by design, spec §12.3). Everything else is F32. The unused decoder token embedding and
 *    the causal mask are dropped.
 */
import { BitmarError } from '../../errors.js';
import { gv, writeGguf, type GgufTensorInput } from '../gguf/writer.js';
import type { GgufValue } from '../gguf/types.js';
import { R1_ARCH, inferR1Hparams, listCapped, r1BitLinears, r1CountsFromKeys, r1Metadata, r1StateDict, type R1HeadCounts, type R1Hparams } from '../r1/config.js';
import type { Gpt2Vocab } from './gpt2-vocab.js';
import { tensorToFloat32, type StTensor } from './safetensors.js';

/** Keys of the R1 set that may be absent (they are dropped or ignored anyway). */
function optionalKey(k: string): boolean {
  return k === 'text_decoder.causal_mask' || k === 'text_decoder.token_embedding.weight' || k.endsWith('.weight_scale') || k.endsWith('.input_scale');
}

export type CheckpointFlavour = 'R1' | 'July-2025' | 'FIBER' | 'unknown';

/** Which BitMar code a key set comes from (spec §7 table). */
export function checkpointFlavour(keys: ReadonlySet<string>): CheckpointFlavour {
  const any = (pred: (k: string) => boolean): boolean => [...keys].some(pred);
  if (any((k) => k.startsWith('enhanced_episodic_memory.') || k.startsWith('direct_fusion_proj') || (k.startsWith('fusion.') && k.toLowerCase().includes('fiber')))) return 'FIBER';
  if (keys.has('memory.consolidation_net.0.weight') || keys.has('memory.attention_temperature') || keys.has('vision_to_episode.weight')) return 'R1';
  if (keys.has('memory.query_net.weight') && !keys.has('vision_to_episode.weight')) return 'July-2025';
  return 'unknown';
}

/** Check a state-dict key set against R1 (throws BITMAR_ERR_MODEL_ARCH or _CHECKPOINT_KEYS). */
export function checkR1Keys(keyList: readonly string[], source: string): void {
  const keys = new Set(keyList);
  const flavour = checkpointFlavour(keys);
  if (flavour === 'July-2025') {
    throw new BitmarError(
      'BITMAR_ERR_MODEL_ARCH',
      `${source}: this is a July-2025 BitMar checkpoint (BitMar repository HEAD: memory.query_net is a single BitLinear, no vision_to_episode, ` +
        `memory buffers memory/age/usage only). Its memory read and episode differ from R1 and are not specified, so bitmar-r1 cannot run it; ` +
        `only the Sept-2025 (paper, "R1") code converts (docs/convert.md)`,
    );
  }
  if (flavour === 'FIBER') {
    throw new BitmarError(
      'BITMAR_ERR_MODEL_ARCH',
      `${source}: this is the post-paper FIBER / robot-reasoning BitMar variant (fusion replaced by a FIBER module, enhanced_episodic_memory); ` +
        `it is not specified and not supported: only the Sept-2025 (paper, "R1") code converts (docs/convert.md)`,
    );
  }
  const counts = r1CountsFromKeys(keyList);
  const expected = r1StateDict({
    ...counts,
    encoderLayers: Math.max(1, counts.encoderLayers),
    decoderLayers: Math.max(1, counts.decoderLayers),
    visionLayers: Math.max(1, counts.visionLayers),
  });
  const unexpected = keyList.filter((k) => !expected.has(k));
  const missing = [...expected.keys()].filter((k) => !keys.has(k) && !optionalKey(k));
  if (unexpected.length === 0 && missing.length === 0) return;
  const prefix = ['module.', '_orig_mod.', 'model.', 'original_model.'].find((p) => keyList.length > 0 && keyList.every((k) => k.startsWith(p)));
  const hint = prefix
    ? ` Every key starts with "${prefix}": strip that prefix (e.g. re-save {k[len("${prefix}"):]: v}) and convert again.`
    : flavour === 'unknown'
      ? ' The key set matches no BitMar flavour of spec §7 (R1 has memory.consolidation_net.*, memory.attention_temperature and vision_to_episode.*).'
      : '';
  throw new BitmarError(
    'BITMAR_ERR_MODEL_CHECKPOINT_KEYS',
    `${source}: not an R1 BitMar state dict (${keyList.length} keys; expected the ${expected.size}-key R1 set for ` +
      `${counts.encoderLayers}+${counts.decoderLayers} layers).${hint}\n` +
      `  unexpected keys (${unexpected.length}):${unexpected.length ? '\n    ' + listCapped(unexpected, 40).join('\n    ') : ' none'}\n` +
      `  missing keys (${missing.length}):${missing.length ? '\n    ' + listCapped(missing, 40).join('\n    ') : ' none'}`,
  );
}

/** Find `key` in a (possibly nested) config object; first match, breadth first. */
export function findConfigValue(cfg: unknown, key: string): unknown {
  const queue: unknown[] = [cfg];
  for (let n = 0; n < queue.length && n < 10_000; n++) {
    const o = queue[n];
    if (o === null || typeof o !== 'object' || Array.isArray(o)) continue;
    const rec = o as Record<string, unknown>;
    if (key in rec) return rec[key];
    queue.push(...Object.values(rec));
  }
  return undefined;
}

export interface ConvertR1Options {
  readonly vocab: Gpt2Vocab;
  /** general.name (default "bitmar-r1"). */
  readonly name?: string;
  /** Head counts that override every config. */
  readonly heads?: Partial<R1HeadCounts>;
  /** The training config (training_metadata.json, or a .pt's `config`): heads, memory_alpha. */
  readonly trainingConfig?: unknown;
  /** The upload's config.json (text_encoder_heads and cross-checks). */
  readonly hfConfig?: unknown;
}

export interface ConvertR1Result {
  readonly gguf: Uint8Array;
  readonly hparams: R1Hparams;
  /** Things the user should know (config disagreements, defaults used). */
  readonly notes: readonly string[];
  readonly stats: { readonly bitLinears: number; readonly ternaryWeights: number; readonly zeroFraction: number; readonly tensors: number };
}

/** s_w and t2-row-v1 codes of a fp32 matrix (rows, cols) (spec §4, §12.2). */
export function ternarize(w: Float32Array, rows: number, cols: number): { codes: Uint8Array; scale: number; zeros: number } {
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += Math.abs(w[i]!);
  let s = Math.fround(sum / w.length);
  s = Math.min(Math.max(s, Math.fround(1e-5)), Math.fround(1e3));
  const thr = Math.fround(2 / 3);
  const rb = (cols + 3) >> 2;
  const codes = new Uint8Array(rows * rb).fill(0x55); // code 1 (zero) everywhere, incl. row padding
  let zeros = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const q = Math.fround(w[r * cols + j]! / s);
      const t = q > thr ? 1 : q < -thr ? -1 : 0;
      if (t === 0) {
        zeros++;
        continue;
      }
      const at = r * rb + (j >> 2);
      const sh = 2 * (j & 3);
      codes[at] = (codes[at]! & ~(3 << sh)) | ((t + 1) << sh);
    }
  }
  return { codes, scale: s, zeros };
}

/** Convert an R1 state dict (keys already readable) into GGUF bytes. */
export function convertR1(tensors: ReadonlyMap<string, StTensor>, opts: ConvertR1Options, source: string): ConvertR1Result {
  const keyList = [...tensors.keys()];
  checkR1Keys(keyList, source);
  const notes: string[] = [];
  const headOf = (which: keyof R1HeadCounts, key: string, fromHf: boolean): number => {
    const explicit = opts.heads?.[which];
    if (explicit !== undefined) return explicit;
    const t = findConfigValue(opts.trainingConfig, key);
    if (typeof t === 'number') return t;
    if (fromHf) {
      const h = findConfigValue(opts.hfConfig, key);
      if (typeof h === 'number') return h;
    }
    notes.push(`${which} heads: not in any config, using 4 (the BitMar-Eval default; heads cannot be inferred from shapes)`);
    return 4;
  };
  const heads: R1HeadCounts = {
    encoder: headOf('encoder', 'text_encoder_heads', true),
    decoder: headOf('decoder', 'text_decoder_heads', false),
    fusion: headOf('fusion', 'fusion_num_heads', false),
  };
  const alphaCfg = findConfigValue(opts.trainingConfig, 'memory_alpha');
  const alpha = typeof alphaCfg === 'number' ? alphaCfg : 0.2;
  const shapes = new Map(keyList.map((k) => [k, tensors.get(k)!.shape] as const));
  const h = inferR1Hparams(shapes, heads, alpha, source);
  // config.json, when given, should describe the same model; the shapes win
  const cross: [string, number][] = [
    ['vocab_size', h.vocabSize], ['text_encoder_dim', h.dim], ['text_encoder_layers', h.encoderLayers], ['text_decoder_layers', h.decoderLayers],
    ['memory_size', h.memorySlots], ['max_seq_len', h.contextLength], ['vision_encoder_dim', h.visionInput], ['vision_hidden_size', h.visionHidden],
  ];
  for (const cfg of [opts.hfConfig, opts.trainingConfig]) {
    for (const [k, v] of cross) {
      const c = findConfigValue(cfg, k);
      if (typeof c === 'number' && c !== v) notes.push(`config says ${k} = ${c} but the tensors give ${v}: using the tensors`);
    }
  }
  if (opts.vocab.tokens.length !== h.vocabSize) {
    throw new BitmarError('BITMAR_ERR_TOKENIZER', `${source}: the tokenizer has ${opts.vocab.tokens.length} tokens, the model ${h.vocabSize} output rows`);
  }
  const float = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (t === undefined) throw new BitmarError('BITMAR_ERR_MODEL_CHECKPOINT_KEYS', `${source}: key "${name}" is missing`);
    const data = tensorToFloat32(t, source);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${source}: tensor "${name}" holds ${data[i]} at index ${i}`);
    }
    return data;
  };
  const bitLinears = new Map(r1BitLinears(h).map((b) => [b.name, b]));
  const out: GgufTensorInput[] = [];
  let ternaryWeights = 0;
  let zeros = 0;
  for (const [key, e] of r1StateDict(h)) {
    if (e.role === 'dropped' || e.role === 'scale' || e.role === 'bias') continue;
    if (e.role === 'bitlinear') {
      const name = key.slice(0, -'.weight'.length);
      const spec = bitLinears.get(name)!;
      const t = ternarize(float(key), spec.outDim, spec.inDim);
      ternaryWeights += spec.outDim * spec.inDim;
      zeros += t.zeros;
      out.push({ name: `${name}.weight`, type: 'I8', dims: [(spec.inDim + 3) >> 2, spec.outDim], data: t.codes });
      out.push({ name: `${name}.scale`, type: 'F32', dims: [1], data: Float32Array.of(t.scale) });
      if (spec.bias) out.push({ name: `${name}.bias`, type: 'F32', dims: [spec.outDim], data: float(`${name}.bias`) });
      continue;
    }
    const data = float(key);
    const dims = e.shape.length === 0 ? [1] : [...e.shape].reverse();
    out.push({ name: key, type: 'F32', dims, data });
  }
  const meta: [string, GgufValue][] = [
    ['general.architecture', gv.str(R1_ARCH)],
    ['general.name', gv.str(opts.name ?? R1_ARCH)],
    ...r1Metadata(h),
    ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.tokens', gv.strings(opts.vocab.tokens)],
    ['tokenizer.ggml.merges', gv.strings(opts.vocab.merges)],
    ['tokenizer.ggml.bos_token_id', gv.u32(opts.vocab.eosId)],
    ['tokenizer.ggml.eos_token_id', gv.u32(opts.vocab.eosId)],
    ['tokenizer.ggml.padding_token_id', gv.u32(opts.vocab.eosId)],
    ['tokenizer.ggml.unknown_token_id', gv.u32(opts.vocab.eosId)],
  ];
  return {
    gguf: writeGguf(meta, out),
    hparams: h,
    notes,
    stats: { bitLinears: bitLinears.size, ternaryWeights, zeroFraction: ternaryWeights === 0 ? 0 : zeros / ternaryWeights, tensors: out.length },
  };
}
