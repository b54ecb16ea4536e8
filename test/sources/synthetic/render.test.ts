import assert from 'node:assert/strict';
import fc from 'fast-check';
import { inverseNormalCdf, renderClean, renderScene } from '../../../src/sources/synthetic/render.js';
import {
  COLOUR_RGB,
  FRAME_LIMITS,
  SIZE_RANGES,
  type Scene,
  type SceneObject,
  mulberry32,
  sampleScene,
} from '../../../src/sources/synthetic/shapes-world.js';

/** Pixels of the clean image equal to `o.rgb`: count and bounding box (pixels, inclusive). */
function measure(img: Uint8Array, width: number, o: SceneObject): { count: number; x0: number; y0: number; x1: number; y1: number } {
  const m = { count: 0, x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
  for (let p = 0, k = 0; k < img.length; p++, k += 3) {
    if (img[k] === o.rgb[0] && img[k + 1] === o.rgb[1] && img[k + 2] === o.rgb[2]) {
      const x = p % width;
      const y = (p - x) / width;
      m.count++;
      m.x0 = Math.min(m.x0, x);
      m.x1 = Math.max(m.x1, x);
      m.y0 = Math.min(m.y0, y);
      m.y1 = Math.max(m.y1, y);
    }
  }
  return m;
}

/** Exact area of each shape of side s (the contract's table). */
const AREA: Record<SceneObject['shape'], (s: number) => number> = {
  circle: (s) => (Math.PI * s * s) / 4,
  square: (s) => s * s,
  triangle: (s) => (s * s) / 2,
  cross: (s) => 2 * s * (s / 3) - (s / 3) ** 2,
};

const frameArb = fc.record({
  width: fc.integer({ min: FRAME_LIMITS.minWidth, max: 640 }),
  height: fc.integer({ min: FRAME_LIMITS.minHeight, max: 480 }),
});

describe('render', () => {
  it('draws each shape at its size, colour and place, with the gap kept in pixels', () => {
    fc.assert(
      fc.property(frameArb, fc.integer(), ({ width, height }, seed) => {
        const s = sampleScene(mulberry32(seed), { width, height });
        // Object colours have a channel ≥ 185, the background stays ≤ 100: no confusion.
        const img = renderClean(s, width, height);
        const boxes = s.objects.map((o) => {
          const m = measure(img, width, o);
          const side = o.sizeFrac * height;
          // measured extent (pixels) matches s within a pixel (two for the triangle, whose apex row
          // is under a pixel wide); hence the size word is right
          const tol = o.shape === 'triangle' ? 2.01 : 1.01;
          assert.ok(Math.abs(m.y1 - m.y0 + 1 - side) <= tol, `${o.shape} height ${m.y1 - m.y0 + 1} vs s ${side}`);
          assert.ok(Math.abs(m.x1 - m.x0 + 1 - side) <= tol, `${o.shape} width ${m.x1 - m.x0 + 1} vs s ${side}`);
          const measuredFrac = (m.y1 - m.y0 + 1) / height;
          const r = SIZE_RANGES[o.size];
          assert.ok(measuredFrac >= r.min - tol / height && measuredFrac <= r.max + tol / height);
          // area within the rasterisation error of a perimeter's worth of pixels
          const area = AREA[o.shape](side);
          assert.ok(Math.abs(m.count - area) <= 4 * side + 4, `${o.shape} area ${m.count} vs ${area.toFixed(1)}`);
          // centre where the scene says
          assert.ok(Math.abs((m.x0 + m.x1 + 1) / 2 - o.x * width) <= 1);
          assert.ok(Math.abs((m.y0 + m.y1 + 1) / 2 - o.y * height) <= tol);
          return m;
        });
        if (boxes.length === 2) {
          const [a, b] = boxes as [(typeof boxes)[0], (typeof boxes)[0]];
          const gap = Math.max(b.x0 - a.x1 - 1, a.x0 - b.x1 - 1, b.y0 - a.y1 - 1, a.y0 - b.y1 - 1);
          assert.ok(gap >= 0.04 * width - 1, `gap ${gap}px`);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('draws the triangle apex up and the cross as a plus sign', () => {
    const base: Omit<SceneObject, 'shape'> = { colour: 'white', size: 'large', sizeFrac: 0.45, x: 0.5, y: 0.5, rgb: COLOUR_RGB.white };
    const scene = (shape: SceneObject['shape']): Scene => ({ aspect: 1, objects: [{ ...base, shape }], background: { rgb: [0, 0, 0], gradient: 0, noiseSigma: 0 } });
    const W = 200;
    const rowWidth = (img: Uint8Array, y: number): number => {
      let n = 0;
      for (let x = 0; x < W; x++) if (img[(y * W + x) * 3] === 235) n++;
      return n;
    };
    const tri = renderClean(scene('triangle'), W, W);
    // s = 90 px from y = 55 to 145: narrow at the top, full base at the bottom
    assert.ok(rowWidth(tri, 56) <= 2);
    assert.ok(rowWidth(tri, 100) >= 44 && rowWidth(tri, 100) <= 46);
    assert.ok(rowWidth(tri, 144) >= 88);
    const cross = renderClean(scene('cross'), W, W);
    assert.equal(rowWidth(cross, 100), 90); // horizontal bar: s long
    assert.equal(rowWidth(cross, 60), 30); // vertical bar: s/3 thick
    assert.equal(rowWidth(cross, 54), 0);
  });

  it('adds Gaussian noise of the scene σ and applies the vertical gradient', () => {
    const s: Scene = { aspect: 4 / 3, objects: [], background: { rgb: [60, 60, 60], gradient: 20, noiseSigma: 6 } };
    const img = renderScene(s, 320, 240, mulberry32(1));
    const row = (y: number): number[] => Array.from(img.subarray(y * 960, (y + 1) * 960));
    const stats = (xs: number[]): [number, number] => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return [m, Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length)];
    };
    const [topMean, topSd] = stats([...row(0), ...row(1), ...row(2)]);
    const [botMean] = stats([...row(237), ...row(238), ...row(239)]);
    assert.ok(Math.abs(topMean - 60) < 1, `top mean ${topMean}`);
    assert.ok(Math.abs(botMean - 80) < 1, `bottom mean ${botMean}`);
    assert.ok(Math.abs(topSd - 6) < 0.5, `sd ${topSd}`);
    assert.ok(Math.abs(inverseNormalCdf(0.975) - 1.959964) < 1e-5);
  });

  it('scales brightness before clipping, and is deterministic under a seed', () => {
    const s = sampleScene(mulberry32(2), { width: 320, height: 240 });
    const a = renderScene(s, 320, 240, mulberry32(9), { brightness: 1.1 });
    assert.deepEqual(a, renderScene(s, 320, 240, mulberry32(9), { brightness: 1.1 }));
    const quiet: Scene = { ...s, background: { ...s.background, noiseSigma: 0 } };
    const clean = renderClean(quiet, 320, 240);
    const bright = renderScene(quiet, 320, 240, mulberry32(1), { brightness: 1.1 });
    for (let k = 0; k < clean.length; k += 97) assert.equal(bright[k], Math.min(255, Math.floor(clean[k]! * 1.1 + 0.5)));
    assert.throws(() => renderScene(s, 320, 240, mulberry32(1), { brightness: 0 }), RangeError);
  });
});
