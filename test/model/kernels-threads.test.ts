// Intra-op threads of the native kernels (native/thread-pool.h, addon setThreads): every ISA this
// machine has gives bit-identical outputs for 1, 2, 3 and 4 threads on shapes large enough to be
// split (token tiles, row groups, output columns); the pool shuts down with its environment (a
// worker_thread, a whole process); bad thread counts are rejected with a clear error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

import { InferenceWorker } from '../../src/model/inference-worker.js';
import { loadKernels } from '../../src/model/kernels.js';
import { createNativeKernels, loadNativeAddon, nativeAddonPath, type NativeAddon } from '../../src/model/kernels-native.js';
import { rng } from '../helpers/native.js';

function randomCodes(rand: () => number, rows: number, cols: number): Uint8Array {
  const rb = (cols + 3) >> 2;
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) codes[r * rb + (j >> 2)]! |= Math.floor(rand() * 3) << (2 * (j & 3));
    for (let j = cols; j < rb * 4; j++) codes[r * rb + (j >> 2)]! |= 1 << (2 * (j & 3));
  }
  return codes;
}

function randomF32(rand: () => number, n: number, wide = false): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() * 2 - 1) * (wide && rand() < 0.1 ? 300 : 1);
  return x;
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) assert.fail(`${what}: element ${i} differs: ${got[i]} vs ${want[i]} (1 thread)`);
}

let addon: NativeAddon | null = null;
let addonError = '';
try {
  addon = loadNativeAddon();
  if (typeof addon.setThreads !== 'function') throw new Error('this addon predates setThreads (rebuild it)');
} catch (e) {
  addonError = e instanceof Error ? e.message : String(e);
  addon = null;
}

describe('native kernels: intra-op threads', function () {
  before(function () {
    if (!addon) {
      console.log(`      (skipped: ${addonError}; build it with \`node tools/build-addon.mjs\`)`);
      this.skip();
    }
  });
  after(() => addon?.setThreads?.(1));

  // Large enough (≥ 2^20 MACs; matmul ≥ 2^18) that the pool splits them: m = 1 and 4 split the row
  // groups (m = 1 straight into y, m = 4 through a per-thread buffer), 16 and 65 split token tiles.
  const ternaryShapes: Array<[rows: number, cols: number, m: number]> = [
    [4099, 300, 1], [1031, 260, 4], [517, 131, 16], [129, 200, 65], [37, 40, 65], [9, 17, 4],
  ];
  // m = 1 and 2 (< threads) split output columns; m ≥ threads splits tokens.
  const matmulShapes: Array<[n: number, k: number, m: number]> = [[1025, 300, 1], [515, 271, 2], [301, 97, 16], [203, 48, 65], [7, 5, 3]];

  const isas = addon ? addon.kernelInfo().available : [];
  for (const isa of isas) {
    it(`native-${isa}: bitlinearI8/U8 and matmulF32 give the same bits for 1, 2, 3 and 4 threads`, () => {
      const nk = createNativeKernels(addon!, isa);
      const rand = rng(isas.indexOf(isa) + 11);
      for (const [rows, cols, m] of ternaryShapes) {
        const w = nk.packTernary(randomCodes(rand, rows, cols), rows, cols, 0.37);
        const x = randomF32(rand, m * cols, true);
        const bias = rand() < 0.5 ? randomF32(rand, rows) : null;
        const want = { i8: new Float32Array(m * rows), u8: new Float32Array(m * rows) };
        addon!.setThreads!(1);
        nk.bitlinearI8(w, x, m, want.i8, bias);
        nk.bitlinearU8(w, x, m, want.u8, bias);
        for (const threads of [2, 3, 4]) {
          addon!.setThreads!(threads);
          const y = new Float32Array(m * rows).fill(NaN);
          nk.bitlinearI8(w, x, m, y, bias);
          assertSameBits(y, want.i8, `${isa} bitlinearI8 ${rows}×${cols} m=${m} threads=${threads}`);
          y.fill(NaN);
          nk.bitlinearU8(w, x, m, y, bias);
          assertSameBits(y, want.u8, `${isa} bitlinearU8 ${rows}×${cols} m=${m} threads=${threads}`);
        }
      }
      for (const [n, k, m] of matmulShapes) {
        const w = randomF32(rand, n * k);
        const x = randomF32(rand, m * k);
        const bias = rand() < 0.5 ? randomF32(rand, n) : null;
        const want = new Float32Array(m * n);
        addon!.setThreads!(1);
        nk.matmulF32(w, n, k, x, m, want, bias);
        for (const threads of [2, 3, 4]) {
          addon!.setThreads!(threads);
          const y = new Float32Array(m * n).fill(NaN);
          nk.matmulF32(w, n, k, x, m, y, bias);
          assertSameBits(y, want, `${isa} matmulF32 n=${n} k=${k} m=${m} threads=${threads}`);
        }
      }
      addon!.setThreads!(1);
    });
  }

  it('rejects thread counts that are not integers from 1 to 64', () => {
    for (const bad of [0, -1, 65, 1.5, NaN, Infinity, '2', undefined]) {
      assert.throws(
        () => (addon!.setThreads as (n: unknown) => void)(bad),
        (e: Error & { code?: string }) => e.code === 'BITMAR_ERR_NATIVE_ARGUMENT' && /^threads must be an integer from 1 to 64, got /.test(e.message),
        String(bad),
      );
    }
    addon!.setThreads!(64);
    assert.equal(addon!.kernelInfo().threads, 64);
    addon!.setThreads!(1);
    assert.equal(addon!.kernelInfo().threads, 1);
  });

  it('loadKernels passes model.threads to the addon; InferenceWorker rejects a bad count before loading', async () => {
    loadKernels('native', 3);
    assert.equal(addon!.kernelInfo().threads, 3);
    loadKernels('native');
    assert.equal(addon!.kernelInfo().threads, 1);
    for (const threads of [0, 65, 2.5]) {
      await assert.rejects(InferenceWorker.start({ modelPath: '/nonexistent.gguf', threads }), (e: Error & { code?: string }) => e.code === 'BITMAR_ERR_CONFIG_INVALID');
    }
  });

  // A worker_thread with its own pool of 4: runs a split call, returns the bits, and exits (its
  // environment's cleanup joins the pool's threads; a leaked or stuck one would hang the exit).
  const workerSrc = `const { parentPort, workerData: d } = require('node:worker_threads');
    const a = require(d.path); a.setThreads(4);
    const w = a.packTernary(d.codes, d.rows, d.cols);
    const y = new Float32Array(d.rows * d.m);
    for (let i = 0; i < 3; i++) a.bitlinearI8(a.isaIndex(a.kernelInfo().isa), w, 0.5, d.x, d.m, y, null);
    parentPort.postMessage({ y, threads: a.kernelInfo().threads });`;

  it('a worker_thread that sets 4 threads computes the same bits and exits cleanly', async () => {
    const rand = rng(5);
    const [rows, cols, m] = [1031, 260, 16];
    const codes = randomCodes(rand, rows, cols);
    const x = randomF32(rand, m * cols);
    const nk = createNativeKernels(addon!, undefined, 1);
    const want = new Float32Array(m * rows);
    nk.bitlinearI8(nk.packTernary(codes, rows, cols, 0.5), x, m, want);
    for (let round = 0; round < 3; round++) {
      const wk = new Worker(workerSrc, { eval: true, workerData: { path: nativeAddonPath(), codes, rows, cols, m, x } });
      const msg = await new Promise<{ y: Float32Array; threads: number }>((resolve, reject) => {
        wk.once('message', resolve);
        wk.once('error', reject);
      });
      assert.equal(msg.threads, 4);
      assertSameBits(msg.y, want, `worker round ${round}`);
      const code = await new Promise<number>((resolve) => wk.once('exit', resolve));
      assert.equal(code, 0);
    }
    // terminate() while the pool is parked: cleanup must still join it.
    const wk = new Worker(workerSrc, { eval: true, workerData: { path: nativeAddonPath(), codes, rows, cols, m, x } });
    await new Promise((resolve) => wk.once('message', resolve));
    assert.equal(await wk.terminate(), 1);
    assert.equal(addon!.kernelInfo().threads, 1, "a worker's setThreads leaves this environment's pool alone");
  });

  it('a process that sets 4 threads exits on its own', () => {
    const src = `const a = require(${JSON.stringify(nativeAddonPath())}); a.setThreads(4);
      const rows = 4099, cols = 300; const w = a.packTernary(new Uint8Array(rows * 75).fill(0x55), rows, cols);
      const x = new Float32Array(cols).map((_, i) => Math.sin(i)); const y = new Float32Array(rows);
      a.bitlinearI8(a.isaIndex('scalar'), w, 1, x, 1, y, null); a.setThreads(3); a.bitlinearI8(0, w, 1, x, 1, y, null);
      console.log('done', y[0]);`;
    const r = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, 'the process did not exit within 30 s');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^done 0\n$/);
  });
});
