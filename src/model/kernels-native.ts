/**
 * Loader and thin wrapper for the native addon (build/Release/bitmar_native.node, sources in native/).
 * The addon validates every argument itself and throws TypeError/RangeError with
 * `code = 'BITMAR_ERR_NATIVE_ARGUMENT'`; this file only adapts it to the `Kernels` interface.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels, TernaryMatrix } from './kernels.js';

/** Opaque handle to a matrix repacked by the addon (a type-tagged napi External). */
export type NativeTernaryHandle = object;

/** What `kernelInfo()` returns. */
export interface NativeKernelInfo {
  /** The ISA the addon picked: BITMAR_KERNELS when set, else the best the CPU supports. */
  readonly isa: string;
  /** Every ISA this build and this CPU support, best first ("scalar" always last). */
  readonly available: readonly string[];
  /** The CPU architecture the addon was built for ("x64", "arm64", …). */
  readonly arch: string;
}

/** The addon's exports (native/addon.cc). `isa` arguments are indices from `isaIndex`. */
export interface NativeAddon {
  /** Repacks t2-row-v1 codes into the runtime layout (native/ternary/format.h). */
  packTernary(codes: Uint8Array, rows: number, cols: number): NativeTernaryHandle;
  bitlinearI8(isa: number, w: NativeTernaryHandle, scale: number, x: Float32Array, m: number, y: Float32Array, bias: Float32Array | null): void;
  bitlinearU8(isa: number, w: NativeTernaryHandle, scale: number, x: Float32Array, m: number, y: Float32Array, bias: Float32Array | null): void;
  matmulF32(isa: number, w: Float32Array, n: number, k: number, x: Float32Array, m: number, y: Float32Array, bias: Float32Array | null): void;
  /** Throws RangeError (code BITMAR_ERR_NATIVE_ARGUMENT) when BITMAR_KERNELS names an unsupported ISA. */
  kernelInfo(): NativeKernelInfo;
  /** Index of an available ISA; throws RangeError when the build or the CPU lacks it. */
  isaIndex(name: string): number;
  /** Core clock in GHz from a dependent chain of 1-cycle adds (iters·4 cycles); for bench/ only. */
  benchClockGhz(iters: number): number;
  /** Registered by native/notify (the systemd work); not used by the kernels. */
  [other: string]: unknown;
}

/** Absolute path of the built addon. */
export function nativeAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/model/ in a checkout (tsx), dist/model/ when compiled: both sit two levels under the root.
  return join(here, '..', '..', 'build', 'Release', 'bitmar_native.node');
}

/** Loads the addon; throws (with the path in the message) when it is missing or fails to load. */
export function loadNativeAddon(path: string = nativeAddonPath()): NativeAddon {
  if (!existsSync(path)) throw new Error(`the native addon is not built (${path} does not exist)`);
  const require = createRequire(import.meta.url);
  return require(path) as NativeAddon;
}

interface NativePacked {
  readonly kind: 'native-ternary';
  readonly handle: NativeTernaryHandle;
}

function nativeHandle(w: TernaryMatrix): NativeTernaryHandle {
  const p = w.packed as Partial<NativePacked> | null;
  if (p === null || typeof p !== 'object' || p.kind !== 'native-ternary' || typeof p.handle !== 'object') {
    throw new TypeError('this TernaryMatrix was not packed by the native kernels');
  }
  return p.handle;
}

/**
 * A `Kernels` backed by the addon, computing with `isa` (default: the addon's pick, see
 * `kernelInfo().isa`). Several instances with different ISAs may coexist (the tests use one per ISA);
 * matrices packed by one work with every other, since all ISAs share one layout.
 */
export function createNativeKernels(addon: NativeAddon, isa?: string): Kernels {
  const info = addon.kernelInfo();
  const isaName = isa ?? info.isa;
  const idx = addon.isaIndex(isaName);
  return {
    name: `native-${isaName}`,
    packTernary(codes: Uint8Array, rows: number, cols: number, scale: number): TernaryMatrix {
      if (!Number.isFinite(scale)) throw new RangeError(`ternary scale must be finite, got ${scale}`);
      const packed: NativePacked = { kind: 'native-ternary', handle: addon.packTernary(codes, rows, cols) };
      return { rows, cols, scale: Math.fround(scale), packed };
    },
    bitlinearI8(w, x, m, y, bias) {
      addon.bitlinearI8(idx, nativeHandle(w), w.scale, x, m, y, bias ?? null);
    },
    bitlinearU8(w, x, m, y, bias) {
      addon.bitlinearU8(idx, nativeHandle(w), w.scale, x, m, y, bias ?? null);
    },
    matmulF32(w, n, k, x, m, y, bias) {
      addon.matmulF32(idx, w, n, k, x, m, y, bias ?? null);
    },
  };
}
