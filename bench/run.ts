// `npm run bench`: the benchmark suite of issue 5 (docs/performance.md has the last table and how to
// read it). Not a test: it prints tables and writes JSON to bench/results/ (gitignored).
//   node --import tsx bench/run.ts [--quick] [--only kernels,decode,encode] [--skip-torch] [--skip-ort]
//                                  [--model PATH] [--model-14m PATH] [--out FILE]
// 1. Kernels: ternary GEMV/GEMM GMAC/s per shape (BitMar shapes incl. 50,257×128, generic 512–3072) and
//    M ∈ {1, 4, 16, 64}, % of the peak calibrated in this run, ms/call; TypeScript interleaved A-B-B-A;
//    onnxruntime-node fp32 MatMul and int8 MatMulInteger on the same matrices, interleaved A-B-B-A.
// 2. Decode, for the default model (models/bitmar-stream-shapes.gguf, else models/bitmar-stream-random.gguf)
//    and the BitMar-14M-sized random model (generated here unless --model-14m is given): greedy tokens/s
//    through engine.generate, per-token p50/p99, time to first token; against the pure TypeScript path and
//    PyTorch fp32 (one thread) and onnxruntime-node (the decoder exported to ONNX from the same GGUF, fp32
//    and int8, KV cache as graph inputs/outputs, one thread), each interleaved A-B-B-A in this run on
//    the same weights. onnxruntime-node is not a dependency: without it the ORT figures are skipped
//    with a one-line note (`npm i --no-save --ignore-scripts onnxruntime-node@1.23` to get them).
// 3. Image encode frames/s at batch 1, 4, 8, 16 for the default model (64×64 and 640×480 RGB8 frames).
// Rates come from this process's CPU time (the shared machine deschedules us; wall figures alongside).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

import { tsKernels } from '../src/model/kernels-ts.js';
import { createNativeKernels, loadNativeAddon } from '../src/model/kernels-native.js';
import { BITMAR_14M_OPTIONS, makeRandomStreamModel } from '../tools/make-random-model.js';
import { loadOnnxruntime, ORT_KINDS, OrtDecoder, ortLabel, TorchDecoder, type OrtModule } from './baselines.js';
import { BITMAR_SHAPES, GENERIC_SHAPES, benchKernels, type KernelRow } from './kernels.js';
import { machineInfo } from './machine.js';
import { abba, fmt, median, quantile } from './measure.js';
import { ONNX_CACHE } from './onnx.js';
import { benchImage, decodeRun, encodeBatches, engineFrom, PROMPT, ttft, withoutEos, type EncodeResult, type TtftResult } from './model.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const skipTorch = args.includes('--skip-torch');
const skipOrt = args.includes('--skip-ort');
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
};
const only = new Set((arg('--only') ?? 'kernels,decode,encode').split(','));
const log = (s = ''): void => console.log(s);

interface ModelResult {
  readonly name: string;
  readonly path: string;
  readonly dim: number;
  readonly layers: number;
  readonly vocab: number;
  readonly imageSize: number;
  readonly tokensPerRun: number;
  /** Greedy decode per ISA: tokens/s from CPU time (median of runs), wall tokens/s, per-token wall p50/p99 ms. */
  readonly decode: Record<string, { tokensPerS: number; wallTokensPerS: number; p50Ms: number; p99Ms: number }>;
  readonly ttft: Record<string, TtftResult>;
  readonly vsTypescript?: { readonly ratio: number; readonly typescriptTokensPerS: number };
  readonly vsTorch?: { readonly ratio: number; readonly torchTokensPerS: number; readonly torch: string } | { readonly skipped: string };
  readonly vsOnnxruntime: OrtDecodeResult | { readonly skipped: string };
}

interface OrtDecodeCell {
  /** Median A-B-B-A ratio ORT CPU ms per token / ours. */
  readonly ratio: number;
  /** ORT tokens/s from CPU time (median of its runs) and from wall time. */
  readonly tokensPerS: number;
  readonly wallTokensPerS: number;
  /** How many greedy tokens from the start equal ours (same conditioning, same weights). */
  readonly sameTokens: number;
  readonly tokensPerRun: number;
}

interface OrtDecodeResult {
  readonly ort: string;
  readonly fp32?: OrtDecodeCell;
  readonly int8?: OrtDecodeCell;
  /** Per kind, when it could not run. */
  readonly failed?: Readonly<Record<string, string>>;
  readonly onnx: readonly string[];
}

async function benchModel(label: string, path: string, bytes: Uint8Array, torchPath: string, ort: OrtModule | string): Promise<ModelResult> {
  const addon = loadNativeAddon();
  const info = addon.kernelInfo();
  const noEos = withoutEos(bytes);
  const isas = info.available.filter((i) => i !== 'scalar');
  const engines = isas.map((isa) => engineFrom(noEos, label, createNativeKernels(addon, isa)));
  const ts = engineFrom(noEos, label, tsKernels);
  const main = engines[0]!;
  const c = main.config;
  const frame = benchImage(c.imageSize, c.imageSize, 7);
  const n = quick ? 96 : 256;
  const nTs = c.vocabSize > 10_000 ? (quick ? 8 : 16) : quick ? 32 : 64;
  log(`\n## ${label}: ${path}\nd=${c.dim}, ${c.heads} heads, ${c.decoderLayers} decoder blocks, f=${c.ffnDim}, vocabulary ${c.vocabSize}, ` +
    `image ${c.imageSize}² (${c.patches} patches), S=${c.sinkCount}, W=${c.windowLength}; ` +
    `${n} greedy tokens a run (caption mode, the <eos> row zeroed so it runs to the cap)`);
  const decode: ModelResult['decode'] = {};
  const ttftRes: Record<string, TtftResult> = {};
  engines.forEach((e, i) => {
    const cond = e.prepare([frame], PROMPT);
    decodeRun(e, cond, n);
    const runs = Array.from({ length: quick ? 3 : 5 }, () => decodeRun(e, cond, n));
    const gaps = runs.flatMap((r) => r.gapsMs);
    decode[isas[i]!] = {
      tokensPerS: 1000 / median(runs.map((r) => r.cpuMsPerToken)),
      wallTokensPerS: 1000 / median(runs.map((r) => r.wallMsPerToken)),
      p50Ms: quantile(gaps, 0.5),
      p99Ms: quantile(gaps, 0.99),
    };
    ttftRes[`native-${isas[i]}`] = ttft(e, frame, quick ? 5 : 11);
  });
  ttftRes.typescript = ttft(ts, frame, quick ? 1 : 3);
  const condMain = main.prepare([frame], PROMPT);
  const condTs = ts.prepare([frame], PROMPT);
  const a = (): number => decodeRun(main, condMain, n).cpuMsPerToken;
  const tsPair = await abba(a, () => decodeRun(ts, condTs, nTs).cpuMsPerToken, quick ? 1 : 2);
  let vsTorch: ModelResult['vsTorch'];
  if (skipTorch) {
    vsTorch = { skipped: '--skip-torch' };
  } else {
    const torch = await TorchDecoder.start(torchPath);
    if (typeof torch === 'string') {
      vsTorch = { skipped: torch };
    } else {
      try {
        const nTorch = c.vocabSize > 10_000 ? (quick ? 16 : 48) : n;
        const p = await abba(a, async () => (await torch.decode(nTorch)).cpuMsPerToken, quick ? 1 : 2);
        vsTorch = { ratio: p.ratio, torchTokensPerS: 1000 / median(p.b), torch: `PyTorch ${torch.info.torch}, ${torch.info.threads} thread, fp32` };
      } finally {
        torch.close();
      }
    }
  }
  let vsOnnxruntime: ModelResult['vsOnnxruntime'];
  if (typeof ort === 'string') {
    vsOnnxruntime = { skipped: ort };
  } else {
    // The same conditioning as ours: X = concat(V, Fused) of the prepared frame and prompt, and c.
    const img = condMain.images[condMain.images.length - 1]!;
    const X = new Float32Array(img.V.length + condMain.fused.length);
    X.set(img.V, 0);
    X.set(condMain.fused, img.V.length);
    const ours = [...main.generate(condMain, { maxTokens: n })].map((t) => t.tokenId);
    const cells: Partial<Record<'fp32' | 'int8', OrtDecodeCell>> = {};
    const failed: Record<string, string> = {};
    const onnx: string[] = [];
    for (const kind of ORT_KINDS) {
      let dec: OrtDecoder | undefined;
      try {
        dec = await OrtDecoder.create(ort, noEos, `${label.replace(/[^A-Za-z0-9]+/g, '-')}-noeos`, kind);
        onnx.push(...dec.paths);
        const first = await dec.decode(X, condMain.c, n);
        let same = 0;
        while (same < ours.length && first.tokens[same] === ours[same]) same++;
        const wall: number[] = [];
        const d = dec;
        const p = await abba(a, async () => {
          const r = await d.decode(X, condMain.c, n);
          wall.push(r.wallMsPerToken);
          return r.cpuMsPerToken;
        }, quick ? 1 : 2);
        cells[kind] = { ratio: p.ratio, tokensPerS: 1000 / median(p.b), wallTokensPerS: 1000 / median(wall), sameTokens: same, tokensPerRun: n };
      } catch (e) {
        failed[kind] = String((e as Error).message ?? e).split('\n')[0]!;
      } finally {
        await dec?.dispose();
      }
    }
    vsOnnxruntime = { ort: ortLabel(ort), ...cells, ...(Object.keys(failed).length ? { failed } : {}), onnx };
  }
  const res: ModelResult = {
    name: label, path, dim: c.dim, layers: c.decoderLayers, vocab: c.vocabSize, imageSize: c.imageSize, tokensPerRun: n, decode, ttft: ttftRes,
    vsTypescript: { ratio: tsPair.ratio, typescriptTokensPerS: 1000 / median(tsPair.b) },
    vsTorch,
    vsOnnxruntime,
  };
  log('ISA | tokens/s (CPU time) | tokens/s (wall) | per token p50 / p99 ms (wall) | TTFT ms (wall p50, CPU)');
  for (const isa of isas) {
    const d = decode[isa]!;
    const t = ttftRes[`native-${isa}`]!;
    log(`native-${isa} | ${fmt(d.tokensPerS, 0)} | ${fmt(d.wallTokensPerS, 0)} | ${fmt(d.p50Ms, 3)} / ${fmt(d.p99Ms, 3)} | ${fmt(t.wallMs, 2)}, ${fmt(t.cpuMs, 2)}`);
  }
  log(`typescript | ${fmt(res.vsTypescript!.typescriptTokensPerS, 0)} | - | - | ${fmt(ttftRes.typescript.wallMs, 1)}, ${fmt(ttftRes.typescript.cpuMs, 1)}`);
  log(`vs TypeScript (A-B-B-A, median pair ratio): ${fmt(tsPair.ratio, 1)}×`);
  log('ratio' in vsTorch ? `vs ${vsTorch.torch} (A-B-B-A): ${fmt(vsTorch.ratio, 1)}× (PyTorch ${fmt(vsTorch.torchTokensPerS, 0)} tokens/s)` : `vs PyTorch: ${vsTorch.skipped}`);
  const vo = res.vsOnnxruntime;
  if ('skipped' in vo) {
    log(`vs onnxruntime-node: ${vo.skipped}`);
  } else {
    for (const kind of ORT_KINDS) {
      const cell = vo[kind];
      const what = kind === 'fp32' ? 'fp32 Gemm on the dequantised weights, int8 fake-quantised activations' : 'int8 MatMulInteger, dynamic uint8 activations';
      if (cell) {
        log(`vs ${vo.ort}, ${what} (A-B-B-A): ${fmt(cell.ratio, 1)}× (ORT ${fmt(cell.tokensPerS, 0)} tokens/s CPU time, ${fmt(cell.wallTokensPerS, 0)} wall; ` +
          `greedy tokens equal to ours for the first ${cell.sameTokens} of ${cell.tokensPerRun})`);
      } else {
        log(`vs onnxruntime-node ${kind}: failed: ${vo.failed?.[kind] ?? 'unknown'}`);
      }
    }
  }
  return res;
}

async function benchEncode(
  label: string,
  bytes: Uint8Array,
): Promise<{ native: EncodeResult[]; vga: EncodeResult; typescript: EncodeResult; vsTypescript: number; threads?: { fps1: number; fps2: number; speedup: number } }> {
  const addon = loadNativeAddon();
  const e = engineFrom(bytes, label, createNativeKernels(addon));
  const ts = engineFrom(bytes, label, tsKernels);
  const size = e.config.imageSize;
  log(`\n## image encode, ${label}: RGB8 frame → patch tokens V and episode vector e, ${e.kernels.name}`);
  const native = [1, 4, 8, 16].map((b) => encodeBatches(e, b, size, size, quick ? 3 : 7));
  const vga = encodeBatches(e, 8, 640, 480, quick ? 3 : 5);
  const pair = await abba(() => 1000 / encodeBatches(e, 8, size, size, 1).fps, () => 1000 / encodeBatches(ts, 8, size, size, 1).fps, 1);
  const typescript: EncodeResult = { batch: 8, width: size, height: size, fps: 1000 / median(pair.b), wallFps: NaN };
  log('batch | frame | frames/s (CPU time) | frames/s (wall)');
  for (const r of [...native, vga]) log(`${r.batch} | ${r.width}×${r.height} | ${fmt(r.fps, 0)} | ${fmt(r.wallFps, 0)}`);
  log(`typescript, batch 8 | ${size}×${size} | ${fmt(typescript.fps, 0)} | -`);
  log(`vs TypeScript at batch 8 (A-B-B-A): ${fmt(pair.ratio, 1)}×`);
  // Intra-op threads (model.threads, addon setThreads): wall time, since CPU time counts every thread.
  let threads: { fps1: number; fps2: number; speedup: number } | undefined;
  if (typeof addon.setThreads === 'function') {
    const wallMs = (n: number): number => {
      addon.setThreads!(n);
      const ms = 1000 / encodeBatches(e, 8, size, size, quick ? 3 : 5).wallFps;
      addon.setThreads!(1);
      return ms;
    };
    const t = await abba(() => wallMs(2), () => wallMs(1), quick ? 1 : 2);
    threads = { fps1: 1000 / median(t.b), fps2: 1000 / median(t.a), speedup: t.ratio };
    log(`threads, batch 8 | ${size}×${size} | 1 thread ${fmt(threads.fps1, 0)} → 2 threads ${fmt(threads.fps2, 0)} frames/s (wall, A-B-B-A) | ${fmt(threads.speedup, 2)}×`);
  }
  return { native, vga, typescript, vsTypescript: pair.ratio, ...(threads ? { threads } : {}) };
}

/** The 14M-sized model: --model-14m PATH, else generated once into the temp directory. */
function model14m(): { path: string; bytes: Uint8Array } {
  const given = arg('--model-14m');
  if (given) return { path: given, bytes: new Uint8Array(readFileSync(given)) };
  const path = join(tmpdir(), 'bitmar-stream-14m-random.gguf');
  if (existsSync(path)) return { path, bytes: new Uint8Array(readFileSync(path)) };
  const bytes = makeRandomStreamModel(BITMAR_14M_OPTIONS);
  writeFileSync(path, bytes);
  return { path, bytes };
}

async function main(): Promise<void> {
  const addon = loadNativeAddon();
  const mach = machineInfo(addon);
  log(`# bitmar-node bench (${quick ? 'quick' : 'full'}) — ${mach.date}`);
  log(`cpu: ${mach.cpu}, ${mach.cores} cores; ${mach.caches}`);
  log(`flags: ${mach.flags}`);
  log(`compiler: ${mach.compiler}; node ${mach.node} (V8 ${mach.v8}); commit ${mach.commit}`);
  log(`kernels: ${mach.isas.join(', ')} (default ${mach.isa}); 1 thread; clock ${mach.clockGhz.toFixed(2)} GHz (dependent add chain) → peak ${mach.peakGmacs.toFixed(0)} GMAC/s at 64 int8 MAC/cycle; load average at start ${mach.loadAvg.join(' ')}`);
  const ort = skipOrt ? 'skipped: --skip-ort' : loadOnnxruntime();
  log(`onnxruntime: ${typeof ort === 'string' ? ort : `${ortLabel(ort)}; generated ONNX models cached in ${ONNX_CACHE}`}`);
  const result: Record<string, unknown> = { machine: mach, quick, onnxruntime: typeof ort === 'string' ? { skipped: ort } : ortLabel(ort) };

  if (only.has('kernels')) {
    log('\n## ternary BitLinear kernels (int8 per-token scheme), GMAC/s and ms per call (CPU time)');
    const shapes = quick ? [BITMAR_SHAPES[0]!, BITMAR_SHAPES[3]!, BITMAR_SHAPES[5]!, GENERIC_SHAPES[1]!] : [...BITMAR_SHAPES, ...GENERIC_SHAPES];
    const rows: KernelRow[] = await benchKernels(addon, shapes, quick ? [1, 16] : [1, 4, 16, 64], {
      quick, scheme: 'bitlinearI8', tsMs: new Set([1]), peakGmacs: mach.peakGmacs, log, ...(typeof ort === 'string' ? {} : { ort }),
    });
    result.kernels = rows;
  }

  const defPath = [join(ROOT, 'models', 'bitmar-stream-shapes.gguf'), join(ROOT, 'models', 'bitmar-stream-random.gguf')].find((p) => existsSync(p));
  const chosen = arg('--model') ?? defPath;
  if (only.has('decode')) {
    const models: ModelResult[] = [];
    if (chosen) models.push(await benchModel('default model', chosen, new Uint8Array(readFileSync(chosen)), chosen, ort));
    const m14 = model14m();
    models.push(await benchModel('BitMar-14M-sized random model', m14.path, m14.bytes, m14.path, ort));
    result.decode = models;
  }
  if (only.has('encode') && chosen) result.encode = await benchEncode('default model', new Uint8Array(readFileSync(chosen)));

  const out = arg('--out') ?? join(ROOT, 'bench', 'results', `bench-${mach.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  log(`\nwrote ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
