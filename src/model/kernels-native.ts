/**
 * Loader and thin wrapper for the native addon (build/Release/bitmar_native.node, sources in native/).
 * The addon validates every argument itself and throws TypeError/RangeError with
 * `code = 'BITMAR_ERR_NATIVE_ARGUMENT'`; this file only adapts it to the `Kernels` interface.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DecoderStep, DecoderStepLinear, DecoderStepSpec, Kernels, TernaryMatrix } from './kernels.js';

/** Opaque handle to a matrix repacked by the addon (a type-tagged napi External). */
export type NativeTernaryHandle = object;

/** Opaque handle to a fused decoder plan (a type-tagged napi External holding the spec alive). */
export type NativeDecoderHandle = object;

/** A BitLinear as the addon's createDecoder reads it. */
export interface NativeDecoderLinear {
  readonly w: NativeTernaryHandle;
  readonly scale: number;
  readonly bias: Float32Array | null;
}

/** DecoderStepSpec with every TernaryMatrix replaced by its native handle and scale. */
export type NativeDecoderSpec = Omit<DecoderStepSpec, 'lmHead' | 'layers'> & {
  readonly lmHead: NativeDecoderLinear;
  readonly layers: ReadonlyArray<Omit<DecoderStepSpec['layers'][number], 'q' | 'k' | 'v' | 'o' | 'xq' | 'xo' | 'up' | 'down'> & Record<'q' | 'k' | 'v' | 'o' | 'xq' | 'xo' | 'up' | 'down', NativeDecoderLinear>>;
};

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
  layerNorm(isa: number, x: Float32Array, m: number, d: number, w: Float32Array, b: Float32Array, eps: number, out: Float32Array): void;
  gelu(isa: number, x: Float32Array, n: number): void;
  /** Softmax of x[0..n) in place (pass a subarray for an offset). */
  softmax(isa: number, x: Float32Array, n: number): void;
  attention(
    isa: number, q: Float32Array, mq: number, k: Float32Array, kRows: Int32Array | null, v: Float32Array, vRows: Int32Array | null,
    nKeys: number, heads: number, headDim: number, out: Float32Array,
  ): void;
  /** Arg-max of x[0..n). */
  argmax(isa: number, x: Float32Array, n: number): number;
  /** y = Math.exp(x) or Math.tanh(x) elementwise, bit for bit (the twins in native/activation/v8-math.h); for tests. */
  mathF64(isa: number, op: 'exp' | 'tanh', x: Float64Array, y: Float64Array): void;
  /** Checks the spec against its dimensions and keeps it alive; throws RangeError/TypeError (BITMAR_ERR_NATIVE_ARGUMENT). */
  createDecoder(spec: NativeDecoderSpec): NativeDecoderHandle;
  /** One fused decoder step; returns the arg-max of the logits it writes. */
  decodeStep(isa: number, decoder: NativeDecoderHandle, token: number, xRows: number, logits: Float32Array): number;
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

function nativeLinear(p: DecoderStepLinear): NativeDecoderLinear {
  return { w: nativeHandle(p.w), scale: p.w.scale, bias: p.bias };
}

/** The addon's view of a DecoderStepSpec (frozen: the plan reads its arrays in place). */
function nativeSpec(spec: DecoderStepSpec): NativeDecoderSpec {
  return Object.freeze({
    ...spec,
    lmHead: nativeLinear(spec.lmHead),
    layers: spec.layers.map((l) =>
      Object.freeze({
        ...l,
        q: nativeLinear(l.q), k: nativeLinear(l.k), v: nativeLinear(l.v), o: nativeLinear(l.o),
        xq: nativeLinear(l.xq), xo: nativeLinear(l.xo), up: nativeLinear(l.up), down: nativeLinear(l.down),
      }),
    ),
  });
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
    layerNorm(x, m, d, w, b, eps, out) {
      addon.layerNorm(idx, x, m, d, w, b, eps, out);
    },
    gelu(x, n) {
      if (n > 0) addon.gelu(idx, x, n);
    },
    softmax(x, off, n) {
      if (n > 0) addon.softmax(idx, off === 0 ? x : x.subarray(off), n);
    },
    attention(q, mq, k, kRows, v, vRows, nKeys, heads, headDim, out) {
      addon.attention(idx, q, mq, k, kRows, v, vRows, nKeys, heads, headDim, out);
    },
    argmax(x, off, n) {
      return addon.argmax(idx, off === 0 ? x : x.subarray(off), n);
    },
    createDecoderStep(spec: DecoderStepSpec): DecoderStep {
      const handle = addon.createDecoder(nativeSpec(spec));
      return { step: (token, xRows, logits) => addon.decodeStep(idx, handle, token, xRows, logits) };
    },
  };
}
