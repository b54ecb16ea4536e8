// The native area resize (native/image/, Kernels.resizeAreaU8) against its contract,
// src/model/preprocess.ts resizeAreaU8, BIT-EXACTLY on every ISA this machine has: random and
// structured frames of many sizes (odd, 160×120 up to 1280×720, non-square, tall, 1×1, sizes that do
// not divide the frame, upscaling), output sides 16/32/64 and others, Buffers and subarrays, and the
// same errors for malformed frames. Also runs in a worker_thread (the inference worker's setting).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { isBitmarError } from '../../src/errors.js';
import type { Kernels } from '../../src/model/kernels.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { createNativeKernels } from '../../src/model/kernels-native.js';
import { resizeAreaU8 } from '../../src/model/preprocess.js';
import { rng, tryLoadNativeAddon } from '../helpers/native.js';

/** A frame whose bytes exercise the rounding: uniform noise, flat areas, 0/255 edges and gradients. */
function frame(rand: () => number, w: number, h: number, kind: number): Uint8Array {
  const a = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const k = (y * w + x) * 3 + c;
        switch (kind % 4) {
          case 0: a[k] = Math.floor(rand() * 256); break;
          case 1: a[k] = ((x >> 3) + (y >> 2)) % 2 === 0 ? 255 : 0; break; // hard edges, extremes
          case 2: a[k] = (x * 7 + y * 3 + c * 85) & 255; break; // gradients
          default: a[k] = rand() < 0.5 ? 127 + c : 128 - c; // values around the rounding half
        }
      }
    }
  }
  return a;
}

function firstDiff(got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return `byte ${i}: native ${got[i]} vs typescript ${want[i]}`;
  return '';
}

// [width, height] of the frames; every one is resized to every side in SIDES.
const FRAMES: readonly (readonly [number, number])[] = [
  [1, 1], [2, 1], [1, 7], [3, 5], [7, 3], [13, 11], [31, 17], [37, 23], [64, 64], [65, 63],
  [100, 100], [160, 120], [161, 121], [199, 101], [320, 240], [333, 777], [480, 640], [641, 479], [640, 480],
  [1000, 3], [3, 1000], [1280, 720], [1279, 719],
];
const SIDES = [16, 32, 64, 1, 7, 48, 100];

const { addon, addonError } = tryLoadNativeAddon();
const hasResize = addon !== null && typeof addon.resizeAreaU8 === 'function';
const isas = hasResize ? addon!.kernelInfo().available : [];

describe('Kernels.resizeAreaU8: native equals preprocess.ts bit for bit', function () {
  this.timeout(300_000);
  before(function () {
    if (!hasResize) {
      console.log(`      (skipped: ${addon ? 'this addon has no resizeAreaU8 (an older build)' : addonError}; build it with \`node tools/build-addon.mjs\`)`);
      this.skip();
    }
  });

  it('the TypeScript backend is preprocess.ts itself', () => {
    const rand = rng(1);
    const img = frame(rand, 37, 23, 0);
    assert.deepEqual(tsKernels.resizeAreaU8(img, 37, 23, 16), resizeAreaU8(img, 37, 23, 16));
  });

  for (const isa of isas) {
    describe(`native-${isa}`, () => {
      let nk: Kernels;
      before(() => {
        nk = createNativeKernels(addon!, isa);
      });

      it(`every frame size × side ${SIDES.join('/')} (${FRAMES.length * SIDES.length} cases, four kinds of content)`, () => {
        const rand = rng(0x1ea5e);
        let n = 0;
        for (const [w, h] of FRAMES) {
          // Large frames get one content kind per side (still four kinds across the sides).
          const img = frame(rand, w, h, n);
          for (const [si, size] of SIDES.entries()) {
            const src = w * h > 100_000 ? frame(rand, w, h, si) : img;
            const want = resizeAreaU8(src, w, h, size);
            const got = nk.resizeAreaU8(src, w, h, size);
            const d = firstDiff(got, want);
            if (d) assert.fail(`${w}×${h} → ${size}: ${d}`);
            n++;
          }
        }
      });

      it('random shapes and sides, including upscaling and sides that divide nothing', () => {
        const rand = rng(77);
        for (let i = 0; i < 120; i++) {
          const w = 1 + Math.floor(rand() * (i % 3 === 0 ? 700 : 90));
          const h = 1 + Math.floor(rand() * (i % 5 === 0 ? 500 : 90));
          const size = 1 + Math.floor(rand() * (i % 4 === 0 ? 200 : 70));
          const img = frame(rand, w, h, i);
          const d = firstDiff(nk.resizeAreaU8(img, w, h, size), resizeAreaU8(img, w, h, size));
          if (d) assert.fail(`case ${i}, ${w}×${h} → ${size}: ${d}`);
        }
      });

      it('reads a Buffer and a subarray at an odd offset; returns a fresh array each call', () => {
        const rand = rng(5);
        const w = 161, h = 121;
        const backing = new Uint8Array(w * h * 3 + 5);
        backing.set(frame(rand, w, h, 0), 3);
        const sub = backing.subarray(3, 3 + w * h * 3);
        const want = resizeAreaU8(sub, w, h, 32);
        assert.equal(firstDiff(nk.resizeAreaU8(sub, w, h, 32), want), '');
        const buf = Buffer.from(sub);
        const a = nk.resizeAreaU8(buf, w, h, 32);
        const b = nk.resizeAreaU8(buf, w, h, 32);
        assert.equal(firstDiff(a, want), '');
        assert.notEqual(a, b);
        assert.equal(a.length, 32 * 32 * 3);
      });

      it('throws what preprocess.ts throws for a malformed frame or side', () => {
        const bad = [
          () => nk.resizeAreaU8(new Uint8Array(10), 2, 2, 4),
          () => nk.resizeAreaU8(new Uint8Array(0), 0, 0, 4),
          () => nk.resizeAreaU8(new Uint8Array(12), 2.5, 2, 4),
        ];
        for (const f of bad) assert.throws(f, (e: unknown) => isBitmarError(e, 'BITMAR_ERR_IMAGE_SIZE'));
        assert.throws(() => nk.resizeAreaU8(new Uint8Array(12), 2, 2, 0), RangeError);
        assert.throws(() => nk.resizeAreaU8(new Uint8Array(12), 2, 2, 1.5), RangeError);
      });

      it('a side beyond the addon cap still gives the TypeScript bytes', () => {
        const img = frame(rng(9), 5, 3, 2);
        assert.equal(firstDiff(nk.resizeAreaU8(img, 5, 3, 2100), resizeAreaU8(img, 5, 3, 2100)), '');
      });
    });
  }

  it('the addon checks its own arguments (BITMAR_ERR_NATIVE_ARGUMENT)', () => {
    const a = addon!;
    const resize = a.resizeAreaU8!.bind(a);
    const isNativeArg = (e: unknown) => (e as { code?: unknown }).code === 'BITMAR_ERR_NATIVE_ARGUMENT';
    const out = new Uint8Array(16 * 16 * 3);
    assert.throws(() => resize(0, new Uint8Array(11), 2, 2, 16, out), isNativeArg); // wrong length
    assert.throws(() => resize(0, new Uint8Array(12), 2, 2, 16, new Uint8Array(10)), isNativeArg); // out too short
    assert.throws(() => resize(0, new Float32Array(12) as unknown as Uint8Array, 2, 2, 16, out), isNativeArg);
    assert.throws(() => resize(0, new Uint8Array(12), 2, 2, 4096, out), isNativeArg); // side over the cap
    assert.throws(() => resize(99, new Uint8Array(12), 2, 2, 16, out), isNativeArg); // bad ISA index
  });

  it('runs in a worker_thread, as in the inference worker', async () => {
    const url = new URL('../../src/model/kernels.ts', import.meta.url).href;
    const prep = new URL('../../src/model/preprocess.ts', import.meta.url).href;
    // tsx's loader does not reach worker threads: register it there (as src/model/inference-worker.ts does).
    const tsxApi = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs')).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      (async () => {
        (await import(${JSON.stringify(tsxApi)})).register();
        const { loadKernels } = await import(${JSON.stringify(url)});
        const { resizeAreaU8 } = await import(${JSON.stringify(prep)});
        const k = loadKernels('native').kernels;
        const w = 1280, h = 720, img = new Uint8Array(w * h * 3);
        for (let i = 0; i < img.length; i++) img[i] = (i * 2654435761) >>> 24;
        const got = k.resizeAreaU8(img, w, h, 64), want = resizeAreaU8(img, w, h, 64);
        parentPort.postMessage({ name: k.name, same: got.length === want.length && got.every((v, i) => v === want[i]) });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
    const worker = new Worker(code, { eval: true });
    const msg = await new Promise<{ name?: string; same?: boolean; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.equal(msg.error, undefined, msg.error);
    assert.match(msg.name ?? '', /^native-/);
    assert.equal(msg.same, true);
  });
});
