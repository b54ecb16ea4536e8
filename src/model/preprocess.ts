/**
 * Frame preprocessing (docs/bitmar-stream.md §3 "Preprocess") — the ONLY implementation: the node
 * calls `preprocessFrame`, the training exporter (tools/train/export-dataset.ts) calls `resizeAreaU8`
 * and stores its bytes, and the trainer applies the same `v/127.5 − 1` and patch order to them.
 *
 * The exact math, for a W×H RGB8 frame and output side S:
 *
 * 1. Area (box-filter) resize of the WHOLE frame to S×S, no crop, any aspect ratio, up or down.
 *    Output pixel (ox, oy) covers the source rectangle [ox·W/S, (ox+1)·W/S) × [oy·H/S, (oy+1)·H/S),
 *    where source pixel (i, j) is the unit square [i, i+1) × [j, j+1). Its value per channel is the
 *    coverage-weighted mean
 *        out = Σ_i Σ_j wx(ox, i) · wy(oy, j) · src(i, j),
 *        wx(ox, i) = |[i, i+1) ∩ [ox·W/S, (ox+1)·W/S)| / (W/S)      (wy likewise with H),
 *    computed exactly in integers scaled by S (overlaps are integers in units of 1/S), applied as two
 *    separable float64 passes (rows, then columns).
 * 2. Round to the nearest integer, halves up (`Math.floor(v + 0.5)`), giving uint8 0..255. The
 *    exporter stores these bytes; the node rounds too, so both see identical values.
 * 3. Normalise: x = v / 127.5 − 1 (float32), range [−1, 1].
 * 4. Patches: N = (S/P)² patches in row-major patch order (patch row py, then column px); each
 *    patch flattened in (dy, dx, channel) order:
 *        out[n·3P² + (dy·P + dx)·3 + c] = x[(py·P + dy)·S + px·P + dx][c],   n = py·(S/P) + px.
 *    Result: Float32Array [N, 3·P²] row-major.
 *
 * With the convolutional stem (`vision.stem_channels`, docs §3) the model input is the normalised
 * image of steps 1–3, HWC [S, S, 3] (`preprocessImage`); the engine runs the stem on it and cuts the
 * stem output into (P/2)×(P/2) patches with the same step 4 (`cutPatches`, any channel count).
 */
import { BitmarError } from '../errors.js';

/** An RGB8 image, tightly packed (stride width·3). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** Per-output-index coverage of one axis: output o reads source [start[o], start[o]+count[o]). */
interface AxisWeights {
  readonly start: Int32Array;
  readonly count: Int32Array;
  /** Flattened weights; output o's weights begin at offset[o]. Each output's weights sum to 1. */
  readonly offset: Int32Array;
  readonly weight: Float64Array;
}

/** Box-filter weights mapping `src` pixels onto `dst` pixels (exact integer overlaps / src). */
function axisWeights(src: number, dst: number): AxisWeights {
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  const offset = new Int32Array(dst);
  const weights: number[] = [];
  for (let o = 0; o < dst; o++) {
    // In units of 1/dst: source pixel i spans [i·dst, (i+1)·dst), output o spans [o·src, (o+1)·src).
    const lo = o * src;
    const hi = (o + 1) * src;
    const i0 = Math.floor(lo / dst);
    const i1 = Math.ceil(hi / dst); // exclusive
    start[o] = i0;
    count[o] = i1 - i0;
    offset[o] = weights.length;
    for (let i = i0; i < i1; i++) {
      const overlap = Math.min((i + 1) * dst, hi) - Math.max(i * dst, lo);
      weights.push(overlap / src);
    }
  }
  return { start, count, offset, weight: Float64Array.from(weights) };
}

function checkImage(img: RgbImage): void {
  const { width, height, data } = img;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `frame size ${width}×${height} must be positive integers`);
  }
  if (data.length !== width * height * 3) {
    throw new BitmarError(
      'BITMAR_ERR_IMAGE_SIZE',
      `frame data has ${data.length} bytes but ${width}×${height} RGB8 needs ${width * height * 3}; send tightly packed RGB8`,
    );
  }
}

function checkSide(name: string, v: number): void {
  if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`${name} ${v} must be a positive integer`);
}

/**
 * Exact area resize (step 1 above) of a width×height RGB8 image to size×size.
 * Returns Float64 values in [0, 255], row-major HWC, length size·size·3. Throws BitmarError
 * BITMAR_ERR_IMAGE_SIZE when the data length does not match the size.
 */
export function resizeArea(rgb: Uint8Array, width: number, height: number, size: number): Float64Array {
  checkSide('size', size);
  checkImage({ width, height, data: rgb });
  const wx = axisWeights(width, size);
  const wy = axisWeights(height, size);
  // Pass 1: rows. tmp is height × size × 3.
  const tmp = new Float64Array(height * size * 3);
  for (let j = 0; j < height; j++) {
    const row = j * width * 3;
    for (let o = 0; o < size; o++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const w0 = wx.offset[o]!;
      for (let t = 0, n = wx.count[o]!, k = row + wx.start[o]! * 3; t < n; t++, k += 3) {
        const w = wx.weight[w0 + t]!;
        r += w * rgb[k]!;
        g += w * rgb[k + 1]!;
        b += w * rgb[k + 2]!;
      }
      const d = (j * size + o) * 3;
      tmp[d] = r;
      tmp[d + 1] = g;
      tmp[d + 2] = b;
    }
  }
  // Pass 2: columns.
  const out = new Float64Array(size * size * 3);
  const stride = size * 3;
  for (let o = 0; o < size; o++) {
    const w0 = wy.offset[o]!;
    const dst = o * stride;
    for (let t = 0, n = wy.count[o]!; t < n; t++) {
      const w = wy.weight[w0 + t]!;
      const src = (wy.start[o]! + t) * stride;
      for (let x = 0; x < stride; x++) out[dst + x] += w * tmp[src + x]!;
    }
  }
  return out;
}

/** resizeArea then round halves up to uint8 (steps 1–2): the bytes the exporter stores. */
export function resizeAreaU8(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const f = resizeArea(rgb, width, height, size);
  const out = new Uint8Array(f.length);
  for (let k = 0; k < f.length; k++) out[k] = Math.floor(f[k]! + 0.5);
  return out;
}

/**
 * Step 3 on an already resized size×size RGB8 image: `v/127.5 − 1`, HWC [size, size, 3] (float32).
 * Writes into `into` when given (≥ size²·3 floats), else a new array; returns it.
 */
export function normalizeImage(img: Uint8Array, size: number, into?: Float32Array): Float32Array {
  checkSide('image size', size);
  if (img.length !== size * size * 3) throw new RangeError(`image has ${img.length} bytes, expected ${size * size * 3}`);
  if (into !== undefined && into.length < img.length) throw new RangeError(`output holds ${into.length} floats, needs ${img.length}`);
  const out = into ?? new Float32Array(img.length);
  for (let k = 0; k < img.length; k++) out[k] = img[k]! / 127.5 - 1;
  return out;
}

/**
 * Step 4 on any size×size×channels HWC float image: (size/P)² patches in row-major patch order,
 * each flattened in (dy, dx, channel) order:
 *     out[n·C·P² + (dy·P + dx)·C + c] = x[(py·P + dy)·size + px·P + dx][c],   n = py·(size/P) + px.
 * Writes into `out` when given (≥ size²·channels floats), else a new array; returns it.
 */
export function cutPatches(x: Float32Array, size: number, patchSize: number, channels: number, out?: Float32Array): Float32Array {
  checkSide('image size', size);
  checkSide('patch size', patchSize);
  checkSide('channels', channels);
  if (size % patchSize !== 0) throw new RangeError(`image size ${size} must be a multiple of patch size ${patchSize}`);
  const n = size * size * channels;
  if (x.length < n) throw new RangeError(`image holds ${x.length} floats, expected ${n}`);
  const dst = out ?? new Float32Array(n);
  if (dst.length < n) throw new RangeError(`patch buffer holds ${dst.length} floats, need ${n}`);
  const grid = size / patchSize;
  const run = patchSize * channels; // one patch row: dx = 0..P−1, c = 0..C−1
  const bulk = run >= 32; // runs this long copy faster with set() (a memmove; 4× at 128 floats: the stem's)
  let k = 0;
  for (let py = 0; py < grid; py++) {
    for (let px = 0; px < grid; px++) {
      for (let dy = 0; dy < patchSize; dy++) {
        let src = ((py * patchSize + dy) * size + px * patchSize) * channels;
        if (bulk) {
          dst.set(x.subarray(src, src + run), k);
          k += run;
        } else {
          for (let t = 0; t < run; t++) dst[k++] = x[src++]!;
        }
      }
    }
  }
  return dst;
}

/**
 * Steps 3–4 on an already resized size×size RGB8 image: `v/127.5 − 1`, cut into P×P patches.
 * Returns Float32Array [N, 3·P²], N = (size/P)².
 */
export function patchify(img: Uint8Array, size: number, patchSize: number): Float32Array {
  checkSide('image size', size);
  checkSide('patch size', patchSize);
  if (size % patchSize !== 0) throw new RangeError(`image size ${size} must be a multiple of patch size ${patchSize}`);
  return cutPatches(normalizeImage(img, size), size, patchSize, 3);
}

/**
 * Steps 1–3 of one frame: the normalised image, Float32Array HWC [imageSize, imageSize, 3] in
 * [−1, 1] (the convolutional stem's input). Throws BitmarError BITMAR_ERR_IMAGE_SIZE for a
 * malformed frame and RangeError when imageSize is not a positive integer.
 */
export function preprocessImage(frame: RgbImage, imageSize: number): Float32Array {
  checkSide('image size', imageSize);
  return normalizeImage(resizeAreaU8(frame.data, frame.width, frame.height, imageSize), imageSize);
}

/**
 * The model input of one frame (all four steps above): Float32Array [N, 3·P²] with
 * N = (imageSize/patchSize)². Throws BitmarError BITMAR_ERR_IMAGE_SIZE for a malformed frame and
 * RangeError when imageSize is not a positive multiple of patchSize.
 */
export function preprocessFrame(frame: RgbImage, imageSize: number, patchSize: number): Float32Array {
  checkSide('image size', imageSize);
  checkSide('patch size', patchSize);
  if (imageSize % patchSize !== 0) throw new RangeError(`image size ${imageSize} must be a multiple of patch size ${patchSize}`);
  return patchify(resizeAreaU8(frame.data, frame.width, frame.height, imageSize), imageSize, patchSize);
}
