// `npm run bench:callgrind`: instructions per multiply-add of the AVX2 GEMV, counted exactly by
// valgrind --tool=callgrind (repeatable, unlike wall time on a shared machine: docs/performance.md).
//   node --import tsx bench/callgrind.ts [--json FILE]
// Builds test/native/gemv-driver.cc with the kernel sources and the flags of binding.gyp into a
// temporary directory, then for each shape (M = 1) counts the instructions inside the ISA's gemm_i8
// (the kernel) and inside tq_bitlinear_i8 (activation quantisation + kernel + epilogue), divided by
// rows·cols·iterations. test/bench/callgrind-guard.test.ts runs the same measurement in CI.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Shapes measured (rows × cols, M = 1): generic, the output layer, and the 14M model's block matrices. */
export const CALLGRIND_SHAPES: ReadonlyArray<readonly [rows: number, cols: number]> = [
  [512, 512], [1024, 1024], [2048, 2048], [3072, 3072], [50257, 128], [128, 128], [512, 128], [128, 512],
];

export interface CallgrindRow {
  readonly shape: string;
  readonly iterations: number;
  /** Instructions per MAC inside the kernel (gemm_i8) and inside the whole BitLinear. */
  readonly kernel: number;
  readonly bitlinear: number;
}

/** Why callgrind cannot run here (one line), or null when valgrind and a C++ compiler are present. */
export function callgrindUnavailable(): string | null {
  if (process.arch !== 'x64') return `callgrind mode measures the AVX2 kernels; this is ${process.arch}`;
  if (spawnSync('sh', ['-c', 'command -v valgrind'], { encoding: 'utf8' }).stdout.trim() === '') return 'valgrind is not installed (Debian: apt-get install valgrind)';
  if (spawnSync('sh', ['-c', 'command -v ${CXX:-g++}'], { encoding: 'utf8' }).stdout.trim() === '') return 'no C++ compiler (g++)';
  return null;
}

/** Compiles the driver (ISA files with their own flags, as binding.gyp does); returns its path. */
export function buildDriver(dir: string): string {
  const cxx = process.env.CXX ?? 'g++';
  const base = ['-std=c++17', '-O3', '-fPIC', '-ffp-contract=off', '-fno-math-errno', '-g', '-pthread', `-I${join(ROOT, 'native')}`];
  const units: Array<[string, string[]]> = [
    ['test/native/gemv-driver.cc', []], ['native/dispatch.cc', []], ['native/ternary/pack.cc', []], ['native/ternary/bitlinear.cc', []],
    ['native/ternary/scalar.cc', []], ['native/activation/scalar.cc', []], ['native/norm/scalar.cc', []], ['native/attention/scalar.cc', []],
    ['native/sample/scalar.cc', []], ['native/image/scalar.cc', []], ['native/conv/scalar.cc', []], ['native/thread-pool.cc', []],
    ...['ternary', 'activation', 'norm', 'attention', 'sample', 'image', 'conv'].map((f): [string, string[]] => [`native/${f}/avx2.cc`, ['-mavx2', '-mfma']]),
    ...['ternary', 'activation', 'attention', 'conv'].map((f): [string, string[]] => [`native/${f}/avx512-vnni.cc`, ['-mavx2', '-mfma', '-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512vnni']]),
  ];
  const objs = units.map(([src, flags], i) => {
    const obj = join(dir, `${i}.o`);
    const r = spawnSync(cxx, [...base, ...flags, '-c', join(ROOT, src), '-o', obj], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`compiling ${src} failed:\n${r.stderr}`);
    return obj;
  });
  const exe = join(dir, 'gemv-driver');
  const r = spawnSync(cxx, [...objs, '-pthread', '-o', exe], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`linking the driver failed:\n${r.stderr}`);
  return exe;
}

/** Instructions inside functions matching `toggle` for one driver run (callgrind, exact). */
function countInstructions(exe: string, dir: string, toggle: string, args: readonly string[]): number {
  const out = join(dir, 'callgrind.out');
  const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, `--toggle-collect=${toggle}`, exe, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`valgrind failed: ${r.stderr.split('\n').slice(-5).join(' ')}`);
  const m = /^totals: (\d+)/m.exec(readFileSync(out, 'utf8'));
  if (!m) throw new Error('no totals line in the callgrind output');
  return Number(m[1]);
}

/** Measures instructions per MAC of `isa` (default avx2) for each shape at M = 1. */
export function measureCallgrind(shapes: ReadonlyArray<readonly [number, number]> = CALLGRIND_SHAPES, isa = 'avx2'): CallgrindRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-callgrind-'));
  try {
    const exe = buildDriver(dir);
    return shapes.map(([rows, cols]) => {
      const iterations = Math.min(2000, Math.max(3, Math.ceil(2e7 / (rows * cols))));
      const args = [isa, String(rows), String(cols), '1', String(iterations)];
      const macs = rows * cols * iterations;
      const kernel = countInstructions(exe, dir, `*tq_gemm_i8_${isa.replace('-', '')}*`, args) / macs;
      const bitlinear = countInstructions(exe, dir, 'bitmar::tq_bitlinear_i8*', args) / macs;
      return { shape: `${rows}x${cols}`, iterations, kernel, bitlinear };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const why = callgrindUnavailable();
  if (why) {
    console.log(`callgrind mode skipped: ${why}`);
    return;
  }
  console.log('instructions per MAC, AVX2 int8 GEMV (M = 1), valgrind --tool=callgrind (target ≤ 0.20)');
  console.log('shape (rows×cols) | iterations | kernel (gemm_i8) | BitLinear (quantise + kernel)');
  const rows = measureCallgrind();
  for (const r of rows) console.log(`${r.shape} | ${r.iterations} | ${r.kernel.toFixed(4)} | ${r.bitlinear.toFixed(4)}`);
  const i = process.argv.indexOf('--json');
  const out = i >= 0 ? process.argv[i + 1]! : join(ROOT, 'bench', 'results', `callgrind-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ isa: 'avx2', m: 1, rows }, null, 1)}\n`);
  console.log(`wrote ${out}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
