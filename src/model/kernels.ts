/**
 * The kernel interface the engine computes with. Two implementations share it bit for bit:
 * the native addon (native/, runtime ISA dispatch) and the TypeScript fallback (kernels-ts.ts).
 * Every integer path is exact (int32 accumulators); float rounding follows docs/bitmar-stream.md §2;
 * the fp32 ops (LayerNorm, GELU, softmax, attention) compute in fp64 in a fixed order and round at
 * fixed points, and the native ones use twins of V8's Math.exp/Math.tanh, so both backends give the
 * same bits there too.
 *
 * Ownership: the native-kernels work owns this file; the signatures below are the contract.
 */
import { BitmarError } from '../errors.js';
import { tsKernels } from './kernels-ts.js';
import { createNativeKernels, loadNativeAddon } from './kernels-native.js';

export { roundHalfEven, tsKernels } from './kernels-ts.js';

/** A ternary matrix [rows, cols] repacked once at load for the active backend. */
export interface TernaryMatrix {
  readonly rows: number;
  readonly cols: number;
  /** s_w, the per-tensor weight scale. */
  readonly scale: number;
  /** Backend-private packed data (native handle or TypedArrays). */
  readonly packed: unknown;
}

export interface Kernels {
  /** e.g. "native-avx2", "native-scalar", "native-neon-dotprod", "typescript". */
  readonly name: string;
  /**
   * Repack canonical `t2-row-v1` codes (rows × ceil(cols/4) bytes, docs/bitmar-stream.md §5).
   * Throws RangeError on a wrong buffer length or a code of 3.
   */
  packTernary(codes: Uint8Array, rows: number, cols: number, scale: number): TernaryMatrix;
  /**
   * y[m, rows] = BitLinear with per-token symmetric int8 activations (stream scheme).
   * x is [m, cols] row-major; bias optional ([rows]).
   */
  bitlinearI8(w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void;
  /**
   * y[m, rows] = BitLinear with R1's per-tensor asymmetric uint8 activations over all m rows
   * (bitmar-reference-spec.md §4, §12.11: literal zero-point clamp, round half to even, pass-through
   * when max−min < 1e-8).
   */
  bitlinearU8(w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void;
  /** y[m, n] = x[m, k] · wᵀ (w is [n, k]) + bias, fp32 (the patch-embedding stem). */
  matmulF32(w: Float32Array, n: number, k: number, x: Float32Array, m: number, y: Float32Array, bias?: Float32Array | null): void;
  /**
   * out[r] = (x[r] − mean)/√(var + eps)·w + b for m rows of width d (biased variance; sums in fp64
   * left to right; out = fp32(fp32((x − mean)·inv)·w + b)). out may alias x.
   */
  layerNorm(x: Float32Array, m: number, d: number, w: Float32Array, b: Float32Array, eps: number, out: Float32Array): void;
  /** x[0..n) ← 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in place, in fp64, one rounding per entry. */
  gelu(x: Float32Array, n: number): void;
  /** x[off..off+n) ← softmax in place (max-subtracted, fp32 exponentials, fp64 sum). */
  softmax(x: Float32Array, off: number, n: number): void;
  /**
   * Multi-head attention: each of mq query rows of q ([mq, d], d = heads·headDim) attends over keys
   * 0..nKeys−1, key i being row kRows[i] of k (row i when kRows is null) and value i row vRows[i] of v:
   * out[r]_h = softmax(q_h·K_hᵀ/√headDim)·V_h, heads concatenated ([mq, d]). out must not overlap q, k, v.
   */
  attention(
    q: Float32Array, mq: number, k: Float32Array, kRows: Int32Array | null, v: Float32Array, vRows: Int32Array | null,
    nKeys: number, heads: number, headDim: number, out: Float32Array,
  ): void;
  /** Index of the largest of x[off..off+n) (the first one on ties; NaN is skipped; torch.argmax). */
  argmax(x: Float32Array, off: number, n: number): number;
  /**
   * The exact area resize of a width×height RGB8 frame (tightly packed) to size×size RGB8, rounded
   * halves up: src/model/preprocess.ts `resizeAreaU8` is the contract, and every backend returns its
   * bytes exactly (the trainer's exporter stores them). Throws as it does: BitmarError
   * BITMAR_ERR_IMAGE_SIZE for a malformed frame, RangeError for a size that is not a positive integer.
   */
  resizeAreaU8(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array;
  /**
   * One layer of the convolutional stem (docs/bitmar-stream.md §3): out [OH, OW, cout] =
   * GELU(conv3x3(x [height, width, cin] HWC; w [cout, 9·cin] rows in (ky, kx, c) order (the GGUF
   * layout), bias [cout] or null, stride, zero padding 1)), OH = ⌊(height−1)/stride⌋ + 1 (likewise
   * OW; src/model/engine/conv.ts conv3x3OutSize). The contract is im2col + `matmulF32` + `gelu`
   * (conv.ts conv3x3, then gelu in place), bit for bit: every backend sums each output in matmulF32's
   * order over its im2col row. out must not overlap x or w. Throws RangeError on bad sizes.
   */
  conv3x3Gelu(
    x: Float32Array, height: number, width: number, cin: number, w: Float32Array, bias: Float32Array | null, cout: number, stride: number,
    out: Float32Array,
  ): void;
  /**
   * The fused bitmar-stream decoder step (one token through every decoder block, LN_f, the output
   * layer and the arg-max in one call), when the backend has one (the native addon does). Absent:
   * the engine composes the ops above. The spec's arrays are used in place and must stay attached.
   */
  createDecoderStep?(spec: DecoderStepSpec): DecoderStep;
}

/** A BitLinear of the stream scheme inside a DecoderStepSpec. */
export interface DecoderStepLinear {
  readonly w: TernaryMatrix;
  readonly bias: Float32Array | null;
}

/** LayerNorm weights, (d) each. */
export interface DecoderStepNorm {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

/** One decoder block: its weights, the session's per-layer conditioning and its KV cache arrays. */
export interface DecoderStepLayer {
  readonly ln1: DecoderStepNorm;
  readonly ln2: DecoderStepNorm;
  readonly ln3: DecoderStepNorm;
  readonly q: DecoderStepLinear;
  readonly k: DecoderStepLinear;
  readonly v: DecoderStepLinear;
  readonly o: DecoderStepLinear;
  readonly xq: DecoderStepLinear;
  readonly xo: DecoderStepLinear;
  readonly up: DecoderStepLinear;
  readonly down: DecoderStepLinear;
  /** (d) BL_cond(c). */
  readonly cond: Float32Array;
  /** (xCapacity, d) cross-attention keys and values of X. */
  readonly xk: Float32Array;
  readonly xv: Float32Array;
  /** The sink + window cache (src/model/engine/kv-cache.ts): (S+W, d) each, (S+W), [fed, head, rotatedValid]. */
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly rotated: Float32Array;
  readonly order: Int32Array;
  readonly meta: Float64Array;
}

/** Everything the fused decoder step reads and writes (docs/bitmar-stream.md §3, "Decoder"). */
export interface DecoderStepSpec {
  readonly dim: number;
  readonly heads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly vocab: number;
  readonly sinks: number;
  readonly window: number;
  /** Rows of xk/xv allocated (N+1+Tmax). */
  readonly xCapacity: number;
  readonly eps: number;
  /** (vocab, d) d.tok_emb. */
  readonly tokEmb: Float32Array;
  readonly lnF: DecoderStepNorm;
  readonly lmHead: DecoderStepLinear;
  /** (S+W, headDim/2) RoPE tables. */
  readonly ropeCos: Float32Array;
  readonly ropeSin: Float32Array;
  readonly layers: readonly DecoderStepLayer[];
}

export interface DecoderStep {
  /**
   * Feed one token (0 ≤ token < vocab) through a session whose X holds xRows rows: appends its key
   * and value to every layer's cache, writes its logits to logits[0..vocab), returns their arg-max.
   */
  step(token: number, xRows: number, logits: Float32Array): number;
}

/** Which backend `loadKernels` should use (config `model.kernels`). */
export type KernelChoice = 'auto' | 'native' | 'typescript';

/** What `loadKernels` returns: the backend, and why the TypeScript one was used when 'auto' fell back. */
export interface LoadedKernels {
  readonly kernels: Kernels;
  /** Set only when choice 'auto' fell back to TypeScript: one line, says how to fix it. */
  readonly fallbackReason?: string;
}

/**
 * Picks the kernel backend. 'native' loads the addon (build/Release/bitmar_native.node) and throws
 * BitmarError BITMAR_ERR_NATIVE_UNAVAILABLE when it cannot; 'typescript' never touches the addon;
 * 'auto' tries the addon and falls back to TypeScript with a one-line `fallbackReason`.
 * The native ISA is the best the CPU has, or the one named by the environment variable
 * BITMAR_KERNELS (scalar | avx2 | avx512-vnni | neon-dotprod); naming one this machine lacks is an error.
 * `threads` (config `model.threads`, default 1) is the native kernels' intra-op threads; the
 * TypeScript kernels are single-threaded and ignore it.
 */
export function loadKernels(choice: KernelChoice, threads = 1): LoadedKernels {
  if (choice === 'typescript') return { kernels: tsKernels };
  try {
    return { kernels: createNativeKernels(loadNativeAddon(), undefined, threads) };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    const fix =
      'to fix: install a C++17 compiler, make and python3 (Debian/Ubuntu: sudo apt-get install build-essential python3), ' +
      'then run `npm rebuild` (or `node tools/build-addon.mjs` in a checkout); check BITMAR_KERNELS if set';
    if (choice === 'native') {
      throw new BitmarError('BITMAR_ERR_NATIVE_UNAVAILABLE', `native kernels unavailable: ${why}; ${fix}`, { cause: e });
    }
    return {
      kernels: tsKernels,
      fallbackReason: `native kernels unavailable (${why.replace(/\s*\n\s*/g, ' ')}); using the slower TypeScript kernels — ${fix}`,
    };
  }
}
