/**
 * Renders a shapes-world scene (../shared/docs/shapes-world.md) to RGB8, with the brightness
 * augmentation the contract says the model must survive (0.9..1.1 before clipping); JPEG is in
 * jpeg-round-trip.ts.
 *
 * Order of drawing (contract "Frames"): background (solid + vertical gradient) → objects (hard
 * edges) → per-pixel Gaussian noise → brightness scale → clip and round to 0..255 (8-bit fixed point,
 * so values are within 1/256 of the exact float result).
 * A pixel belongs to a shape when its CENTRE (i + 0.5, j + 0.5) lies inside the shape, so every drawn
 * pixel lies within the object's bounding box and the scene's gap rule holds in pixels too.
 */
import type { Rng, Scene, SceneObject } from './shapes-world.js';

export interface RenderOptions {
  /** Multiplies every value after noise, before clipping; the contract allows 0.9..1.1. Default 1. */
  readonly brightness?: number;
}

// ---------------------------------------------------------------------------------------------
// Gaussian noise: a table of standard-normal quantiles indexed by a fast xorshift, so noise costs
// one table read per channel value instead of a log/sqrt/cos.

// 4096 quantiles (16 KiB, stays in L1; tails reach ±3.5σ), each σ = 8 step is < 0.03 levels.
const NOISE_TABLE_BITS = 12;
const NOISE_TABLE: Float32Array = (() => {
  const n = 1 << NOISE_TABLE_BITS;
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = inverseNormalCdf((i + 0.5) / n);
  return t;
})();

/** Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error < 1.2e-9). */
export function inverseNormalCdf(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

// ---------------------------------------------------------------------------------------------
// Shapes as horizontal spans: for pixel row j, the half-width of the shape at the row's centre.

/** Half-width (pixels) of `o` at vertical offset `dy` from its centre, or −1 when the row misses it. */
function halfWidthAt(shape: SceneObject['shape'], s: number, dy: number): number {
  const h = s / 2;
  if (dy < -h || dy > h) return -1;
  switch (shape) {
    case 'circle':
      return Math.sqrt(h * h - dy * dy);
    case 'square':
      return h;
    case 'triangle':
      // apex at dy = −h (top), base of width s at dy = +h: half-width grows linearly 0 → h.
      return ((dy + h) / s) * h;
    case 'cross':
      // horizontal bar s long, s/3 thick; otherwise the vertical bar s/3 wide.
      return Math.abs(dy) <= s / 6 ? h : s / 6;
  }
}

function drawObject(out: Uint8Array, width: number, height: number, o: SceneObject): void {
  const s = o.sizeFrac * height;
  const cx = o.x * width;
  const cy = o.y * height;
  const [r, g, b] = o.rgb;
  const j0 = Math.max(0, Math.ceil(cy - s / 2 - 0.5));
  const j1 = Math.min(height - 1, Math.floor(cy + s / 2 - 0.5));
  for (let j = j0; j <= j1; j++) {
    const half = halfWidthAt(o.shape, s, j + 0.5 - cy);
    if (half < 0) continue;
    const i0 = Math.max(0, Math.ceil(cx - half - 0.5));
    const i1 = Math.min(width - 1, Math.floor(cx + half - 0.5));
    for (let k = (j * width + i0) * 3, end = (j * width + i1) * 3; k <= end; k += 3) {
      out[k] = r;
      out[k + 1] = g;
      out[k + 2] = b;
    }
  }
}

/** Background then objects, no noise: the clean image, RGB8, length width·height·3. */
export function renderClean(scene: Scene, width: number, height: number): Uint8Array {
  checkSize(width, height);
  const out = new Uint8Array(width * height * 3);
  const [br, bg, bb] = scene.background.rgb;
  const grad = scene.background.gradient;
  for (let j = 0; j < height; j++) {
    const add = height > 1 ? Math.round((grad * j) / (height - 1)) : 0;
    const r = clampByte(br + add);
    const g = clampByte(bg + add);
    const b = clampByte(bb + add);
    for (let k = j * width * 3, end = k + width * 3; k < end; k += 3) {
      out[k] = r;
      out[k + 1] = g;
      out[k + 2] = b;
    }
  }
  for (const o of scene.objects) drawObject(out, width, height, o);
  return out;
}

/**
 * Renders `scene` at width×height: background, objects, Gaussian noise of σ =
 * scene.background.noiseSigma per channel value (drawn from `rng`), brightness, clip and round.
 * Returns tightly packed RGB8 (width·height·3). Deterministic for a given rng state.
 */
export function renderScene(scene: Scene, width: number, height: number, rng: Rng, options: RenderOptions = {}): Uint8Array {
  const brightness = options.brightness ?? 1;
  if (!(brightness > 0 && Number.isFinite(brightness))) throw new RangeError(`brightness ${brightness} must be a positive number`);
  const clean = renderClean(scene, width, height);
  const sigma = scene.background.noiseSigma;
  if (sigma === 0 && brightness === 1) return clean;
  // Fixed point, 8 fractional bits: value·brightness and noise·σ·brightness are looked up as
  // integers, so the hot loop is two table reads, an add, a shift and a clip per channel value.
  const gain = brightness * 256;
  const valueLut = new Int32Array(256);
  for (let v = 0; v < 256; v++) valueLut[v] = Math.round(v * gain) + 128; // +128: round half up
  const noiseLut = new Int32Array(NOISE_TABLE.length);
  for (let i = 0; i < noiseLut.length; i++) noiseLut[i] = Math.round(NOISE_TABLE[i]! * sigma * gain);
  const out = clean;
  const n = out.length;
  let state = (Math.floor(rng() * 4294967296) | 1) >>> 0;
  for (let k = 0; k < n; k += 2) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    // Two independent 12-bit indices per 32-bit xorshift step.
    const x = (valueLut[out[k]!]! + noiseLut[state >>> 20]!) >> 8;
    out[k] = x < 0 ? 0 : x > 255 ? 255 : x;
    if (k + 1 < n) {
      const y = (valueLut[out[k + 1]!]! + noiseLut[(state >>> 8) & 4095]!) >> 8;
      out[k + 1] = y < 0 ? 0 : y > 255 ? 255 : y;
    }
  }
  return out;
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function checkSize(width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`frame size ${width}×${height} must be positive integers`);
  }
}
