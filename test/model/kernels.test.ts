// Kernel contract tests: the TypeScript kernels against an independent fp64 reference (stated
// tolerance), then every native ISA this machine has against the TypeScript kernels BIT-EXACTLY,
// then the NEON path against scalar under qemu-aarch64 (test/native/ternary_test.cc).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { loadKernels, roundHalfEven, type Kernels, type TernaryMatrix } from '../../src/model/kernels.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { createNativeKernels, nativeAddonPath } from '../../src/model/kernels-native.js';
import { rng, tryLoadNativeAddon } from '../helpers/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---- deterministic data ----

/** Random t2-row-v1 codes; returns the codes and the ternary values they encode. */
function randomTernary(rand: () => number, rows: number, cols: number): { codes: Uint8Array; t: Int8Array } {
  const rb = (cols + 3) >> 2;
  const codes = new Uint8Array(rows * rb);
  const t = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < rb * 4; j++) {
      const c = j < cols ? Math.floor(rand() * 3) : 1; // trailing codes are 1 (t = 0), §5
      if (j < cols) t[r * cols + j] = c - 1;
      codes[r * rb + (j >> 2)]! |= c << (2 * (j & 3));
    }
  }
  return { codes, t };
}

type XKind = 'random' | 'zero' | 'constant' | 'positive' | 'wide' | 'ties';

function makeX(rand: () => number, n: number, cols: number, kind: XKind): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'zero': x[i] = 0; break;
      case 'constant': x[i] = 0.75; break;
      case 'positive': x[i] = 2 + (rand() * 2 - 1); break;
      case 'wide': x[i] = (rand() * 2 - 1) * (rand() < 0.125 ? 3000 : 1); break;
      // Exact .5 ties for both schemes, the rest being k/2: row 0 holds ±127.5 (u8: min −127.5,
      // max 127.5 → s = 1, zp = rhe(127.5) = 128), later rows hold ±127 (i8: s_x = 1).
      case 'ties': {
        const edge = i < cols ? 127.5 : 127;
        x[i] = i % cols === 0 ? edge : i % cols === 1 ? -edge : Math.round(rand() * 40 - 20) / 2;
        break;
      }
      default: x[i] = (rand() * 2 - 1) * 4;
    }
  }
  return x;
}

function randomF32(rand: () => number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

// ---- independent fp64 reference (bitmar-stream.md §2, bitmar-reference-spec.md §4) ----

/** Round half to even, written differently from roundHalfEven (floor and parity of the floor). */
function rheRef(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Dequantised BitLinear in fp64: y = Σ (q·s_x)(t·s_w) + b, q from the spec's formulas. */
function refBitlinear(scheme: 'i8' | 'u8', t: Int8Array, rows: number, cols: number, sw: number, x: Float32Array, m: number, bias: Float32Array | null): Float64Array {
  const f = Math.fround;
  const y = new Float64Array(m * rows);
  const xq = new Float64Array(m * cols); // dequantised activations
  if (scheme === 'i8') {
    for (let i = 0; i < m; i++) {
      let a = 0;
      for (let j = 0; j < cols; j++) a = Math.max(a, Math.abs(x[i * cols + j]!));
      const sx = f(Math.max(a, 1e-5) / 127);
      for (let j = 0; j < cols; j++) xq[i * cols + j] = Math.min(127, Math.max(-127, rheRef(f(x[i * cols + j]! / sx)))) * sx;
    }
  } else {
    const xc = Array.from(x.subarray(0, m * cols), (v) => Math.min(1e6, Math.max(-1e6, v)));
    const lo = Math.min(...xc);
    const hi = Math.max(...xc);
    if (hi - lo < 1e-8) {
      xc.forEach((v, k) => (xq[k] = v));
    } else {
      const s = f((hi - lo) / 255);
      const zp = Math.min(255, Math.max(0, rheRef(f(-lo / s))));
      xc.forEach((v, k) => (xq[k] = (Math.min(255, Math.max(0, rheRef(f(f(v / s) + zp)))) - zp) * s));
    }
  }
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let j = 0; j < cols; j++) acc += xq[i * cols + j]! * t[r * cols + j]! * sw;
      y[i * rows + r] = acc + (bias ? bias[r]! : 0);
    }
  }
  return y;
}

// ---- shapes ----

/** (rows, cols): odd sizes, single rows, 64- and 128-wide rows, rows not a multiple of 8. */
const SHAPES: ReadonlyArray<readonly [number, number]> = [
  [1, 1], [1, 128], [3, 5], [8, 16], [7, 17], [64, 64], [128, 128], [130, 64], [33, 127], [16, 129], [12, 300], [9, 1031], [40, 2051],
];
const MS = [1, 2, 3, 5, 16] as const;
const KINDS: readonly XKind[] = ['random', 'zero', 'constant', 'positive', 'wide', 'ties'];

describe('roundHalfEven', () => {
  it('rounds ties to even and everything else to nearest', () => {
    const cases: Array<[number, number]> = [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-1.5, -2], [-2.5, -2], [3.49, 3], [-3.51, -4], [126.5, 126], [127.5, 128], [0, 0]];
    for (const [v, want] of cases) assert.equal(roundHalfEven(v), want, `roundHalfEven(${v})`);
  });
});

describe('TypeScript kernels vs the fp64 reference', () => {
  // Tolerance: the fp64 reference and the kernel differ only in fp32 rounding of s_x·s_w, acc·scale and
  // + b: at most ~3 ulp of the larger of |acc·scale| and |b|. We allow 4·2⁻²⁴ relative to that, + 1e-30.
  const rand = rng(1);
  for (const [rows, cols] of SHAPES) {
    for (const scheme of ['i8', 'u8'] as const) {
      it(`${scheme} ${rows}×${cols}, m=3, within 4·2⁻²⁴ relative`, () => {
        const { codes, t } = randomTernary(rand, rows, cols);
        const w = tsKernels.packTernary(codes, rows, cols, 0.0421);
        for (const kind of KINDS) {
          const m = 3;
          const x = makeX(rand, m * cols, cols, kind);
          const bias = randomF32(rand, rows);
          const y = new Float32Array(m * rows);
          (scheme === 'i8' ? tsKernels.bitlinearI8 : tsKernels.bitlinearU8)(w, x, m, y, bias);
          const ref = refBitlinear(scheme, t, rows, cols, w.scale, x, m, bias);
          for (let k = 0; k < y.length; k++) {
            const mag = Math.max(Math.abs(ref[k]! - bias[k % rows]!), Math.abs(bias[k % rows]!));
            assert.ok(Math.abs(y[k]! - ref[k]!) <= 4 * 2 ** -24 * mag + 1e-30, `${kind} [${k}]: ${y[k]} vs ${ref[k]}`);
          }
        }
      });
    }
  }

  it('stays within the quantisation bound of the unquantised product (i8: |Δ| ≤ Σ|t|·s_w·s_x/2 + fp32 rounding)', () => {
    const [rows, cols, m] = [24, 200, 4];
    const { codes, t } = randomTernary(rand, rows, cols);
    const w = tsKernels.packTernary(codes, rows, cols, 0.05);
    const x = makeX(rand, m * cols, cols, 'random');
    const y = new Float32Array(m * rows);
    tsKernels.bitlinearI8(w, x, m, y);
    for (let i = 0; i < m; i++) {
      let a = 0;
      for (let j = 0; j < cols; j++) a = Math.max(a, Math.abs(x[i * cols + j]!));
      const sx = a / 127;
      for (let r = 0; r < rows; r++) {
        let exact = 0;
        let nz = 0;
        for (let j = 0; j < cols; j++) {
          exact += x[i * cols + j]! * t[r * cols + j]! * w.scale;
          nz += Math.abs(t[r * cols + j]!);
        }
        assert.ok(Math.abs(y[i * rows + r]! - exact) <= (nz * w.scale * sx) / 2 + 1e-5, `row ${r}`);
      }
    }
  });

  it('matmulF32 matches an fp64 dot product within k·2⁻²³ relative to Σ|x·w|', () => {
    const [n, k, m] = [13, 197, 3];
    const w = randomF32(rand, n * k);
    const x = randomF32(rand, m * k);
    const b = randomF32(rand, n);
    const y = new Float32Array(m * n);
    tsKernels.matmulF32(w, n, k, x, m, y, b);
    for (let i = 0; i < m; i++) {
      for (let r = 0; r < n; r++) {
        let s = b[r]!;
        let mag = Math.abs(b[r]!);
        for (let j = 0; j < k; j++) {
          s += x[i * k + j]! * w[r * k + j]!;
          mag += Math.abs(x[i * k + j]! * w[r * k + j]!);
        }
        assert.ok(Math.abs(y[i * n + r]! - s) <= k * 2 ** -23 * mag, `(${i}, ${r})`);
      }
    }
  });

  it('packTernary rejects a wrong length and a code of 3 with RangeError', () => {
    assert.throws(() => tsKernels.packTernary(new Uint8Array(3), 2, 5, 1), RangeError);
    assert.throws(() => tsKernels.packTernary(new Uint8Array([0b0111_0101, 0b01]), 1, 5, 1), RangeError); // code 3 at j=3
    assert.throws(() => tsKernels.packTernary(new Uint8Array([0x55]), 0, 4, 1), RangeError);
  });

  it('u8 pass-through (constant tensor) is x·(s_w t)ᵀ + b', () => {
    const w = tsKernels.packTernary(new Uint8Array([0b00_10_01_00]), 1, 4, 0.5); // t = −1, 0, 1, −1
    const y = new Float32Array(1);
    tsKernels.bitlinearU8(w, new Float32Array([3, 3, 3, 3]), 1, y, new Float32Array([0.25]));
    assert.equal(y[0], Math.fround((-3 + 3 - 3) * 0.5 + 0.25));
  });
});

// ---- native ----

const { addon, addonError } = tryLoadNativeAddon();

describe('native kernels', function () {
  before(function () {
    if (!addon) {
      console.log(`      (skipped: ${addonError}; build it with \`npx node-gyp rebuild -j 1\`)`);
      this.skip();
    }
  });

  it('reports its ISAs; scalar is always available', () => {
    const info = addon!.kernelInfo();
    assert.ok(info.available.includes('scalar'));
    assert.ok(info.available.includes(info.isa));
    console.log(`      native ISAs on this machine: ${info.available.join(', ')} (default ${info.isa})`);
  });

  const isas = addon ? addon.kernelInfo().available : [];
  for (const isa of isas) {
    describe(`native-${isa} equals TypeScript bit for bit`, () => {
      const rand = rng(7);
      let nk: Kernels;
      before(() => {
        nk = createNativeKernels(addon!, isa);
      });
      for (const [rows, cols] of SHAPES) {
        it(`${rows}×${cols}, m ∈ {${MS.join(',')}}, both schemes, ${KINDS.length} input kinds`, () => {
          const { codes } = randomTernary(rand, rows, cols);
          const wt = tsKernels.packTernary(codes, rows, cols, 0.0123);
          const wn = nk.packTernary(codes, rows, cols, 0.0123);
          for (const m of MS) {
            for (const kind of KINDS) {
              const x = makeX(rand, m * cols, cols, kind);
              const bias = m % 2 === 0 ? randomF32(rand, rows) : null;
              for (const op of ['bitlinearI8', 'bitlinearU8'] as const) {
                const yt = new Float32Array(m * rows);
                const yn = new Float32Array(m * rows).fill(NaN);
                tsKernels[op](wt, x, m, yt, bias);
                nk[op](wn, x, m, yn, bias);
                assertBitExact(yn, yt, `${op} ${kind} m=${m}`);
              }
            }
          }
        });
      }
      it('beyond 2^24 accumulators (fp64 epilogue): 9×70001 u8 and 3×140000 i8', () => {
        for (const [rows, cols, op] of [[9, 70001, 'bitlinearU8'], [3, 140000, 'bitlinearI8']] as const) {
          const { codes } = randomTernary(rand, rows, cols);
          const x = makeX(rand, cols, cols, 'positive'); // all positive: large same-sign accumulators
          const yt = new Float32Array(rows);
          const yn = new Float32Array(rows);
          tsKernels[op](tsKernels.packTernary(codes, rows, cols, 0.3), x, 1, yt);
          nk[op](nk.packTernary(codes, rows, cols, 0.3), x, 1, yn);
          assertBitExact(yn, yt, `${op} ${rows}×${cols}`);
        }
      });
      it('matmulF32 in the same summation order', () => {
        for (const [n, k, m] of [[1, 1, 1], [5, 7, 3], [16, 192, 4], [9, 17, 2], [33, 64, 5], [128, 192, 3]] as const) {
          const w = randomF32(rand, n * k);
          const x = randomF32(rand, m * k);
          const b = randomF32(rand, n);
          for (const bias of [b, null]) {
            const yt = new Float32Array(m * n);
            const yn = new Float32Array(m * n);
            tsKernels.matmulF32(w, n, k, x, m, yt, bias);
            nk.matmulF32(w, n, k, x, m, yn, bias);
            assertBitExact(yn, yt, `matmulF32 ${n}×${k} m=${m}`);
          }
        }
      });
    });
  }

  it('throws TypeError/RangeError with code BITMAR_ERR_NATIVE_ARGUMENT, never aborts', () => {
    const nk = createNativeKernels(addon!);
    const coded = (ctor: ErrorConstructor) => (e: unknown) => e instanceof ctor && (e as { code?: string }).code === 'BITMAR_ERR_NATIVE_ARGUMENT';
    assert.throws(() => nk.packTernary(new Uint8Array(3), 2, 5, 1), coded(RangeError));
    assert.throws(() => nk.packTernary(new Uint8Array([0b0111_0101, 0b01]), 1, 5, 1), coded(RangeError));
    assert.throws(() => addon!.packTernary(new Float32Array(2) as unknown as Uint8Array, 1, 5), coded(TypeError));
    const w = nk.packTernary(new Uint8Array([0x55, 0x55]), 1, 8, 1);
    assert.throws(() => nk.bitlinearI8(w, new Float32Array(7), 1, new Float32Array(1)), coded(RangeError));
    assert.throws(() => nk.bitlinearU8(w, new Float32Array(8), 1, new Float32Array(0)), coded(RangeError));
    assert.throws(() => nk.bitlinearI8(w, new Float32Array(8), 0, new Float32Array(1)), coded(RangeError));
    assert.throws(() => nk.bitlinearI8(w, new Float32Array(16), 1.5, new Float32Array(2)), coded(RangeError));
    assert.throws(() => addon!.bitlinearI8(0, {}, 1, new Float32Array(8), 1, new Float32Array(1), null), coded(TypeError));
    assert.throws(() => addon!.bitlinearI8(99, {}, 1, new Float32Array(8), 1, new Float32Array(1), null), coded(RangeError));
    assert.throws(() => nk.matmulF32(new Float32Array(5), 2, 3, new Float32Array(3), 1, new Float32Array(2)), coded(RangeError));
    assert.throws(() => addon!.isaIndex('avx9000'), coded(RangeError));
    assert.throws(() => tsKernels.bitlinearI8(w, new Float32Array(8), 1, new Float32Array(1)), TypeError); // foreign handle
  });

  it('honours BITMAR_KERNELS and rejects an ISA the machine lacks', () => {
    const probe = `const a = require(${JSON.stringify(nativeAddonPath())}); try { console.log(a.kernelInfo().isa) } catch (e) { console.log('ERR ' + e.code + ' ' + e.message) }`;
    const run = (v: string) => spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, BITMAR_KERNELS: v }, encoding: 'utf8' }).stdout.trim();
    assert.equal(run('scalar'), 'scalar');
    const bad = run('neon-dotprod-sve9');
    assert.match(bad, /^ERR BITMAR_ERR_NATIVE_ARGUMENT BITMAR_KERNELS=neon-dotprod-sve9 is not supported/);
  });

  it('loadKernels: auto picks native, typescript never loads it, a bad BITMAR_KERNELS falls back with a reason', () => {
    assert.match(loadKernels('auto').kernels.name, /^native-/);
    assert.equal(loadKernels('typescript').kernels.name, 'typescript');
    const script = `import { loadKernels } from ${JSON.stringify(join(root, 'src/model/kernels.ts'))};
      const a = loadKernels('auto'); console.log(a.kernels.name + '|' + a.fallbackReason);
      try { loadKernels('native'); } catch (e) { console.log(e.code); }`;
    const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root, env: { ...process.env, BITMAR_KERNELS: 'bogus' }, encoding: 'utf8',
    });
    const [auto, native] = out.stdout.trim().split('\n');
    assert.match(auto ?? '', /^typescript\|native kernels unavailable \(BITMAR_KERNELS=bogus .*npm rebuild/, out.stderr);
    assert.equal(native, 'BITMAR_ERR_NATIVE_UNAVAILABLE');
  });

  it('loads and computes in worker_threads (context-aware), same bits as the main thread', async () => {
    const rand = rng(3);
    const [rows, cols] = [24, 128];
    const { codes } = randomTernary(rand, rows, cols);
    const x = makeX(rand, cols, cols, 'random');
    const nk = createNativeKernels(addon!);
    const y = new Float32Array(rows);
    nk.bitlinearI8(nk.packTernary(codes, rows, cols, 0.5), x, 1, y);
    const src = `const { parentPort, workerData: d } = require('node:worker_threads');
      const a = require(d.path); const w = a.packTernary(d.codes, d.rows, d.cols);
      const y = new Float32Array(d.rows); a.bitlinearI8(a.isaIndex(a.kernelInfo().isa), w, 0.5, d.x, 1, y, null);
      parentPort.postMessage(y);`;
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<Float32Array>((resolve, reject) => {
            const wk = new Worker(src, { eval: true, workerData: { path: nativeAddonPath(), codes, rows, cols, x } });
            wk.once('message', resolve);
            wk.once('error', reject);
          }),
      ),
    );
    for (const r of results) assertBitExact(r, y, 'worker');
  });
});

function assertBitExact(got: Float32Array, want: Float32Array, what: string): void {
  const gu = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wu = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (gu[i] !== wu[i]) assert.fail(`${what}: element ${i} differs: native ${got[i]} vs typescript ${want[i]}`);
  }
}

describe('neon-dotprod vs scalar under qemu-aarch64 (test/native/ternary_test.cc)', function () {
  this.timeout(120_000);
  it('is bit-exact on every shape, m and input kind', function () {
    const cxx = '/usr/bin/aarch64-linux-gnu-g++';
    const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
    if (!existsSync(cxx) || !qemu) {
      console.log(`      (skipped: needs ${cxx} and qemu-aarch64; Debian: apt-get install g++-aarch64-linux-gnu qemu-user)`);
      this.skip();
    }
    const exe = join(mkdtempSync(join(tmpdir(), 'bitmar-neon-')), 'ternary_test');
    const srcs = [
      'test/native/ternary_test.cc', 'native/dispatch.cc', 'native/ternary/pack.cc', 'native/ternary/scalar.cc', 'native/ternary/bitlinear.cc',
      'native/ternary/neon-dotprod.cc', 'native/activation/scalar.cc', 'native/norm/scalar.cc', 'native/attention/scalar.cc', 'native/sample/scalar.cc',
      'native/image/scalar.cc', 'native/conv/scalar.cc', 'native/conv/neon.cc', 'native/thread-pool.cc',
    ];
    const cc = spawnSync(cxx, ['-std=c++17', '-O2', '-march=armv8.2-a+dotprod', '-ffp-contract=off', '-static', '-pthread', '-Inative', '-o', exe, ...srcs], { cwd: root, encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const run = spawnSync(qemu, [exe], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^PASS isas=neon-dotprod,scalar cases=\d+/);
  });
});
