// Kernels.conv3x3Gelu (the convolutional stem's layer, docs/bitmar-stream.md §3): the TypeScript
// kernel is its contract (conv.ts im2col + matmulF32 + gelu) and matches an independent fp64 direct
// convolution; every native ISA this machine has (native/conv/, a direct convolution with a fast GELU
// that proves each result or falls back to V8's tanh) equals it BIT-EXACTLY on random shapes (odd
// sides, strides 1–3, cin 1/3/5/16, cout 1/5/9/16/32/33/40, with and without bias, inputs up to the
// GELU tail) and on GELU sweeps through the identity convolution (every kind of fp32 value, dense
// grids over the knee and the steep negative tail); BITMAR_KERNELS picks the ISA the engine gets;
// test/native/conv_test.cc runs every ISA against the scalar one natively and the NEON path under
// qemu-aarch64.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { conv3x3OutSize } from '../../src/model/engine/conv.js';
import type { Kernels } from '../../src/model/kernels.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { createNativeKernels } from '../../src/model/kernels-native.js';
import { rng, tryLoadNativeAddon } from '../helpers/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function randomF32(rand: () => number, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

function firstDiff(got: Float32Array, want: Float32Array): string {
  const gu = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wu = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (gu[i] !== wu[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      return `element ${i}: ${got[i]} (0x${gu[i]!.toString(16)}) vs typescript ${want[i]} (0x${wu[i]!.toString(16)})`;
    }
  }
  return '';
}

/** The output of one conv3x3Gelu call (pre-filled with NaN; 64 guard floats behind it must stay untouched). */
function conv(k: Kernels, x: Float32Array, H: number, W: number, cin: number, w: Float32Array, b: Float32Array | null, cout: number, s: number): Float32Array {
  const n = conv3x3OutSize(H, s) * conv3x3OutSize(W, s) * cout;
  const buf = new Float32Array(n + 64).fill(NaN);
  buf.fill(-12345, n);
  k.conv3x3Gelu(x, H, W, cin, w, b, cout, s, buf.subarray(0, n));
  for (let i = n; i < n + 64; i++) if (buf[i] !== -12345) assert.fail(`${k.name} wrote behind the output (float ${i - n} past its end)`);
  return buf.subarray(0, n);
}

// [H, W, cin, cout, stride]
const SHAPES: readonly (readonly [number, number, number, number, number])[] = [
  [64, 64, 3, 16, 1], [64, 64, 16, 32, 2], // the stem of bitmar-stream (S = 64, C = [16, 32])
  [1, 1, 3, 16, 1], [1, 1, 16, 32, 2], [2, 2, 1, 1, 2], [3, 3, 3, 5, 1], [5, 7, 3, 5, 1], [7, 5, 3, 5, 2], [5, 7, 16, 9, 2],
  [9, 8, 5, 16, 2], [1, 9, 3, 16, 1], [9, 1, 16, 32, 2], [8, 7, 5, 4, 3], [11, 9, 16, 32, 1], [13, 17, 3, 16, 1], [17, 13, 16, 32, 2],
  [15, 15, 16, 33, 2], [10, 12, 3, 40, 1], [12, 10, 1, 1, 1], [33, 31, 3, 16, 1], [31, 33, 16, 32, 2], [6, 9, 16, 16, 3],
];

/** Outputs of a direct fp64 convolution + the fp64 GELU (an independent reference for the TS kernel). */
function directConvGelu(x: Float32Array, H: number, W: number, cin: number, w: Float32Array, b: Float32Array, cout: number, s: number): Float64Array {
  const OH = Math.floor((H - 1) / s) + 1;
  const OW = Math.floor((W - 1) / s) + 1;
  const out = new Float64Array(OH * OW * cout);
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++)
      for (let o = 0; o < cout; o++) {
        let acc = b[o]!;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const iy = s * oy + ky - 1;
            const ix = s * ox + kx - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (let c = 0; c < cin; c++) acc += w[o * 9 * cin + (ky * 3 + kx) * cin + c]! * x[(iy * W + ix) * cin + c]!;
          }
        out[(oy * OW + ox) * cout + o] = 0.5 * acc * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (acc + 0.044715 * acc ** 3)));
      }
  return out;
}

/** fp32 values for the GELU sweeps: special values, dense grids over the knee and the tail, random bits. */
function geluInputs(rand: () => number): Float32Array {
  const v: number[] = [0, -0, 1e-45, -1e-45, 1.1754943508222875e-38, -1.1754943508222875e-38, 1e-30, -1e-30, 4.7e-9, -4.7e-9, 1, -1,
    3.4028234663852886e38, -3.4028234663852886e38, 1e19, -1e19, 7.7, -7.7, 7.69, -7.69, 7.71, -7.71, 22, -22, 0.5, -0.5];
  for (let x = -12; x <= 12; x += 1 / 2048) v.push(x);
  // the steep tail, where 1 + tanh cancels and the native kernel falls back to V8's tanh: every 16th fp32
  const tail = new Float32Array([-9]);
  const bits = new Int32Array(tail.buffer);
  while (tail[0]! < -2.5) {
    v.push(tail[0]!);
    bits[0]! -= 16;
  }
  const u = new Uint32Array(1);
  const f = new Float32Array(u.buffer);
  for (let i = 0; i < 200_000; i++) {
    u[0] = Math.floor(rand() * 2 ** 32);
    if (Number.isFinite(f[0]!)) v.push(f[0]!); // non-finite values would poison the neighbours' 0·x
  }
  for (let i = 0; i < 200_000; i++) v.push((rand() * 2 - 1) * 8);
  return Float32Array.from(v);
}

/**
 * conv3x3Gelu with the 3×3 kernel that is 1 at the centre over a 1-channel image holding xs (1024
 * wide, zero-padded): out = GELU(x) pixel by pixel (the neighbours add 0·x = ±0, finite x only).
 */
function geluThroughConv(k: Kernels, xs: Float32Array): Float32Array {
  const w = new Float32Array(9);
  w[4] = 1;
  const W = Math.min(xs.length, 1024);
  const H = Math.ceil(xs.length / W);
  const img = new Float32Array(H * W);
  img.set(xs);
  return conv(k, img, H, W, 1, w, null, 1, 1).subarray(0, xs.length);
}

const { addon, addonError } = tryLoadNativeAddon();
const hasConv = addon !== null && typeof addon.conv3x3Gelu === 'function';
const isas = hasConv ? addon!.kernelInfo().available : [];

describe('Kernels.conv3x3Gelu', function () {
  this.timeout(300_000);

  describe('typescript (the contract)', () => {
    it('matches a direct fp64 convolution + GELU (≤ 1e-6 relative to the largest output)', () => {
      const rand = rng(3);
      for (const [H, W, cin, cout, s] of SHAPES.slice(2, 12)) {
        const x = randomF32(rand, H * W * cin, 1);
        const w = randomF32(rand, cout * 9 * cin, 0.5);
        const b = randomF32(rand, cout, 0.5);
        const got = conv(tsKernels, x, H, W, cin, w, b, cout, s);
        const want = directConvGelu(x, H, W, cin, w, b, cout, s);
        let m = 0;
        let top = 0;
        want.forEach((v, i) => {
          m = Math.max(m, Math.abs(got[i]! - v));
          top = Math.max(top, Math.abs(v));
        });
        assert.ok(m <= 1e-6 * Math.max(top, 1e-3), `${H}×${W}×${cin}→${cout} s${s}: max error ${m}`);
      }
    });

    it('writes exactly OH·OW·cout floats and reads x through a subarray', () => {
      const rand = rng(4);
      const x = randomF32(rand, 5 * 7 * 3 + 4, 1);
      const w = randomF32(rand, 5 * 27, 0.5);
      const out = new Float32Array(4 * 3 * 5 + 2).fill(-1);
      tsKernels.conv3x3Gelu(x.subarray(4), 5, 7, 3, w, null, 5, 2, out);
      assert.equal(out[out.length - 2], -1);
      assert.equal(out[out.length - 1], -1);
      assert.equal(firstDiff(out.subarray(0, 60), conv(tsKernels, x.slice(4), 5, 7, 3, w, null, 5, 2)), '');
    });

    it('checks its arguments (RangeError)', () => {
      const x = new Float32Array(5 * 5 * 3);
      const w = new Float32Array(4 * 27);
      const out = new Float32Array(3 * 3 * 4);
      assert.throws(() => tsKernels.conv3x3Gelu(x, 5, 5, 3, w, null, 4, 0, out), /stride must be a positive integer/);
      assert.throws(() => tsKernels.conv3x3Gelu(x, 5, 5.5, 3, w, null, 4, 2, out), /width must be a positive integer/);
      assert.throws(() => tsKernels.conv3x3Gelu(x.subarray(1), 5, 5, 3, w, null, 4, 2, out), /x holds 74 floats/);
      assert.throws(() => tsKernels.conv3x3Gelu(x, 5, 5, 3, w.subarray(1), null, 4, 2, out), /w holds 107 floats/);
      assert.throws(() => tsKernels.conv3x3Gelu(x, 5, 5, 3, w, new Float32Array(3), 4, 2, out), /bias holds 3 floats/);
      assert.throws(() => tsKernels.conv3x3Gelu(x, 5, 5, 3, w, null, 4, 2, out.subarray(1)), /out holds 35 floats/);
      const shared = new Float32Array(200);
      assert.throws(() => tsKernels.conv3x3Gelu(shared, 5, 5, 3, w, null, 4, 2, shared.subarray(74)), /out must not overlap x or w/);
      tsKernels.conv3x3Gelu(shared, 5, 5, 3, w, null, 4, 2, shared.subarray(75)); // adjacent is fine
    });
  });

  describe('native', function () {
    before(function () {
      if (!hasConv) {
        console.log(`      (skipped: ${addon ? 'this addon has no conv3x3Gelu (an older build)' : addonError}; build it with \`node tools/build-addon.mjs\`)`);
        this.skip();
      }
    });

    for (const isa of isas) {
      describe(`native-${isa} equals TypeScript bit for bit`, () => {
        let nk: Kernels;
        before(() => {
          nk = createNativeKernels(addon!, isa);
        });

        it(`${SHAPES.length} shapes × 3 input scales, with and without bias`, () => {
          const rand = rng(11);
          for (const [H, W, cin, cout, s] of SHAPES) {
            for (const scale of [1, 4, 16]) {
              // scale 16: outputs far into both GELU tails (exact ±1 tanh, and the fallback region)
              const x = randomF32(rand, H * W * cin, scale);
              const w = randomF32(rand, cout * 9 * cin, 0.5);
              const b = randomF32(rand, cout, 1);
              for (const bias of [b, null]) {
                const d = firstDiff(conv(nk, x, H, W, cin, w, bias, cout, s), conv(tsKernels, x, H, W, cin, w, bias, cout, s));
                if (d) assert.fail(`${H}×${W}×${cin}→${cout} stride ${s} scale ${scale} bias ${bias !== null}: ${d}`);
              }
            }
          }
        });

        it('random shapes: sides 1–40, cin 1–20, cout 1–48, strides 1–3', () => {
          const rand = rng(12);
          for (let i = 0; i < 60; i++) {
            const [H, W] = [1 + Math.floor(rand() * 40), 1 + Math.floor(rand() * 40)];
            const cin = 1 + Math.floor(rand() * 20);
            const cout = 1 + Math.floor(rand() * 48);
            const s = 1 + Math.floor(rand() * 3);
            const x = randomF32(rand, H * W * cin, 1 + rand() * 4);
            const w = randomF32(rand, cout * 9 * cin, 0.5);
            const b = i % 2 ? randomF32(rand, cout, 1) : null;
            const d = firstDiff(conv(nk, x, H, W, cin, w, b, cout, s), conv(tsKernels, x, H, W, cin, w, b, cout, s));
            if (d) assert.fail(`case ${i}: ${H}×${W}×${cin}→${cout} stride ${s}: ${d}`);
          }
        });

        it('GELU sweep through the identity convolution (special values, the knee, the tail, random fp32 bits)', () => {
          const xs = geluInputs(rng(13));
          const d = firstDiff(geluThroughConv(nk, xs), geluThroughConv(tsKernels, xs));
          if (d) assert.fail(d);
          // ±inf and NaN, each alone (1×1 image: no neighbours)
          for (const v of [Infinity, -Infinity, NaN]) {
            const one = Float32Array.of(v);
            const dd = firstDiff(geluThroughConv(nk, one), geluThroughConv(tsKernels, one));
            if (dd) assert.fail(`${v}: ${dd}`);
          }
        });

        it('reads subarrays, writes exactly OH·OW·cout floats', () => {
          const rand = rng(14);
          const backing = randomF32(rand, 9 * 11 * 16 + 3, 2);
          const x = backing.subarray(3);
          const w = randomF32(rand, 32 * 144, 0.5);
          const out = new Float32Array(5 * 6 * 32 + 1).fill(-1);
          nk.conv3x3Gelu(x, 9, 11, 16, w, null, 32, 2, out);
          assert.equal(out[out.length - 1], -1);
          assert.equal(firstDiff(out.subarray(0, 5 * 6 * 32), conv(tsKernels, x.slice(), 9, 11, 16, w, null, 32, 2)), '');
        });
      });
    }

    it('throws TypeError/RangeError with code BITMAR_ERR_NATIVE_ARGUMENT, never aborts', () => {
      const nk = createNativeKernels(addon!);
      const coded = (ctor: ErrorConstructor) => (e: unknown) => e instanceof ctor && (e as { code?: string }).code === 'BITMAR_ERR_NATIVE_ARGUMENT';
      const x = new Float32Array(5 * 5 * 3);
      const w = new Float32Array(4 * 27);
      const out = new Float32Array(3 * 3 * 4);
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 3, w, null, 4, 0, out), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x.subarray(1), 5, 5, 3, w, null, 4, 2, out), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 3, w.subarray(1), null, 4, 2, out), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 3, w, new Float32Array(3), 4, 2, out), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 3, w, null, 4, 2, out.subarray(1)), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 5000, w, null, 4, 2, out), coded(RangeError));
      assert.throws(() => nk.conv3x3Gelu(x as unknown as Float32Array, 5, 5, 3, new Float64Array(108) as unknown as Float32Array, null, 4, 2, out), coded(TypeError));
      const shared = new Float32Array(200);
      assert.throws(() => nk.conv3x3Gelu(shared, 5, 5, 3, w, null, 4, 2, shared.subarray(74)), coded(RangeError));
      nk.conv3x3Gelu(shared, 5, 5, 3, w, null, 4, 2, shared.subarray(75)); // adjacent is fine
      assert.throws(() => nk.conv3x3Gelu(x, 5, 5, 3, shared, null, 4, 2, shared.subarray(100)), coded(RangeError));
    });

    it('BITMAR_KERNELS picks the ISA the engine convolves with, every one giving the TypeScript bits', () => {
      const rand = rng(15);
      const [H, W, cin, cout, s] = [64, 64, 16, 32, 2];
      const x = randomF32(rand, H * W * cin, 3);
      const w = randomF32(rand, cout * 9 * cin, 0.5);
      const b = randomF32(rand, cout, 1);
      const out = conv(tsKernels, x, H, W, cin, w, b, cout, s);
      const want = createHash('sha256').update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)).digest('hex');
      const data = join(mkdtempSync(join(tmpdir(), 'bitmar-conv-')), 'xwb.f32');
      writeFileSync(data, Buffer.concat([x, w, b].map((a) => Buffer.from(a.buffer))));
      const script = `import { loadKernels } from ${JSON.stringify(join(root, 'src/model/kernels.ts'))};
        import { createHash } from 'node:crypto';
        import { readFileSync } from 'node:fs';
        const all = new Float32Array(new Uint8Array(readFileSync(${JSON.stringify(data)})).buffer);
        const x = all.subarray(0, ${x.length}), w = all.subarray(${x.length}, ${x.length + w.length}), b = all.subarray(${x.length + w.length});
        const k = loadKernels('native').kernels;
        const out = new Float32Array(${out.length});
        k.conv3x3Gelu(x, ${H}, ${W}, ${cin}, w, b, ${cout}, ${s}, out);
        console.log(k.name + ' ' + createHash('sha256').update(new Uint8Array(out.buffer)).digest('hex'));`;
      for (const isa of isas) {
        const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          cwd: root, env: { ...process.env, BITMAR_KERNELS: isa }, encoding: 'utf8',
        });
        assert.equal(r.stdout.trim(), `native-${isa} ${want}`, r.stderr);
      }
    });
  });

  describe('test/native/conv_test.cc: every ISA against the scalar kernel, natively and under qemu-aarch64', function () {
    const srcs = ['test/native/conv_test.cc', 'native/conv/scalar.cc', 'native/activation/scalar.cc'];
    const flags = ['-std=c++17', '-O2', '-ffp-contract=off', '-fno-math-errno', '-Inative'];

    it('x64: avx2 and avx512-vnni (those this CPU has) equal scalar', function () {
      if (process.arch !== 'x64' || spawnSync('sh', ['-c', 'command -v g++']).status !== 0) this.skip();
      const dir = mkdtempSync(join(tmpdir(), 'bitmar-conv-'));
      const objs: string[] = [];
      const isaFiles: [string, string[]][] = [
        ['native/conv/avx2.cc', ['-mavx2', '-mfma']],
        ['native/activation/avx2.cc', ['-mavx2', '-mfma']],
        ['native/conv/avx512-vnni.cc', ['-mavx2', '-mfma', '-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512vnni']],
        ['native/activation/avx512-vnni.cc', ['-mavx2', '-mfma', '-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512vnni']],
      ];
      for (const [i, [src, isaFlags]] of [...srcs.map((s) => [s, []] as [string, string[]]), ...isaFiles].entries()) {
        const o = join(dir, `${i}.o`);
        const cc = spawnSync('g++', [...flags, ...isaFlags, '-c', src, '-o', o], { cwd: root, encoding: 'utf8' });
        assert.equal(cc.status, 0, cc.stderr);
        objs.push(o);
      }
      const exe = join(dir, 'conv_test');
      const ld = spawnSync('g++', ['-o', exe, ...objs], { encoding: 'utf8' });
      assert.equal(ld.status, 0, ld.stderr);
      const run = spawnSync(exe, [], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^PASS isas=.*scalar cases=\d+/);
    });

    it('aarch64: neon equals scalar (qemu-aarch64)', function () {
      const cxx = '/usr/bin/aarch64-linux-gnu-g++';
      const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
      if (!existsSync(cxx) || !qemu) {
        console.log(`      (skipped: needs ${cxx} and qemu-aarch64; Debian: apt-get install g++-aarch64-linux-gnu qemu-user)`);
        this.skip();
      }
      const exe = join(mkdtempSync(join(tmpdir(), 'bitmar-conv-neon-')), 'conv_test');
      const cc = spawnSync(cxx, [...flags, '-march=armv8.2-a+dotprod', '-static', '-o', exe, ...srcs, 'native/conv/neon.cc'], { cwd: root, encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      const run = spawnSync(qemu, [exe], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^PASS isas=neon,scalar cases=\d+/);
    });
  });
});
