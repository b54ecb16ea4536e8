/**
 * Loader and thin wrapper for the native addon (sources in native/; which file loads: src/native-addon.ts).
 * The addon validates every argument itself and throws TypeError/RangeError with
 * `code = 'BITMAR_ERR_NATIVE_ARGUMENT'`; this file only adapts it to the `Kernels` interface.
 */
import { loadNativeAddonModule } from '../native-addon.js';
import type { DecoderStep, DecoderStepLinear, DecoderStepSpec, Kernels, TernaryMatrix } from './kernels.js';
import { conv3x3Gelu as conv3x3GeluTs } from './kernels-ts.js';
import { resizeAreaU8 as resizeAreaU8Ts } from './preprocess.js';

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
  /** Intra-op threads of this addon instance (`setThreads`; absent from an addon built before it). */
  readonly threads?: number;
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
  /**
   * out[0..size·size·3) = preprocess.ts resizeAreaU8(rgb, width, height, size), bit for bit (native/image/).
   * rgb must hold exactly width·height·3 bytes; width, height ≤ 65536, size ≤ 2048. Absent from an
   * addon built before it (an older prebuild): the wrapper then uses the TypeScript function.
   */
  resizeAreaU8?(isa: number, rgb: Uint8Array, width: number, height: number, size: number, out: Uint8Array): void;
  /**
   * out = GELU(conv3x3(x)) (native/conv/), bit for bit kernels-ts.ts conv3x3Gelu: sides ≤ 65536,
   * channels ≤ 4096, out overlapping neither x nor weight. Absent from an addon built before it (an
   * older prebuild): the wrapper then uses the TypeScript function.
   */
  conv3x3Gelu?(
    isa: number, x: Float32Array, height: number, width: number, cin: number, weight: Float32Array, bias: Float32Array | null, cout: number,
    stride: number, out: Float32Array,
  ): void;
  /** y = Math.exp(x) or Math.tanh(x) elementwise, bit for bit (the twins in native/activation/v8-math.h); for tests. */
  mathF64(isa: number, op: 'exp' | 'tanh', x: Float64Array, y: Float64Array): void;
  /** Checks the spec against its dimensions and keeps it alive; throws RangeError/TypeError (BITMAR_ERR_NATIVE_ARGUMENT). */
  createDecoder(spec: NativeDecoderSpec): NativeDecoderHandle;
  /** One fused decoder step; returns the arg-max of the logits it writes. */
  decodeStep(isa: number, decoder: NativeDecoderHandle, token: number, xRows: number, logits: Float32Array): number;
  /**
   * Intra-op threads of this addon instance (one per Node environment: each worker_thread that loads
   * the addon has its own pool), an integer from 1 to 64; default 1. Large bitlinearI8/U8 and
   * matmulF32 calls are then split across threads with bit-identical results (native/thread-pool.h).
   * Throws RangeError/TypeError (BITMAR_ERR_NATIVE_ARGUMENT) otherwise. Absent from an addon built before it.
   */
  setThreads?(threads: number): void;
  /** Throws RangeError (code BITMAR_ERR_NATIVE_ARGUMENT) when BITMAR_KERNELS names an unsupported ISA. */
  kernelInfo(): NativeKernelInfo;
  /** Index of an available ISA; throws RangeError when the build or the CPU lacks it. */
  isaIndex(name: string): number;
  /** Core clock in GHz from a dependent chain of 1-cycle adds (iters·4 cycles); for bench/ only. */
  benchClockGhz(iters: number): number;
  /** Detaches `buffer`, freeing its memory now (absent from an addon built before it); false for WebAssembly memory. */
  detachArrayBuffer?(buffer: ArrayBuffer): boolean;
  /** Registered by native/notify (the systemd work); not used by the kernels. */
  [other: string]: unknown;
}

/** Absolute path of the addon that loads (BITMAR_NATIVE_ADDON, else build/Release, else the prebuild); throws when none does. */
export function nativeAddonPath(): string {
  return loadNativeAddonModule().path;
}

/** Loads the addon (`path`, else see src/native-addon.ts); throws a one-line reason listing what was tried. */
export function loadNativeAddon(path?: string): NativeAddon {
  return loadNativeAddonModule(path === undefined ? {} : { env: { BITMAR_NATIVE_ADDON: path } }).addon as NativeAddon;
}

/**
 * A function that frees ArrayBuffers now (the addon detaches them) instead of at this isolate's next
 * GC. For buffers this thread owns and is done with: the inference worker drops each described
 * frame's pixels (2.7 MB at 720p, 30 a second), which otherwise pile up as tens of MB of garbage
 * between collections. Without the addon (or with one built before detachArrayBuffer) it does
 * nothing and the GC frees them as before.
 */
export function createBufferReleaser(): (buffers: Iterable<ArrayBufferLike>) => void {
  let detach: ((b: ArrayBuffer) => boolean) | undefined;
  try {
    const addon = loadNativeAddon();
    if (typeof addon.detachArrayBuffer === 'function') detach = addon.detachArrayBuffer.bind(addon);
  } catch {
    // no addon: the GC frees them
  }
  return (buffers) => {
    if (detach === undefined) return;
    for (const b of buffers) if (b instanceof ArrayBuffer) detach(b);
  };
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
 * `threads` (default: leave the addon's setting, 1 unless set) sets the addon instance's intra-op
 * threads, which every Kernels made from the same addon shares; an addon built before setThreads
 * ignores it and stays single-threaded.
 */
export function createNativeKernels(addon: NativeAddon, isa?: string, threads?: number): Kernels {
  const info = addon.kernelInfo();
  const isaName = isa ?? info.isa;
  const idx = addon.isaIndex(isaName);
  if (threads !== undefined && typeof addon.setThreads === 'function') addon.setThreads(threads);
  const resize = typeof addon.resizeAreaU8 === 'function' ? addon.resizeAreaU8 : undefined;
  const conv = typeof addon.conv3x3Gelu === 'function' ? addon.conv3x3Gelu : undefined;
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
    resizeAreaU8(rgb, width, height, size) {
      // Whatever the addon cannot take (no such export, a malformed frame, sizes beyond its caps) goes
      // to the TypeScript function, which is the contract and throws the documented errors.
      const fits =
        resize !== undefined && rgb instanceof Uint8Array &&
        Number.isInteger(width) && width >= 1 && width <= 65536 && Number.isInteger(height) && height >= 1 && height <= 65536 &&
        Number.isInteger(size) && size >= 1 && size <= 2048 && rgb.length === width * height * 3;
      if (!fits) return resizeAreaU8Ts(rgb, width, height, size);
      const out = new Uint8Array(size * size * 3);
      resize.call(addon, idx, rgb, width, height, size, out);
      return out;
    },
    conv3x3Gelu(x, height, width, cin, w, bias, cout, stride, out) {
      if (conv === undefined) conv3x3GeluTs(x, height, width, cin, w, bias, cout, stride, out);
      else conv.call(addon, idx, x, height, width, cin, w, bias, cout, stride, out);
    },
    createDecoderStep(spec: DecoderStepSpec): DecoderStep {
      const handle = addon.createDecoder(nativeSpec(spec));
      return { step: (token, xRows, logits) => addon.decodeStep(idx, handle, token, xRows, logits) };
    },
  };
}
