/**
 * bitmar-stream weights (docs/bitmar-stream.md §5): every tensor is checked against the
 * hyperparameters (name, type, GGUF ne) and a missing, extra or mismatched tensor throws
 * BitmarError BITMAR_ERR_MODEL_MISMATCH naming it. Ternary matrices are repacked once by the
 * active kernels. Shapes in comments are row-major (rows, cols), i.e. GGUF ne reversed.
 */
import { BitmarError } from '../../errors.js';
import type { GgufReader } from '../gguf/reader.js';
import { formatDims, type GgmlTypeName } from '../gguf/types.js';
import type { Kernels, TernaryMatrix } from '../kernels.js';
import type { Conv3x3Weights } from './conv.js';
import { STEM_CHANNELS_KEY, STREAM_ARCH, type StreamConfig } from './config.js';

/** A BitLinear: ternary W (out, in) with s_w, optional bias (out). */
export interface BitLinearWeights {
  readonly w: TernaryMatrix;
  readonly bias: Float32Array | null;
}

export interface LayerNormWeights {
  readonly weight: Float32Array; // (d)
  readonly bias: Float32Array; // (d)
}

/** Q, K, V, O projections, each d→d with bias. */
export interface AttentionWeights {
  readonly q: BitLinearWeights;
  readonly k: BitLinearWeights;
  readonly v: BitLinearWeights;
  readonly o: BitLinearWeights;
}

export interface FfnWeights {
  readonly up: BitLinearWeights; // (f, d)
  readonly down: BitLinearWeights; // (d, f)
}

/** A vision or text encoder block: h += Attn(LN1 h); h += FFN(LN2 h). */
export interface EncoderBlockWeights {
  readonly ln1: LayerNormWeights;
  readonly ln2: LayerNormWeights;
  readonly attn: AttentionWeights;
  readonly ffn: FfnWeights;
}

/** A fusion block: F += Attn(LN_q F, V) (ln1 is LN_q); F += FFN(LN2 F). */
export interface FusionBlockWeights {
  readonly ln1: LayerNormWeights;
  readonly ln2: LayerNormWeights;
  readonly xattn: AttentionWeights;
  readonly ffn: FfnWeights;
}

/** A decoder block: cond, causal RoPE self-attention (ln1), cross-attention (ln2), FFN (ln3). */
export interface DecoderBlockWeights {
  readonly cond: BitLinearWeights;
  readonly ln1: LayerNormWeights;
  readonly ln2: LayerNormWeights;
  readonly ln3: LayerNormWeights;
  readonly attn: AttentionWeights;
  readonly xattn: AttentionWeights;
  readonly ffn: FfnWeights;
}

/** The convolutional stem (docs §3): conv3x3 stride 1 → GELU → conv3x3 stride 2 → GELU. */
export interface StemWeights {
  readonly conv1: Conv3x3Weights; // 3 → C1
  readonly conv2: Conv3x3Weights; // C1 → C2
}

export interface StreamWeights {
  // vision encoder
  /** v.stem1 / v.stem2, or null for the linear patch stem. */
  readonly stem: StemWeights | null;
  readonly patchEmbedWeight: Float32Array; // (d, patchDim) fp32 patch embedding
  readonly patchEmbedBias: Float32Array; // (d)
  readonly cls: Float32Array; // (d)
  readonly visionPos: Float32Array; // (N+1, d)
  readonly vision: readonly EncoderBlockWeights[];
  readonly visionLnF: LayerNormWeights;
  readonly imgProj: BitLinearWeights; // d→d
  // text encoder
  readonly textTokEmb: Float32Array; // (V, d)
  readonly textPos: Float32Array; // (Tmax, d)
  readonly text: readonly EncoderBlockWeights[];
  readonly textLnF: LayerNormWeights;
  readonly txtProj: BitLinearWeights; // d→d
  // fusion
  readonly fusion: readonly FusionBlockWeights[];
  readonly fusionLnF: LayerNormWeights;
  // episodic memory read
  readonly memProj: BitLinearWeights; // d→d
  readonly memScale: number;
  // decoder
  readonly decTokEmb: Float32Array; // (V, d)
  readonly decoder: readonly DecoderBlockWeights[];
  readonly decLnF: LayerNormWeights;
  readonly lmHead: BitLinearWeights; // d→V, no bias
}

function mismatch(source: string, message: string): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_MISMATCH', `${source}: ${message}`);
}

/** Reads tensors by name, checks type and ne, and remembers which were used. */
class TensorLoader {
  private readonly used = new Set<string>();
  constructor(
    private readonly r: GgufReader,
    private readonly kernels: Kernels,
  ) {}

  private info(name: string, types: readonly GgmlTypeName[], ne: readonly number[]) {
    const t = this.r.tensors.get(name);
    const expected = `${types.join(' or ')} ${formatDims(ne)}`;
    if (t === undefined) throw mismatch(this.r.source, `tensor "${name}" is missing (expected ${expected})`);
    if (!types.includes(t.type) || t.dims.length !== ne.length || t.dims.some((v, i) => v !== ne[i])) {
      throw mismatch(this.r.source, `tensor "${name}": expected ${expected}, found ${t.type} ${formatDims(t.dims)}`);
    }
    this.used.add(name);
    return t;
  }

  /** An F32 or F16 tensor with GGUF ne `ne`, as fp32. */
  float(name: string, ne: readonly number[]): Float32Array {
    this.info(name, ['F32', 'F16'], ne);
    return this.r.tensorF32(name);
  }

  layerNorm(prefix: string, d: number): LayerNormWeights {
    return { weight: this.float(`${prefix}.weight`, [d]), bias: this.float(`${prefix}.bias`, [d]) };
  }

  /** A ternary matrix (out, in): NAME.weight I8 ne [ceil(in/4), out], NAME.scale F32 [1], NAME.bias. */
  bitLinear(name: string, inDim: number, outDim: number, hasBias = true): BitLinearWeights {
    const rowBytes = Math.ceil(inDim / 4);
    this.info(`${name}.weight`, ['I8'], [rowBytes, outDim]);
    const codes = this.r.tensorBytes(`${name}.weight`);
    this.info(`${name}.scale`, ['F32'], [1]);
    const scale = this.r.tensorF32(`${name}.scale`)[0]!;
    if (!(Number.isFinite(scale) && scale > 0)) {
      throw mismatch(this.r.source, `tensor "${name}.scale" = ${scale}: s_w must be a positive finite number`);
    }
    checkTrailingCodes(this.r.source, name, codes, outDim, inDim);
    let w: TernaryMatrix;
    try {
      w = this.kernels.packTernary(codes, outDim, inDim, scale);
    } catch (e) {
      throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${this.r.source}: tensor "${name}.weight": ${(e as Error).message}`, { cause: e });
    }
    let bias: Float32Array | null = null;
    if (hasBias) bias = this.float(`${name}.bias`, [outDim]);
    else if (this.r.tensors.has(`${name}.bias`)) throw mismatch(this.r.source, `tensor "${name}.bias" must not exist (${name} has no bias)`);
    return { w, bias };
  }

  attention(prefix: string, d: number): AttentionWeights {
    return {
      q: this.bitLinear(`${prefix}_q`, d, d),
      k: this.bitLinear(`${prefix}_k`, d, d),
      v: this.bitLinear(`${prefix}_v`, d, d),
      o: this.bitLinear(`${prefix}_o`, d, d),
    };
  }

  ffn(prefix: string, d: number, f: number): FfnWeights {
    return { up: this.bitLinear(`${prefix}.ffn_up`, d, f), down: this.bitLinear(`${prefix}.ffn_down`, f, d) };
  }

  /** Every tensor in the file must have been read. */
  checkNoExtra(): void {
    const extra = [...this.r.tensors.keys()].filter((n) => !this.used.has(n));
    if (extra.length > 0) {
      throw mismatch(this.r.source, `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((n) => `"${n}"`).join(', ')} (not part of bitmar-stream with these hyperparameters)`);
    }
  }
}

/** t2-row-v1: the unused codes of each row's last byte must be 1 (zero weight), docs §5. */
function checkTrailingCodes(source: string, name: string, codes: Uint8Array, rows: number, cols: number): void {
  const used = cols & 3;
  if (used === 0) return;
  const rb = Math.ceil(cols / 4);
  for (let r = 0; r < rows; r++) {
    const b = codes[r * rb + rb - 1]!;
    for (let j = used; j < 4; j++) {
      if (((b >> (2 * j)) & 3) !== 1) {
        throw new BitmarError('BITMAR_ERR_MODEL_FORMAT', `${source}: tensor "${name}.weight" row ${r}: padding code ${j} of the last byte is ${(b >> (2 * j)) & 3}, must be 1 (t2-row-v1)`);
      }
    }
  }
}

/** v.stem1 / v.stem2 when the config has a convolutional stem; stem tensors without the key are an error. */
function loadStem(L: TensorLoader, r: GgufReader, c: StreamConfig): StemWeights | null {
  const key = `${STREAM_ARCH}.${STEM_CHANNELS_KEY}`;
  if (c.stemChannels === null) {
    const stray = ['v.stem1.weight', 'v.stem1.bias', 'v.stem2.weight', 'v.stem2.bias'].filter((n) => r.tensors.has(n));
    if (stray.length > 0) {
      throw mismatch(r.source, `tensor ${stray.map((n) => `"${n}"`).join(', ')} present but metadata ${key} is missing: add ${key} = [C1, C2] (u32) for the convolutional stem, or drop the v.stem* tensors`);
    }
    return null;
  }
  const [c1, c2] = c.stemChannels;
  const why = `${key} = [${c1}, ${c2}] asks for the convolutional stem (docs/bitmar-stream.md §3, §5)`;
  const float = (name: string, ne: readonly number[]): Float32Array => {
    try {
      return L.float(name, ne);
    } catch (e) {
      if (e instanceof BitmarError) throw new BitmarError(e.code, `${e.message}; ${why}`, { cause: e });
      throw e;
    }
  };
  const conv = (name: string, cin: number, cout: number): Conv3x3Weights => ({
    weight: float(`${name}.weight`, [9 * cin, cout]),
    bias: float(`${name}.bias`, [cout]),
    inChannels: cin,
    outChannels: cout,
  });
  return { conv1: conv('v.stem1', 3, c1), conv2: conv('v.stem2', c1, c2) };
}

/** Load and check every tensor of a bitmar-stream file. */
export function loadStreamWeights(r: GgufReader, c: StreamConfig, kernels: Kernels): StreamWeights {
  const L = new TensorLoader(r, kernels);
  const { dim: d, ffnDim: f, vocabSize: V } = c;
  const encoderBlock = (p: string): EncoderBlockWeights => ({
    ln1: L.layerNorm(`${p}.ln1`, d),
    ln2: L.layerNorm(`${p}.ln2`, d),
    attn: L.attention(`${p}.attn`, d),
    ffn: L.ffn(p, d, f),
  });
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const memScale = L.float('mem.scale', [1])[0]!;
  if (!Number.isFinite(memScale)) throw mismatch(r.source, `tensor "mem.scale" = ${memScale} must be finite`);
  const w: StreamWeights = {
    stem: loadStem(L, r, c),
    patchEmbedWeight: L.float('v.patch_embed.weight', [c.patchDim, d]),
    patchEmbedBias: L.float('v.patch_embed.bias', [d]),
    cls: L.float('v.cls', [d]),
    visionPos: L.float('v.pos_emb', [d, c.patches + 1]),
    vision: range(c.visionLayers).map((i) => encoderBlock(`v.blk.${i}`)),
    visionLnF: L.layerNorm('v.ln_f', d),
    imgProj: L.bitLinear('v.img_proj', d, d),
    textTokEmb: L.float('t.tok_emb', [d, V]),
    textPos: L.float('t.pos_emb', [d, c.textContext]),
    text: range(c.textLayers).map((i) => encoderBlock(`t.blk.${i}`)),
    textLnF: L.layerNorm('t.ln_f', d),
    txtProj: L.bitLinear('t.txt_proj', d, d),
    fusion: range(c.fusionLayers).map((i) => ({
      ln1: L.layerNorm(`f.blk.${i}.ln1`, d),
      ln2: L.layerNorm(`f.blk.${i}.ln2`, d),
      xattn: L.attention(`f.blk.${i}.xattn`, d),
      ffn: L.ffn(`f.blk.${i}`, d, f),
    })),
    fusionLnF: L.layerNorm('f.ln_f', d),
    memProj: L.bitLinear('mem.proj', d, d),
    memScale,
    decTokEmb: L.float('d.tok_emb', [d, V]),
    decoder: range(c.decoderLayers).map((i) => ({
      cond: L.bitLinear(`d.blk.${i}.cond`, d, d),
      ln1: L.layerNorm(`d.blk.${i}.ln1`, d),
      ln2: L.layerNorm(`d.blk.${i}.ln2`, d),
      ln3: L.layerNorm(`d.blk.${i}.ln3`, d),
      attn: L.attention(`d.blk.${i}.attn`, d),
      xattn: L.attention(`d.blk.${i}.xattn`, d),
      ffn: L.ffn(`d.blk.${i}`, d, f),
    })),
    decLnF: L.layerNorm('d.ln_f', d),
    lmHead: L.bitLinear('d.lm_head', d, V, false),
  };
  L.checkNoExtra();
  return w;
}
