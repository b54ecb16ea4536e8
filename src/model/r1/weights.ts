/**
 * bitmar-r1 weights (docs/bitmar-r1.md §2): every tensor is checked against the hyperparameters
 * (name, type, GGUF ne); a missing, extra or mismatched tensor throws BitmarError
 * BITMAR_ERR_MODEL_MISMATCH naming it. Tensor names are the authors' state-dict keys; each BitLinear
 * NAME is stored as NAME.weight (I8 t2-row-v1 codes, ne [ceil(in/4), out]), NAME.scale (F32 [1],
 * s_w computed once at conversion) and NAME.bias (F32 [out]; none for the lm_head).
 */
import { BitmarError } from '../../errors.js';
import type { GgufReader } from '../gguf/reader.js';
import { formatDims, type GgmlTypeName } from '../gguf/types.js';
import type { Kernels, TernaryMatrix } from '../kernels.js';
import type { R1Config } from './config.js';

/** A BitLinear: ternary W (out, in) with s_w, optional bias (out). */
export interface R1BitLinear {
  readonly name: string;
  readonly w: TernaryMatrix;
  readonly bias: Float32Array | null;
}

export interface R1LayerNorm {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

export interface R1Attention {
  readonly q: R1BitLinear;
  readonly k: R1BitLinear;
  readonly v: R1BitLinear;
  readonly o: R1BitLinear;
}

/** The double-residual block (spec §3.2): h += MHA(LN1 h); h += LN_mlp(FC2(GELU(FC1(u))) + u), u = LN2 h. */
export interface R1Block {
  readonly name: string;
  readonly norm1: R1LayerNorm;
  readonly attn: R1Attention;
  readonly norm2: R1LayerNorm;
  readonly fc1: R1BitLinear;
  readonly fc2: R1BitLinear;
  readonly mlpNorm: R1LayerNorm;
}

/** Memory query/key/value net: BL0 → LN1 → GELU → BL3. */
export interface R1MemoryNet {
  readonly l0: R1BitLinear;
  readonly ln: R1LayerNorm;
  readonly l3: R1BitLinear;
}

/** The episodic memory buffers (spec §3.7), as stored in the file. */
export interface R1MemoryBuffers {
  /** (K, d) */
  readonly memory: Float32Array;
  readonly age: Float32Array;
  readonly usage: Float32Array;
  readonly quality: Float32Array;
  readonly importance: Float32Array;
  /** (d) */
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly updateCount: number;
  /** τ (the learned attention_temperature). */
  readonly temperature: number;
}

export interface R1Weights {
  readonly encTokEmb: Float32Array; // (V, d)
  readonly encPos: Float32Array; // (ctx, d)
  readonly encoder: readonly R1Block[];
  readonly encNorm: R1LayerNorm;
  readonly decPos: Float32Array; // (ctx, d)
  readonly decoder: readonly R1Block[];
  readonly decNorm: R1LayerNorm;
  readonly lmHead: R1BitLinear; // d → V, no bias
  readonly vision: readonly { readonly lin: R1BitLinear; readonly ln: R1LayerNorm }[];
  readonly visionOut: R1BitLinear;
  readonly fusionTextProj: R1BitLinear;
  readonly fusionVisionProj: R1BitLinear;
  readonly fusion: readonly { readonly attn: R1Attention; readonly ln: R1LayerNorm }[];
  readonly fusionOut: R1BitLinear;
  readonly memQuery: R1MemoryNet;
  readonly memKey: R1MemoryNet;
  readonly memValue: R1MemoryNet;
  /** consolidation_net 0, 1, 4, 5 (write path only; loaded and checked, not run by reads). */
  readonly memConsolidation: { readonly l0: R1BitLinear; readonly ln1: R1LayerNorm; readonly l4: R1BitLinear; readonly ln5: R1LayerNorm };
  readonly memory: R1MemoryBuffers;
  readonly textToEpisode: R1BitLinear;
  readonly visionToEpisode: R1BitLinear;
  readonly memoryToDecoder: R1BitLinear;
  readonly decoderInputProj: R1BitLinear;
  /** Every BitLinear by its state-dict name (parity tests, tools). */
  readonly bitLinears: ReadonlyMap<string, R1BitLinear>;
}

function mismatch(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${source}: ${message}`);
}

/** t2-row-v1: the unused codes of each row's last byte must be 1 (zero weight). */
function checkTrailingCodes(source: string, name: string, codes: Uint8Array, rows: number, cols: number): void {
  const used = cols & 3;
  if (used === 0) return;
  const rb = (cols + 3) >> 2;
  for (let r = 0; r < rows; r++) {
    const b = codes[r * rb + rb - 1]!;
    for (let j = used; j < 4; j++) {
      if (((b >> (2 * j)) & 3) !== 1) {
        throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${source}: tensor "${name}.weight" row ${r}: padding code ${j} of the last byte is ${(b >> (2 * j)) & 3}, must be 1 (t2-row-v1)`);
      }
    }
  }
}

class TensorLoader {
  readonly used = new Set<string>();
  readonly bitLinears = new Map<string, R1BitLinear>();
  constructor(
    private readonly r: GgufReader,
    private readonly kernels: Kernels,
  ) {}

  private info(name: string, types: readonly GgmlTypeName[], ne: readonly number[]): void {
    const t = this.r.tensors.get(name);
    const expected = `${types.join(' or ')} ${formatDims(ne)}`;
    if (t === undefined) throw mismatch(this.r.source, `tensor "${name}" is missing (expected ${expected})`);
    if (!types.includes(t.type) || t.dims.length !== ne.length || t.dims.some((v, i) => v !== ne[i])) {
      throw mismatch(this.r.source, `tensor "${name}": expected ${expected}, found ${t.type} ${formatDims(t.dims)}`);
    }
    this.used.add(name);
  }

  /** An F32/F16 tensor of PyTorch shape `shape` (GGUF ne = shape reversed; [] is [1]) as fp32. */
  float(name: string, ...shape: number[]): Float32Array {
    const ne = shape.length === 0 ? [1] : [...shape].reverse();
    this.info(name, ['F32', 'F16'], ne);
    return this.r.tensorF32(name);
  }

  /** A finite scalar stored as F32 [1]. */
  scalar(name: string): number {
    const v = this.float(name)[0]!;
    if (!Number.isFinite(v)) throw mismatch(this.r.source, `tensor "${name}" = ${v} must be finite`);
    return v;
  }

  layerNorm(prefix: string, d: number): R1LayerNorm {
    return { weight: this.float(`${prefix}.weight`, d), bias: this.float(`${prefix}.bias`, d) };
  }

  bitLinear(name: string, inDim: number, outDim: number, hasBias = true): R1BitLinear {
    this.info(`${name}.weight`, ['I8'], [(inDim + 3) >> 2, outDim]);
    const codes = this.r.tensorBytes(`${name}.weight`);
    this.info(`${name}.scale`, ['F32'], [1]);
    const scale = this.r.tensorF32(`${name}.scale`)[0]!;
    if (!(Number.isFinite(scale) && scale > 0)) throw mismatch(this.r.source, `tensor "${name}.scale" = ${scale}: s_w must be a positive finite number`);
    checkTrailingCodes(this.r.source, name, codes, outDim, inDim);
    let w: TernaryMatrix;
    try {
      w = this.kernels.packTernary(codes, outDim, inDim, scale);
    } catch (e) {
      throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${this.r.source}: tensor "${name}.weight": ${(e as Error).message}`, { cause: e });
    }
    let bias: Float32Array | null = null;
    if (hasBias) bias = this.float(`${name}.bias`, outDim);
    else if (this.r.tensors.has(`${name}.bias`)) throw mismatch(this.r.source, `tensor "${name}.bias" must not exist (${name} has no bias)`);
    const out = { name, w, bias };
    this.bitLinears.set(name, out);
    return out;
  }

  attention(prefix: string, d: number): R1Attention {
    return {
      q: this.bitLinear(`${prefix}.q_proj`, d, d),
      k: this.bitLinear(`${prefix}.k_proj`, d, d),
      v: this.bitLinear(`${prefix}.v_proj`, d, d),
      o: this.bitLinear(`${prefix}.out_proj`, d, d),
    };
  }

  block(prefix: string, d: number, ffn: number): R1Block {
    return {
      name: prefix,
      norm1: this.layerNorm(`${prefix}.norm1`, d),
      attn: this.attention(`${prefix}.attn`, d),
      norm2: this.layerNorm(`${prefix}.norm2`, d),
      fc1: this.bitLinear(`${prefix}.mlp.fc1`, d, ffn),
      fc2: this.bitLinear(`${prefix}.mlp.fc2`, ffn, d),
      mlpNorm: this.layerNorm(`${prefix}.mlp.norm`, d),
    };
  }

  memNet(prefix: string, d: number): R1MemoryNet {
    return { l0: this.bitLinear(`${prefix}.0`, d, d), ln: this.layerNorm(`${prefix}.1`, d), l3: this.bitLinear(`${prefix}.3`, d, d) };
  }

  checkNoExtra(): void {
    const extra = [...this.r.tensors.keys()].filter((n) => !this.used.has(n));
    if (extra.length > 0) {
      throw mismatch(this.r.source, `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((n) => `"${n}"`).join(', ')} (not part of bitmar-r1 with these hyperparameters)`);
    }
  }
}

/** Load and check every tensor of a bitmar-r1 file; ternary matrices are repacked by `kernels`. */
export function loadR1Weights(r: GgufReader, c: R1Config, kernels: Kernels): R1Weights {
  const L = new TensorLoader(r, kernels);
  const { dim: d, vocabSize: V, contextLength: ctx, memorySlots: K } = c;
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const encTokEmb = L.float('text_encoder.token_embedding.weight', V, d);
  const encPos = L.float('text_encoder.position_embedding.weight', ctx, d);
  const encoder = range(c.encoderLayers).map((i) => L.block(`text_encoder.layers.${i}`, d, c.encoderFfn));
  const encNorm = L.layerNorm('text_encoder.norm', d);
  const decPos = L.float('text_decoder.position_embedding.weight', ctx, d);
  const decoder = range(c.decoderLayers).map((i) => L.block(`text_decoder.layers.${i}`, d, c.decoderFfn));
  const decNorm = L.layerNorm('text_decoder.norm', d);
  const lmHead = L.bitLinear('text_decoder.lm_head', d, V, false);
  const vision = range(c.visionLayers).map((i) => ({
    lin: L.bitLinear(`vision_encoder.layers.${i}`, i === 0 ? c.visionInput : c.visionHidden, c.visionHidden),
    ln: L.layerNorm(`vision_encoder.layer_norms.${i}`, c.visionHidden),
  }));
  const visionOut = L.bitLinear('vision_encoder.output_proj', c.visionHidden, d);
  const fusionTextProj = L.bitLinear('fusion.text_proj', d, d);
  const fusionVisionProj = L.bitLinear('fusion.vision_proj', d, d);
  const fusion = range(c.fusionLayers).map((j) => ({ attn: L.attention(`fusion.cross_attention_layers.${j}`, d), ln: L.layerNorm(`fusion.layer_norms.${j}`, d) }));
  const fusionOut = L.bitLinear('fusion.output_proj', d, d);
  const temperature = L.scalar('memory.attention_temperature');
  const updateCount = L.scalar('memory.update_count');
  const memory: R1MemoryBuffers = {
    memory: L.float('memory.memory', K, d),
    age: L.float('memory.memory_age', K),
    usage: L.float('memory.memory_usage', K),
    quality: L.float('memory.memory_quality', K),
    importance: L.float('memory.memory_importance', K),
    mean: L.float('memory.memory_mean', d),
    std: L.float('memory.memory_std', d),
    updateCount,
    temperature,
  };
  for (const [name, a] of Object.entries(memory)) {
    if (a instanceof Float32Array && a.some((v) => !Number.isFinite(v))) throw mismatch(r.source, `memory buffer ${name} holds a non-finite value`);
  }
  const w: R1Weights = {
    encTokEmb,
    encPos,
    encoder,
    encNorm,
    decPos,
    decoder,
    decNorm,
    lmHead,
    vision,
    visionOut,
    fusionTextProj,
    fusionVisionProj,
    fusion,
    fusionOut,
    memQuery: L.memNet('memory.query_net', d),
    memKey: L.memNet('memory.key_net', d),
    memValue: L.memNet('memory.value_net', d),
    memConsolidation: {
      l0: L.bitLinear('memory.consolidation_net.0', d, 2 * d),
      ln1: L.layerNorm('memory.consolidation_net.1', 2 * d),
      l4: L.bitLinear('memory.consolidation_net.4', 2 * d, d),
      ln5: L.layerNorm('memory.consolidation_net.5', d),
    },
    memory,
    textToEpisode: L.bitLinear('text_to_episode', d, d),
    visionToEpisode: L.bitLinear('vision_to_episode', d, d),
    memoryToDecoder: L.bitLinear('memory_to_decoder', d, d),
    decoderInputProj: L.bitLinear('decoder_input_proj', d, d),
    bitLinears: L.bitLinears,
  };
  L.checkNoExtra();
  return w;
}
