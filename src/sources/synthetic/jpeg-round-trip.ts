/**
 * JPEG compression as an augmentation (../shared/docs/shapes-world.md "Robustness": quality ≥ 70).
 *
 * `jpegRoundTrip` gives exactly the pixels of `jpeg-js` encode(quality) → decode, without the
 * entropy coding in between: Huffman coding is lossless, so a baseline round trip is just
 *   RGB → YCbCr (jpeg-js fixed-point tables) → 8×8 AAN forward DCT and quantisation (jpeg-js encoder,
 *   float64, round half away from zero) → dequantisation and the Loeffler integer inverse DCT
 *   (jpeg-js decoder, a port of pdf.js / poppler) → YCbCr → RGB (jpeg-js decoder, truncating).
 * jpeg-js writes 4:4:4 (no chroma subsampling) with the IJG tables scaled by quality, and pads edge
 * blocks by repeating the last row and column. Skipping the bit-by-bit Huffman stage makes this
 * ~10× faster; test/sources/synthetic/jpeg-round-trip.test.ts checks it is bit-exact against
 * `jpegRoundTripCodec`, the real encode → decode, which stays available as the reference.
 */
import jpeg from 'jpeg-js';

// ---------------------------------------------------------------------------------------------
// Tables (jpeg-js lib/encoder.js initQuantTables / setQuality; lib/decoder.js constants)

const LUMA_QT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18,
  22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_QT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
  ...new Array<number>(32).fill(99),
];
const AASF = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

const DCT_COS1 = 4017;
const DCT_SIN1 = 799;
const DCT_COS3 = 3406;
const DCT_SIN3 = 2276;
const DCT_COS6 = 1567;
const DCT_SIN6 = 3784;
const DCT_SQRT2 = 5793;
const DCT_SQRT1D2 = 2896;

/** Quantisation of one component at one quality: natural-order table and the encoder's scaled reciprocals. */
interface QuantTable {
  readonly qt: Int32Array;
  readonly fdtbl: Float64Array;
}

function quantTable(base: readonly number[], quality: number): QuantTable {
  const sf = quality < 50 ? Math.floor(5000 / quality) : Math.floor(200 - quality * 2);
  // jpeg-js writes the scaled table in zigzag order and its decoder un-zigzags it (as it does the
  // coefficients), so in natural order it is simply the scaled base table.
  const qt = new Int32Array(64);
  for (let i = 0; i < 64; i++) qt[i] = Math.min(255, Math.max(1, Math.floor((base[i]! * sf + 50) / 100)));
  const fdtbl = new Float64Array(64);
  for (let row = 0, k = 0; row < 8; row++) for (let col = 0; col < 8; col++, k++) fdtbl[k] = 1.0 / (qt[k]! * AASF[row]! * AASF[col]! * 8.0);
  return { qt, fdtbl };
}

const tableCache = new Map<number, { luma: QuantTable; chroma: QuantTable }>();
function tablesFor(quality: number): { luma: QuantTable; chroma: QuantTable } {
  let t = tableCache.get(quality);
  if (!t) {
    t = { luma: quantTable(LUMA_QT, quality), chroma: quantTable(CHROMA_QT, quality) };
    tableCache.set(quality, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Forward: AAN float DCT + quantisation (jpeg-js encoder fDCTQuant, same operation order)

function forwardDctQuant(data: Float64Array, fdtbl: Float64Array, out: Int32Array): void {
  for (let off = 0; off < 64; off += 8) dctPass(data, off, 1);
  for (let off = 0; off < 8; off++) dctPass(data, off, 8);
  for (let i = 0; i < 64; i++) {
    const v = data[i]! * fdtbl[i]!;
    out[i] = v > 0.0 ? (v + 0.5) | 0 : (v - 0.5) | 0;
  }
}

/** One 8-point AAN DCT over data[off + s·k], k = 0..7, in place. */
function dctPass(data: Float64Array, off: number, s: number): void {
  const d0 = data[off]!, d1 = data[off + s]!, d2 = data[off + 2 * s]!, d3 = data[off + 3 * s]!;
  const d4 = data[off + 4 * s]!, d5 = data[off + 5 * s]!, d6 = data[off + 6 * s]!, d7 = data[off + 7 * s]!;
  const tmp0 = d0 + d7, tmp7 = d0 - d7, tmp1 = d1 + d6, tmp6 = d1 - d6;
  const tmp2 = d2 + d5, tmp5 = d2 - d5, tmp3 = d3 + d4, tmp4 = d3 - d4;
  // even part
  let tmp10 = tmp0 + tmp3;
  const tmp13 = tmp0 - tmp3;
  let tmp11 = tmp1 + tmp2;
  let tmp12 = tmp1 - tmp2;
  data[off] = tmp10 + tmp11;
  data[off + 4 * s] = tmp10 - tmp11;
  const z1 = (tmp12 + tmp13) * 0.707106781;
  data[off + 2 * s] = tmp13 + z1;
  data[off + 6 * s] = tmp13 - z1;
  // odd part
  tmp10 = tmp4 + tmp5;
  tmp11 = tmp5 + tmp6;
  tmp12 = tmp6 + tmp7;
  const z5 = (tmp10 - tmp12) * 0.382683433;
  const z2 = 0.5411961 * tmp10 + z5;
  const z4 = 1.306562965 * tmp12 + z5;
  const z3 = tmp11 * 0.707106781;
  const z11 = tmp7 + z3;
  const z13 = tmp7 - z3;
  data[off + 5 * s] = z13 + z2;
  data[off + 3 * s] = z13 - z2;
  data[off + s] = z11 + z4;
  data[off + 7 * s] = z11 - z4;
}

// ---------------------------------------------------------------------------------------------
// Inverse: dequantisation + Loeffler integer IDCT (jpeg-js decoder quantizeAndInverse, verbatim math)

function inverseDct(zz: Int32Array, qt: Int32Array, p: Int32Array, out: Uint8Array): void {
  let v0: number, v1: number, v2: number, v3: number, v4: number, v5: number, v6: number, v7: number, t: number;
  for (let i = 0; i < 64; i++) p[i] = zz[i]! * qt[i]!;
  for (let row = 0; row < 64; row += 8) {
    if (p[1 + row] === 0 && p[2 + row] === 0 && p[3 + row] === 0 && p[4 + row] === 0 && p[5 + row] === 0 && p[6 + row] === 0 && p[7 + row] === 0) {
      t = (DCT_SQRT2 * p[row]! + 512) >> 10;
      p.fill(t, row, row + 8);
      continue;
    }
    v0 = (DCT_SQRT2 * p[row]! + 128) >> 8;
    v1 = (DCT_SQRT2 * p[4 + row]! + 128) >> 8;
    v2 = p[2 + row]!;
    v3 = p[6 + row]!;
    v4 = (DCT_SQRT1D2 * (p[1 + row]! - p[7 + row]!) + 128) >> 8;
    v7 = (DCT_SQRT1D2 * (p[1 + row]! + p[7 + row]!) + 128) >> 8;
    v5 = p[3 + row]! << 4;
    v6 = p[5 + row]! << 4;
    t = (v0 - v1 + 1) >> 1; v0 = (v0 + v1 + 1) >> 1; v1 = t;
    t = (v2 * DCT_SIN6 + v3 * DCT_COS6 + 128) >> 8; v2 = (v2 * DCT_COS6 - v3 * DCT_SIN6 + 128) >> 8; v3 = t;
    t = (v4 - v6 + 1) >> 1; v4 = (v4 + v6 + 1) >> 1; v6 = t;
    t = (v7 + v5 + 1) >> 1; v5 = (v7 - v5 + 1) >> 1; v7 = t;
    t = (v0 - v3 + 1) >> 1; v0 = (v0 + v3 + 1) >> 1; v3 = t;
    t = (v1 - v2 + 1) >> 1; v1 = (v1 + v2 + 1) >> 1; v2 = t;
    t = (v4 * DCT_SIN3 + v7 * DCT_COS3 + 2048) >> 12; v4 = (v4 * DCT_COS3 - v7 * DCT_SIN3 + 2048) >> 12; v7 = t;
    t = (v5 * DCT_SIN1 + v6 * DCT_COS1 + 2048) >> 12; v5 = (v5 * DCT_COS1 - v6 * DCT_SIN1 + 2048) >> 12; v6 = t;
    p[row] = v0 + v7; p[7 + row] = v0 - v7;
    p[1 + row] = v1 + v6; p[6 + row] = v1 - v6;
    p[2 + row] = v2 + v5; p[5 + row] = v2 - v5;
    p[3 + row] = v3 + v4; p[4 + row] = v3 - v4;
  }
  for (let col = 0; col < 8; col++) {
    if (p[8 + col] === 0 && p[16 + col] === 0 && p[24 + col] === 0 && p[32 + col] === 0 && p[40 + col] === 0 && p[48 + col] === 0 && p[56 + col] === 0) {
      t = (DCT_SQRT2 * p[col]! + 8192) >> 14;
      for (let r = 0; r < 64; r += 8) p[r + col] = t;
      continue;
    }
    v0 = (DCT_SQRT2 * p[col]! + 2048) >> 12;
    v1 = (DCT_SQRT2 * p[32 + col]! + 2048) >> 12;
    v2 = p[16 + col]!;
    v3 = p[48 + col]!;
    v4 = (DCT_SQRT1D2 * (p[8 + col]! - p[56 + col]!) + 2048) >> 12;
    v7 = (DCT_SQRT1D2 * (p[8 + col]! + p[56 + col]!) + 2048) >> 12;
    v5 = p[24 + col]!;
    v6 = p[40 + col]!;
    t = (v0 - v1 + 1) >> 1; v0 = (v0 + v1 + 1) >> 1; v1 = t;
    t = (v2 * DCT_SIN6 + v3 * DCT_COS6 + 2048) >> 12; v2 = (v2 * DCT_COS6 - v3 * DCT_SIN6 + 2048) >> 12; v3 = t;
    t = (v4 - v6 + 1) >> 1; v4 = (v4 + v6 + 1) >> 1; v6 = t;
    t = (v7 + v5 + 1) >> 1; v5 = (v7 - v5 + 1) >> 1; v7 = t;
    t = (v0 - v3 + 1) >> 1; v0 = (v0 + v3 + 1) >> 1; v3 = t;
    t = (v1 - v2 + 1) >> 1; v1 = (v1 + v2 + 1) >> 1; v2 = t;
    t = (v4 * DCT_SIN3 + v7 * DCT_COS3 + 2048) >> 12; v4 = (v4 * DCT_COS3 - v7 * DCT_SIN3 + 2048) >> 12; v7 = t;
    t = (v5 * DCT_SIN1 + v6 * DCT_COS1 + 2048) >> 12; v5 = (v5 * DCT_COS1 - v6 * DCT_SIN1 + 2048) >> 12; v6 = t;
    p[col] = v0 + v7; p[56 + col] = v0 - v7;
    p[8 + col] = v1 + v6; p[48 + col] = v1 - v6;
    p[16 + col] = v2 + v5; p[40 + col] = v2 - v5;
    p[24 + col] = v3 + v4; p[32 + col] = v3 - v4;
  }
  for (let i = 0; i < 64; i++) {
    const sample = 128 + ((p[i]! + 8) >> 4);
    out[i] = sample < 0 ? 0 : sample > 0xff ? 0xff : sample;
  }
}

// ---------------------------------------------------------------------------------------------
// Colour (jpeg-js encoder RGB_YUV_TABLE fixed point; decoder float formulas, truncated to uint8)

function checkArgs(rgb: Uint8Array, width: number, height: number, quality: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`frame size ${width}×${height} must be positive integers`);
  if (rgb.length !== width * height * 3) throw new RangeError(`RGB8 data of ${rgb.length} bytes does not match ${width}×${height}`);
  if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100)) throw new RangeError(`JPEG quality ${quality} must be an integer 1..100`);
}

/**
 * The pixels jpeg-js would return for `decode(encode(rgb, quality))` (4:4:4 baseline), computed
 * without entropy coding. quality 1..100. Returns RGB8 of the same size; throws RangeError for bad
 * arguments.
 */
export function jpegRoundTrip(rgb: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  checkArgs(rgb, width, height, quality);
  const { luma, chroma } = tablesFor(quality);
  const out = new Uint8Array(rgb.length);
  const ydu = new Float64Array(64), udu = new Float64Array(64), vdu = new Float64Array(64);
  const coef = new Int32Array(64), work = new Int32Array(64);
  const yb = new Uint8Array(64), ub = new Uint8Array(64), vb = new Uint8Array(64);
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      // Gather the block, repeating the last row / column past the edge (as the encoder pads).
      for (let pos = 0; pos < 64; pos++) {
        const y = Math.min(by + (pos >> 3), height - 1);
        const x = Math.min(bx + (pos & 7), width - 1);
        const k = (y * width + x) * 3;
        const r = rgb[k]!, g = rgb[k + 1]!, b = rgb[k + 2]!;
        ydu[pos] = ((19595 * r + 38470 * g + (7471 * b + 0x8000)) >> 16) - 128;
        udu[pos] = ((-11059 * r + -21709 * g + (32768 * b + 0x807fff)) >> 16) - 128;
        vdu[pos] = ((32768 * r + 0x807fff + -27439 * g + -5329 * b) >> 16) - 128;
      }
      forwardDctQuant(ydu, luma.fdtbl, coef);
      inverseDct(coef, luma.qt, work, yb);
      forwardDctQuant(udu, chroma.fdtbl, coef);
      inverseDct(coef, chroma.qt, work, ub);
      forwardDctQuant(vdu, chroma.fdtbl, coef);
      inverseDct(coef, chroma.qt, work, vb);
      // Scatter the visible part, YCbCr → RGB as the decoder does (clamp, then truncate to uint8).
      const rows = Math.min(8, height - by);
      const cols = Math.min(8, width - bx);
      for (let j = 0; j < rows; j++) {
        for (let i = 0; i < cols; i++) {
          const pos = j * 8 + i;
          const Y = yb[pos]!, cb = ub[pos]! - 128, cr = vb[pos]! - 128;
          const k = ((by + j) * width + bx + i) * 3;
          out[k] = clamp8(Y + 1.402 * cr);
          out[k + 1] = clamp8(Y - 0.3441363 * cb - 0.71413636 * cr);
          out[k + 2] = clamp8(Y + 1.772 * cb);
        }
      }
    }
  }
  return out;
}

function clamp8(a: number): number {
  return a < 0 ? 0 : a > 255 ? 255 : a;
}

/** The reference: a real jpeg-js encode(quality) → decode. Slow (bit-by-bit Huffman coding). */
export function jpegRoundTripCodec(rgb: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  checkArgs(rgb, width, height, quality);
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) {
    rgba[q] = rgb[p]!;
    rgba[q + 1] = rgb[p + 1]!;
    rgba[q + 2] = rgb[p + 2]!;
    rgba[q + 3] = 255;
  }
  const encoded = jpeg.encode({ width, height, data: rgba }, quality);
  return jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: false }).data;
}
