// Kernel benchmark: ternary GEMV/GEMM GMAC/s of the native ISAs and the TypeScript path.
//   node --import tsx bench/kernels.ts [--quick] [--scheme i8|u8] [--ts-m 1,4]
// Shapes: square 512..3072 and the output layer 128×50,257 (rows × cols = 50,257 × 128), M = 1, 4, 16, 64.
// Timing (shared 2-core machine, docs/performance.md "How to measure"): every sample reports process
// CPU time (the thread is often descheduled; wall time is shown alongside). Native vs TypeScript is
// interleaved A-B-B-A in this process and summarised as the median of per-pair ratios. Peak: the
// addon's dependent add chain gives the clock; % of peak uses 64 int8 MACs a cycle (two 32-byte
// vpmaddubsw or vpdpbusd a cycle on Zen 3/4).
import { execSync } from 'node:child_process';
import { cpuUsage, hrtime } from 'node:process';

import type { Kernels, TernaryMatrix } from '../src/model/kernels.js';
import { tsKernels } from '../src/model/kernels-ts.js';
import { createNativeKernels, loadNativeAddon } from '../src/model/kernels-native.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const argValue = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : dflt;
};
const scheme = argValue('--scheme', 'i8') === 'u8' ? 'bitlinearU8' : 'bitlinearI8';
const tsMs = new Set(argValue('--ts-m', '1,4').split(',').map(Number));
const MACS_PER_CYCLE = 64;

const SHAPES: ReadonlyArray<readonly [rows: number, cols: number]> = quick
  ? [[1024, 1024], [50257, 128]]
  : [[512, 512], [1024, 1024], [2048, 2048], [3072, 3072], [50257, 128]];
const MS = quick ? [1, 16] : [1, 4, 16, 64];

function randomCodes(rows: number, cols: number): Uint8Array {
  const rb = (cols + 3) >> 2;
  const c = new Uint8Array(rows * rb);
  let s = 12345;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < rb * 4; j++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const code = j < cols ? (s >>> 16) % 3 : 1;
      c[r * rb + (j >> 2)]! |= code << (2 * (j & 3));
    }
  }
  return c;
}

interface Sample {
  cpuMs: number;
  wallMs: number;
}

/** Runs `fn` `reps` times; returns CPU and wall milliseconds per call. */
function sample(fn: () => void, reps: number): Sample {
  const c0 = cpuUsage();
  const t0 = hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  const wall = Number(hrtime.bigint() - t0) / 1e6;
  const c = cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1e3 / reps, wallMs: wall / reps };
}

/** Repetitions so that one sample takes about `targetMs` of CPU. */
function repsFor(fn: () => void, targetMs: number): number {
  fn();
  const one = sample(fn, 1).cpuMs || 0.001;
  return Math.max(1, Math.round(targetMs / one));
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function bench(k: Kernels, w: TernaryMatrix, x: Float32Array, m: number, y: Float32Array): () => void {
  return () => k[scheme](w, x, m, y);
}

const addon = loadNativeAddon();
const info = addon.kernelInfo();
const ghz = Math.max(...[0, 1, 2].map(() => addon.benchClockGhz(25e6)));
const peak = ghz * MACS_PER_CYCLE;
let flags = '';
try {
  flags = execSync("lscpu | grep -o -E 'avx2|avx512_vnni|avx_vnni|avx512f' | sort -u | tr '\\n' ' '", { encoding: 'utf8' }).trim();
} catch {
  flags = '?';
}
console.log(`bitmar kernels bench — scheme ${scheme}, node ${process.version}, ISAs ${info.available.join(',')} (default ${info.isa})`);
console.log(`cpu flags: ${flags}; clock ${ghz.toFixed(2)} GHz (dependent add chain); peak ${peak.toFixed(0)} GMAC/s at ${MACS_PER_CYCLE} MAC/cycle; 1 thread`);
console.log('GMAC/s and ms are per call from CPU time (wall in brackets); vs-ts = median of A-B-B-A pair ratios\n');

const natives = info.available.map((isa) => createNativeKernels(addon, isa));
const header = ['shape rows×cols', 'M', ...natives.map((n) => n.name), '% peak', 'typescript', 'vs-ts'];
console.log(header.join(' | '));
for (const [rows, cols] of SHAPES) {
  const codes = randomCodes(rows, cols);
  const ws = natives.map((n) => n.packTernary(codes, rows, cols, 0.01));
  const runTs = [...MS].some((m) => tsMs.has(m));
  const wt = runTs ? tsKernels.packTernary(codes, rows, cols, 0.01) : null;
  for (const m of MS) {
    const x = new Float32Array(m * cols).map((_, i) => Math.sin(i * 0.37) * 3);
    const y = new Float32Array(m * rows);
    const macs = rows * cols * m;
    const cells: string[] = [];
    let best = 0;
    for (let i = 0; i < natives.length; i++) {
      const fn = bench(natives[i]!, ws[i]!, x, m, y);
      const reps = repsFor(fn, quick ? 10 : 25);
      const s = [0, 1, 2, 3, 4].map(() => sample(fn, reps));
      const cpu = median(s.map((v) => v.cpuMs));
      const wall = median(s.map((v) => v.wallMs));
      const gmacs = macs / cpu / 1e6;
      if (i === 0) best = gmacs;
      cells.push(`${gmacs.toFixed(1)} GMAC/s ${cpu.toFixed(4)} ms [${wall.toFixed(4)}]`);
    }
    let tsCell = '-';
    let ratioCell = '-';
    if (wt && tsMs.has(m)) {
      // A-B-B-A: A = default native ISA, B = TypeScript; ratio = TS time / native time per pair.
      const a = bench(natives[0]!, ws[0]!, x, m, y);
      const b = bench(tsKernels, wt, x, m, y);
      const repsA = repsFor(a, 10);
      const ratios: number[] = [];
      const tsTimes: number[] = [];
      for (let p = 0; p < (quick ? 2 : 3); p++) {
        const a1 = sample(a, repsA).cpuMs;
        const b1 = sample(b, 1).cpuMs;
        const b2 = sample(b, 1).cpuMs;
        const a2 = sample(a, repsA).cpuMs;
        ratios.push(b1 / a1, b2 / a2);
        tsTimes.push(b1, b2);
      }
      const tsMsCall = median(tsTimes);
      tsCell = `${(macs / tsMsCall / 1e6).toFixed(2)} GMAC/s ${tsMsCall.toFixed(2)} ms`;
      ratioCell = `${median(ratios).toFixed(0)}×`;
    }
    console.log([`${rows}×${cols}`, String(m), ...cells, `${((100 * best) / peak).toFixed(0)}%`, tsCell, ratioCell].join(' | '));
  }
}
