/**
 * The kernel interface the engine computes with. Two implementations share it bit for bit:
 * the native addon (native/, runtime ISA dispatch) and the TypeScript fallback (kernels-ts.ts).
 * Every integer path is exact (int32 accumulators); float rounding follows docs/bitmar-stream.md §2.
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
 * BITMAR_KERNELS (scalar | avx2 | neon-dotprod); naming one this machine lacks is an error.
 */
export function loadKernels(choice: KernelChoice): LoadedKernels {
  if (choice === 'typescript') return { kernels: tsKernels };
  try {
    return { kernels: createNativeKernels(loadNativeAddon()) };
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
