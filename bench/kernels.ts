// Kernel benchmark: ternary GEMV/GEMM GMAC/s of the native ISAs and the TypeScript path.
//   node --import tsx bench/kernels.ts [--quick] [--scheme i8|u8] [--ts-m 1,4] [--skip-ort]   (or through bench/run.ts)
// Shapes (rows × cols): the BitMar ones (d→d 128×128, FFN 256/512×128 and 128×256/512, the output layer
// 50,257×128) and the generic square 512..3072; M = 1, 4, 16, 64 tokens. Every figure comes from this
// process's CPU time (wall time alongside); native vs TypeScript is interleaved A-B-B-A on the same
// weights and summarised as the median of the per-pair ratios. % of peak uses the clock measured in
// this run × 64 int8 MACs a cycle (bench/machine.ts).
// With onnxruntime-node installed (not a dependency; bench/onnx.ts), each shape also runs as an ONNX
// graph on the same weights: fp32 MatMul on the dequantised matrix and int8 (DynamicQuantizeLinear +
// MatMulInteger), one thread, interleaved A-B-B-A against the default ISA; ours/ORT is the median
// pair ratio.
import { pathToFileURL } from 'node:url';

import type { Kernels, TernaryMatrix } from '../src/model/kernels.js';
import { tsKernels } from '../src/model/kernels-ts.js';
import { createNativeKernels, loadNativeAddon, type NativeAddon } from '../src/model/kernels-native.js';
import { abba, fmt, median, medianSample, repsFor, timePerCall } from './measure.js';
import { machineInfo } from './machine.js';
import { loadOnnxruntime, ORT_KINDS, ortCallFloor, OrtGemv, ortLabel, repsForAsync, timeAsync, type OrtModule } from './onnx.js';
import type { OnnxWeightKind } from '../tools/onnx/bitmar-onnx.js';

export interface KernelShape {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
}

export const BITMAR_SHAPES: readonly KernelShape[] = [
  { name: 'attn d→d', rows: 128, cols: 128 },
  { name: 'ffn up (Shapes)', rows: 256, cols: 128 },
  { name: 'ffn down (Shapes)', rows: 128, cols: 256 },
  { name: 'ffn up (14M)', rows: 512, cols: 128 },
  { name: 'ffn down (14M)', rows: 128, cols: 512 },
  { name: 'output layer', rows: 50257, cols: 128 },
];
export const GENERIC_SHAPES: readonly KernelShape[] = [512, 1024, 2048, 3072].map((n) => ({ name: `${n}²`, rows: n, cols: n }));

export interface KernelOptions {
  readonly quick: boolean;
  readonly scheme: 'bitlinearI8' | 'bitlinearU8';
  /** M values at which the TypeScript kernels run (interleaved A-B-B-A against the default ISA). */
  readonly tsMs: ReadonlySet<number>;
  readonly peakGmacs: number;
  readonly log: (line: string) => void;
  /** onnxruntime-node: adds the ORT fp32 and int8 columns (interleaved with the default ISA). */
  readonly ort?: OrtModule;
}

export interface KernelCell {
  readonly gmacs: number;
  readonly msPerCall: number;
  readonly wallMsPerCall: number;
}

export interface KernelRow {
  readonly shape: string;
  readonly rows: number;
  readonly cols: number;
  readonly m: number;
  /** By ISA name ("native-avx2", …). */
  readonly native: Readonly<Record<string, KernelCell>>;
  /** % of the calibrated peak reached by the default ISA. */
  readonly pctPeak: number;
  readonly typescript?: KernelCell;
  /** Median A-B-B-A ratio TypeScript time / default native time. */
  readonly vsTypescript?: number;
  /** onnxruntime-node on the same weights, with the median A-B-B-A ratio ORT time / default native time. */
  readonly onnxruntime?: Readonly<Partial<Record<OnnxWeightKind, KernelCell & { readonly vsOurs: number }>>>;
}

/** Random t2-row-v1 codes (deterministic). */
export function randomCodes(rows: number, cols: number, seed = 12345): Uint8Array {
  const rb = (cols + 3) >> 2;
  const c = new Uint8Array(rows * rb);
  let s = seed;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < rb * 4; j++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const code = j < cols ? (s >>> 16) % 3 : 1;
      c[r * rb + (j >> 2)]! |= code << (2 * (j & 3));
    }
  }
  return c;
}

function call(k: Kernels, scheme: KernelOptions['scheme'], w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array): () => void {
  return () => k[scheme](w, x, m, y);
}

/** Measures every shape × M on every native ISA (scalar only where it finishes quickly) and the TypeScript path. */
export async function benchKernels(addon: NativeAddon, shapes: readonly KernelShape[], ms: readonly number[], o: KernelOptions): Promise<KernelRow[]> {
  const info = addon.kernelInfo();
  const natives = info.available.map((isa) => createNativeKernels(addon, isa));
  const out: KernelRow[] = [];
  const ortCols = o.ort ? ORT_KINDS.flatMap((k) => [`ORT ${k} GMAC/s, ms`, `ours/ORT ${k}`]) : [];
  if (o.ort) {
    const floor = await ortCallFloor(o.ort);
    o.log(`(ORT: fp32 = Gemm on the dequantised matrix, int8 = DynamicQuantizeLinear + MatMulInteger; ` +
      `onnxruntime-node's per-call floor, an Identity graph: ${(floor.cpuMs * 1000).toFixed(1)} µs CPU)`);
  }
  o.log(['shape (rows×cols)', 'M', ...natives.map((n) => `${n.name} GMAC/s, ms`), '% peak', 'typescript GMAC/s, ms', 'native/ts', ...ortCols].join(' | '));
  for (const sh of shapes) {
    const codes = randomCodes(sh.rows, sh.cols);
    const ws = natives.map((n) => n.packTernary(codes, sh.rows, sh.cols, 0.01));
    const wt = ms.some((m) => o.tsMs.has(m)) ? tsKernels.packTernary(codes, sh.rows, sh.cols, 0.01) : null;
    const orts = o.ort ? await Promise.all(ORT_KINDS.map((k) => OrtGemv.create(o.ort!, codes, sh.rows, sh.cols, 0.01, k))) : [];
    for (const m of ms) {
      const x = new Float32Array(m * sh.cols).map((_, i) => Math.sin(i * 0.37) * 3);
      const y = new Float32Array(m * sh.rows);
      const macs = sh.rows * sh.cols * m;
      const native: Record<string, KernelCell> = {};
      const cells: string[] = [];
      natives.forEach((nk, i) => {
        const isScalar = nk.name === 'native-scalar';
        if (isScalar && macs > (o.quick ? 2e6 : 2e7)) {
          cells.push('-');
          return;
        }
        const fn = call(nk, o.scheme, ws[i]!, x, m, y);
        const s = medianSample(fn, repsFor(fn, o.quick ? 8 : 25), o.quick ? 3 : 5);
        native[nk.name] = { gmacs: macs / s.cpuMs / 1e6, msPerCall: s.cpuMs, wallMsPerCall: s.wallMs };
        cells.push(`${fmt(macs / s.cpuMs / 1e6)} ${s.cpuMs.toFixed(4)}`);
      });
      const best = native[natives[0]!.name]!;
      const pctPeak = (100 * best.gmacs) / o.peakGmacs;
      let typescript: KernelCell | undefined;
      let vsTypescript: number | undefined;
      if (wt && o.tsMs.has(m)) {
        const a = call(natives[0]!, o.scheme, ws[0]!, x, m, y);
        const b = call(tsKernels, o.scheme, wt, x, m, y);
        const repsA = repsFor(a, 10);
        const repsB = Math.max(1, repsFor(b, 30));
        const r = await abba(() => timePerCall(a, repsA).cpuMs, () => timePerCall(b, repsB).cpuMs, o.quick ? 1 : 2);
        const tsMs = [...r.b].sort((p, q) => p - q)[r.b.length >> 1]!;
        typescript = { gmacs: macs / tsMs / 1e6, msPerCall: tsMs, wallMsPerCall: NaN };
        vsTypescript = r.ratio;
      }
      const onnxruntime: Partial<Record<OnnxWeightKind, KernelCell & { vsOurs: number }>> = {};
      const ortCells: string[] = [];
      for (const og of orts) {
        const a = call(natives[0]!, o.scheme, ws[0]!, x, m, y);
        const b = og.caller(x, m, sh.cols);
        const repsA = repsFor(a, 10);
        const repsB = await repsForAsync(b, 20);
        const wall: number[] = [];
        const r = await abba(() => timePerCall(a, repsA).cpuMs, async () => {
          const s = await timeAsync(b, repsB);
          wall.push(s.wallMs);
          return s.cpuMs;
        }, o.quick ? 1 : 2);
        const ortMs = median(r.b);
        onnxruntime[og.kind] = { gmacs: macs / ortMs / 1e6, msPerCall: ortMs, wallMsPerCall: median(wall), vsOurs: r.ratio };
        ortCells.push(`${fmt(macs / ortMs / 1e6, 2)} ${ortMs.toFixed(4)}`, `${fmt(r.ratio, 1)}×`);
      }
      out.push({ shape: sh.name, rows: sh.rows, cols: sh.cols, m, native, pctPeak, typescript, vsTypescript, ...(orts.length ? { onnxruntime } : {}) });
      o.log([`${sh.name} ${sh.rows}×${sh.cols}`, String(m), ...cells, `${fmt(pctPeak, 0)}%`,
        typescript ? `${fmt(typescript.gmacs, 2)} ${typescript.msPerCall.toFixed(3)}` : '-', vsTypescript ? `${fmt(vsTypescript, 0)}×` : '-', ...ortCells].join(' | '));
    }
    for (const og of orts) await og.dispose();
  }
  return out;
}

// ---- standalone CLI ----

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const arg = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1]! : dflt;
  };
  const addon = loadNativeAddon();
  const mach = machineInfo(addon);
  console.log(`bitmar kernels bench — node ${mach.node}, ISAs ${mach.isas.join(',')} (default ${mach.isa}); ${mach.cpu}`);
  console.log(`flags: ${mach.flags}; clock ${mach.clockGhz.toFixed(2)} GHz; peak ${mach.peakGmacs.toFixed(0)} GMAC/s; 1 thread; CPU-time figures`);
  const ort = args.includes('--skip-ort') ? 'skipped: --skip-ort' : loadOnnxruntime();
  console.log(`onnxruntime: ${typeof ort === 'string' ? ort : ortLabel(ort)}\n`);
  await benchKernels(addon, quick ? [BITMAR_SHAPES[0]!, BITMAR_SHAPES[5]!, GENERIC_SHAPES[1]!] : [...BITMAR_SHAPES, ...GENERIC_SHAPES], quick ? [1, 16] : [1, 4, 16, 64], {
    quick,
    scheme: arg('--scheme', 'i8') === 'u8' ? 'bitlinearU8' : 'bitlinearI8',
    tsMs: new Set(arg('--ts-m', '1').split(',').map(Number)),
    peakGmacs: mach.peakGmacs,
    log: (l) => console.log(l),
    ...(typeof ort === 'string' ? {} : { ort }),
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
