/**
 * Writes a seeded random bitmar-stream GGUF (docs/bitmar-stream.md §5): the interim model until the
 * trained one lands, and models of any size for tests and benchmarks.
 *
 *   node --import tsx tools/make-random-model.ts                       # → models/bitmar-stream-random.gguf
 *   node --import tsx tools/make-random-model.ts --preset bitmar-14m --out /tmp/bitmar-14m-random.gguf
 *   node --import tsx tools/make-random-model.ts --stem 16,32 --out /tmp/conv.gguf   # convolutional stem
 *   options: --seed N --dim D --heads H --ffn F --layers L (vision, text and decoder blocks)
 *            --image-size S --patch P --stem C1,C2 (convolutional stem, docs §3; P must be even)
 *            --vocab shapes|gpt2-size|N --f16-embeddings --out PATH
 *   --vocab gpt2-size stores the real GPT-2 BPE tokenizer (50,257 tokens, from js-tiktoken r50k_base);
 *   --vocab N pads the Shapes word list with `w<i>` words to N.
 *
 * The same seed and options always give the same bytes (test/model/engine/random-model.test.ts
 * checks the committed file). Weights are N(0, 1/in) quantised exactly as the exporter does
 * (s_w = max(mean|W|, 1e-5), t = clamp(round_half_even(W/s_w), −1, 1)).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SHAPES_HPARAMS, STEM_CHANNELS_KEY, STREAM_ARCH, FLOAT_HPARAMS, type StreamHparamKey } from '../src/model/engine/config.js';
import { Mulberry32 } from '../src/model/engine/sampler.js';
import { gv, writeGguf, type GgufTensorInput } from '../src/model/gguf/writer.js';
import type { GgufValue } from '../src/model/gguf/types.js';
import { roundHalfEven } from '../src/model/kernels-ts.js';
import { WORLD_VOCABULARY } from '../src/sources/synthetic/shapes-world.js';
import { gpt2VocabFromTiktoken } from '../src/model/tokenizer/gpt2-bpe.js';
import r50k from 'js-tiktoken/ranks/r50k_base';

export const SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<unk>'] as const;
export const DEFAULT_MODEL_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'bitmar-stream-random.gguf');
export const GPT2_VOCAB_SIZE = 50257;

export interface RandomModelOptions {
  readonly seed?: number;
  readonly name?: string;
  /** Overrides of the Shapes hyperparameters (docs §1 keys). */
  readonly hparams?: Partial<Record<StreamHparamKey, number>>;
  /**
   * Words after the four specials (default WORLD_VOCABULARY), a total vocabulary size padded with
   * `w<i>` words, or 'gpt2' for GPT-2's BPE vocabulary (50,257 tokens).
   */
  readonly vocab?: readonly string[] | number | 'gpt2';
  /** Store the two token-embedding tables as F16 (the rest stays F32). */
  readonly f16Embeddings?: boolean;
  /** `vision.stem_channels` [C1, C2]: a convolutional stem (docs §3); absent = linear patch stem. */
  readonly stem?: readonly [number, number];
}

/** Vocabulary: specials, then the words, then `w<i>` fillers up to `size` when a size is given. */
export function makeVocabulary(vocab: readonly string[] | number = WORLD_VOCABULARY): string[] {
  if (typeof vocab !== 'number') return [...SPECIAL_TOKENS, ...vocab];
  const out: string[] = [...SPECIAL_TOKENS, ...WORLD_VOCABULARY];
  for (let i = out.length; i < vocab; i++) out.push(`w${i}`);
  return out.slice(0, vocab);
}

/** Gaussian source (Box–Muller over mulberry32). */
class Gaussian {
  private readonly u: Mulberry32;
  private spare: number | null = null;
  constructor(seed: number) {
    this.u = new Mulberry32(seed);
  }
  next(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const a = 1 - this.u.next();
    const b = this.u.next();
    const r = Math.sqrt(-2 * Math.log(a));
    this.spare = r * Math.sin(2 * Math.PI * b);
    return r * Math.cos(2 * Math.PI * b);
  }
  fill(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.next();
    return out;
  }
}

/**
 * Ternary export of an fp32 matrix W (rows, cols), docs §2 and §5: returns the t2-row-v1 codes
 * (rows × ceil(cols/4) bytes, trailing codes 1) and s_w.
 */
export function ternarize(W: Float32Array, rows: number, cols: number): { codes: Uint8Array; scale: number } {
  let sum = 0;
  for (let i = 0; i < rows * cols; i++) sum += Math.abs(W[i]!);
  const scale = Math.fround(Math.max(Math.fround(sum / (rows * cols)), 1e-5));
  const rb = Math.ceil(cols / 4);
  const codes = new Uint8Array(rows * rb).fill(0x55); // every code 1 (zero weight)
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const t = Math.max(-1, Math.min(1, roundHalfEven(Math.fround(W[r * cols + j]! / scale))));
      const at = r * rb + (j >> 2);
      const sh = 2 * (j & 3);
      codes[at] = (codes[at]! & ~(3 << sh)) | ((t + 1) << sh);
    }
  }
  return { codes, scale };
}

/** Build the GGUF bytes of a random bitmar-stream model. */
export function makeRandomStreamModel(opts: RandomModelOptions = {}): Uint8Array {
  const seed = opts.seed ?? 1;
  const hp = { ...SHAPES_HPARAMS, ...opts.hparams };
  const gpt2 = opts.vocab === 'gpt2' ? gpt2VocabFromTiktoken(r50k.bpe_ranks, r50k.special_tokens) : null;
  const tokens = gpt2 !== null ? gpt2.tokens : makeVocabulary(opts.vocab === 'gpt2' ? undefined : opts.vocab);
  const V = tokens.length;
  const d = hp.embedding_length;
  const f = hp.feed_forward_length;
  const P = hp.patch_size;
  const N = (hp.image_size / P) ** 2;
  const stem = opts.stem ?? null;
  if (stem !== null && (P % 2 !== 0 || stem.length !== 2 || !stem.every((c) => Number.isInteger(c) && c >= 1))) {
    throw new Error(`stem [${stem.join(', ')}] needs two positive channel counts and an even patch size (patch_size ${P})`);
  }
  const patchDim = stem === null ? 3 * P * P : stem[1] * (P / 2) ** 2;
  const g = new Gaussian(seed);
  const tensors: GgufTensorInput[] = [];
  const floatT = (name: string, ne: number[], data: Float32Array, f16 = false): void => {
    tensors.push({ name, type: f16 ? 'F16' : 'F32', dims: ne, data });
  };
  const ln = (name: string): void => {
    floatT(`${name}.weight`, [d], g.fill(d, 0.1, 1));
    floatT(`${name}.bias`, [d], g.fill(d, 0.05));
  };
  const bitLinear = (name: string, inDim: number, outDim: number, bias = true): void => {
    const W = g.fill(outDim * inDim, 1 / Math.sqrt(inDim));
    const { codes, scale } = ternarize(W, outDim, inDim);
    tensors.push({ name: `${name}.weight`, type: 'I8', dims: [Math.ceil(inDim / 4), outDim], data: codes });
    floatT(`${name}.scale`, [1], Float32Array.of(scale));
    if (bias) floatT(`${name}.bias`, [outDim], g.fill(outDim, 0.02));
  };
  const attn = (p: string): void => {
    for (const x of ['q', 'k', 'v', 'o']) bitLinear(`${p}_${x}`, d, d);
  };
  const ffn = (p: string): void => {
    bitLinear(`${p}.ffn_up`, d, f);
    bitLinear(`${p}.ffn_down`, f, d);
  };
  const encoderBlocks = (p: string, n: number): void => {
    for (let i = 0; i < n; i++) {
      ln(`${p}.blk.${i}.ln1`);
      ln(`${p}.blk.${i}.ln2`);
      attn(`${p}.blk.${i}.attn`);
      ffn(`${p}.blk.${i}`);
    }
  };
  const emb = opts.f16Embeddings === true;

  if (stem !== null) {
    // conv3x3 weights (Cout, 9·Cin), rows in (ky, kx, c) order (docs §5)
    const [c1, c2] = stem;
    floatT('v.stem1.weight', [27, c1], g.fill(c1 * 27, 1 / Math.sqrt(27)));
    floatT('v.stem1.bias', [c1], g.fill(c1, 0.02));
    floatT('v.stem2.weight', [9 * c1, c2], g.fill(c2 * 9 * c1, 1 / Math.sqrt(9 * c1)));
    floatT('v.stem2.bias', [c2], g.fill(c2, 0.02));
  }
  floatT('v.patch_embed.weight', [patchDim, d], g.fill(d * patchDim, 1 / Math.sqrt(patchDim)));
  floatT('v.patch_embed.bias', [d], g.fill(d, 0.02));
  floatT('v.cls', [d], g.fill(d, 0.5));
  floatT('v.pos_emb', [d, N + 1], g.fill(d * (N + 1), 0.5));
  encoderBlocks('v', hp['vision.block_count']);
  ln('v.ln_f');
  bitLinear('v.img_proj', d, d);
  floatT('t.tok_emb', [d, V], g.fill(d * V, 1), emb);
  floatT('t.pos_emb', [d, hp['text.context_length']], g.fill(d * hp['text.context_length'], 0.5));
  encoderBlocks('t', hp['text.block_count']);
  ln('t.ln_f');
  bitLinear('t.txt_proj', d, d);
  for (let i = 0; i < hp['fusion.block_count']; i++) {
    ln(`f.blk.${i}.ln1`);
    ln(`f.blk.${i}.ln2`);
    attn(`f.blk.${i}.xattn`);
    ffn(`f.blk.${i}`);
  }
  ln('f.ln_f');
  bitLinear('mem.proj', d, d);
  floatT('mem.scale', [1], Float32Array.of(10));
  floatT('d.tok_emb', [d, V], g.fill(d * V, 1), emb);
  for (let i = 0; i < hp['decoder.block_count']; i++) {
    bitLinear(`d.blk.${i}.cond`, d, d);
    ln(`d.blk.${i}.ln1`);
    ln(`d.blk.${i}.ln2`);
    ln(`d.blk.${i}.ln3`);
    attn(`d.blk.${i}.attn`);
    attn(`d.blk.${i}.xattn`);
    ffn(`d.blk.${i}`);
  }
  ln('d.ln_f');
  bitLinear('d.lm_head', d, V, false);

  const metadata: [string, GgufValue][] = [
    ['general.architecture', gv.str(STREAM_ARCH)],
    ['general.name', gv.str(opts.name ?? 'bitmar-stream-random')],
    ['general.description', gv.str(`GENERATED by tools/make-random-model.ts (seed ${seed}): random weights, not trained`)],
    ['general.alignment', gv.u32(32)],
  ];
  for (const [k, v] of Object.entries(hp) as [StreamHparamKey, number][]) {
    metadata.push([`${STREAM_ARCH}.${k}`, FLOAT_HPARAMS.has(k) ? gv.f32(v) : gv.u32(v)]);
  }
  if (stem !== null) metadata.push([`${STREAM_ARCH}.${STEM_CHANNELS_KEY}`, gv.array({ itemType: 'u32', items: [...stem] })]);
  if (gpt2 !== null) {
    const eot = r50k.special_tokens['<|endoftext|>']!;
    metadata.push(
      ['tokenizer.ggml.model', gv.str('gpt2')],
      ['tokenizer.ggml.tokens', gv.strings(tokens)],
      ['tokenizer.ggml.merges', gv.strings(gpt2.merges)],
      ['tokenizer.ggml.bos_token_id', gv.u32(eot)],
      ['tokenizer.ggml.eos_token_id', gv.u32(eot)],
      ['tokenizer.ggml.padding_token_id', gv.u32(eot)],
      ['tokenizer.ggml.unknown_token_id', gv.u32(eot)],
    );
  } else {
    metadata.push(
      ['tokenizer.ggml.model', gv.str('word')],
      ['tokenizer.ggml.tokens', gv.strings(tokens)],
      ['tokenizer.ggml.bos_token_id', gv.u32(1)],
      ['tokenizer.ggml.eos_token_id', gv.u32(2)],
      ['tokenizer.ggml.padding_token_id', gv.u32(0)],
      ['tokenizer.ggml.unknown_token_id', gv.u32(3)],
    );
  }
  return writeGguf(metadata, tensors);
}

/** The BitMar-14M-sized stream model used by the benchmarks (d=128, 4+4 blocks, f=512, GPT-2 vocabulary). */
export const BITMAR_14M_OPTIONS: RandomModelOptions = {
  name: 'bitmar-stream-14m-random',
  hparams: { embedding_length: 128, head_count: 4, feed_forward_length: 512, 'vision.block_count': 4, 'text.block_count': 4, 'decoder.block_count': 4 },
  vocab: 'gpt2',
  f16Embeddings: true,
};

function parseArgs(argv: readonly string[]): { out: string; opts: RandomModelOptions } {
  let out = DEFAULT_MODEL_PATH;
  let base: RandomModelOptions = {};
  const hparams: Partial<Record<StreamHparamKey, number>> = {};
  let seed: number | undefined;
  let vocab: readonly string[] | number | 'gpt2' | undefined;
  let f16: boolean | undefined;
  let stem: [number, number] | undefined;
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string | undefined => argv[++i];
    switch (a) {
      case '--out': out = next() ?? out; break;
      case '--seed': seed = int(a, next()); break;
      case '--dim': hparams.embedding_length = int(a, next()); break;
      case '--heads': hparams.head_count = int(a, next()); break;
      case '--ffn': hparams.feed_forward_length = int(a, next()); break;
      case '--image-size': hparams.image_size = int(a, next()); break;
      case '--patch': hparams.patch_size = int(a, next()); break;
      case '--stem': {
        const v = next();
        const parts = (v ?? '').split(',');
        if (parts.length !== 2) throw new Error(`--stem needs C1,C2 (two positive integers), got ${v}`);
        stem = [int(a, parts[0]), int(a, parts[1])];
        break;
      }
      case '--layers': {
        const n = int(a, next());
        hparams['vision.block_count'] = n;
        hparams['text.block_count'] = n;
        hparams['decoder.block_count'] = n;
        break;
      }
      case '--vocab': {
        const v = next();
        vocab = v === 'shapes' ? undefined : v === 'gpt2-size' ? 'gpt2' : int(a, v);
        break;
      }
      case '--f16-embeddings': f16 = true; break;
      case '--preset': {
        const p = next();
        if (p !== 'bitmar-14m') throw new Error(`unknown preset ${p} (known: bitmar-14m)`);
        base = BITMAR_14M_OPTIONS;
        break;
      }
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return {
    out,
    opts: {
      ...base,
      seed: seed ?? base.seed,
      hparams: { ...base.hparams, ...hparams },
      vocab: vocab ?? base.vocab,
      f16Embeddings: f16 ?? base.f16Embeddings,
      stem: stem ?? base.stem,
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { out, opts } = parseArgs(process.argv.slice(2));
  const bytes = makeRandomStreamModel(opts);
  writeFileSync(out, bytes);
  console.log(`wrote ${out} (${bytes.byteLength} bytes)`);
}
