/**
 * The 3×3, zero-padding-1 convolution of the convolutional stem (docs/bitmar-stream.md §3), as
 * im2col + one fp32 matmul through the Kernels interface. This is the contract of
 * Kernels.conv3x3Gelu (kernels-ts.ts runs im2col3x3 + matmulF32 + gelu; the native addon a direct
 * convolution in the same summation order, native/conv/), which the engine's stem calls:
 *
 *   out[oy][ox][o] = b_o + Σ_{ky,kx∈0..2} Σ_c w[o][(ky·3 + kx)·Cin + c] · X[s·oy+ky−1][s·ox+kx−1][c]
 *
 * with pixels outside the image 0. Images are HWC row-major. The im2col row of an output pixel is
 * in (ky, kx, c) order, the GGUF weight row likewise, so the matmul is col [OH·OW, 9·Cin] · wᵀ.
 * No allocation: the caller passes the column and output buffers.
 */
import type { Kernels } from '../kernels.js';

/** A 3×3 convolution's weights: weight (Cout, 9·Cin), each row in (ky, kx, c) order; bias (Cout). */
export interface Conv3x3Weights {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  readonly inChannels: number;
  readonly outChannels: number;
}

/** Output side of a 3×3, padding-1 convolution with this stride over a side of n pixels. */
export function conv3x3OutSize(n: number, stride: number): number {
  return Math.floor((n - 1) / stride) + 1;
}

/** Floats of the im2col buffer for an H×W×C input: OH·OW·9·C. */
export function im2col3x3Size(height: number, width: number, channels: number, stride: number): number {
  return conv3x3OutSize(height, stride) * conv3x3OutSize(width, stride) * 9 * channels;
}

/** Interior runs (3·C floats) at least this long are moved with copyWithin when the input shares the column array. */
const COPY_WITHIN_MIN_RUN = 16;

/**
 * col[(oy·OW + ox)·9C + (ky·3 + kx)·C + c] = x[xOff + ((s·oy+ky−1)·W + s·ox+kx−1)·C + c], 0 outside
 * the image. An interior pixel's column is three contiguous runs of 3·C floats (the three kx pixels
 * are adjacent in HWC), copied in one loop; only border pixels go (ky, kx) by (ky, kx). When `x` is
 * `col` itself (the input stored in the same array behind the columns, xOff ≥ OH·OW·9·C) and a run
 * is ≥ 16 floats, the runs are moved with copyWithin, a memmove: about 3× faster than the element
 * loop for C = 16 (for C = 3 the loop wins).
 */
export function im2col3x3(x: Float32Array, xOff: number, height: number, width: number, channels: number, stride: number, col: Float32Array): void {
  const C = channels;
  const OH = conv3x3OutSize(height, stride);
  const OW = conv3x3OutSize(width, stride);
  const run = 3 * C; // one kernel row: kx = 0..2, c = 0..C−1
  const rowStride = width * C;
  const memmove = x === col && run >= COPY_WITHIN_MIN_RUN;
  let o = 0;
  for (let oy = 0; oy < OH; oy++) {
    const iy0 = oy * stride - 1;
    const rowsInside = iy0 >= 0 && iy0 + 2 < height;
    for (let ox = 0; ox < OW; ox++) {
      const ix0 = ox * stride - 1;
      if (rowsInside && ix0 >= 0 && ix0 + 2 < width) {
        const a = xOff + (iy0 * width + ix0) * C; // ky = 0; ky = 1, 2 start rowStride further each
        const b = a + rowStride;
        const c = b + rowStride;
        if (memmove) {
          col.copyWithin(o, a, a + run);
          col.copyWithin(o + run, b, b + run);
          col.copyWithin(o + 2 * run, c, c + run);
        } else {
          for (let t = 0; t < run; t++) {
            col[o + t] = x[a + t]!;
            col[o + run + t] = x[b + t]!;
            col[o + 2 * run + t] = x[c + t]!;
          }
        }
        o += 3 * run;
        continue;
      }
      for (let ky = 0; ky < 3; ky++) {
        const iy = iy0 + ky;
        for (let kx = 0; kx < 3; kx++) {
          const ix = ix0 + kx;
          if (iy < 0 || iy >= height || ix < 0 || ix >= width) {
            for (let k = 0; k < C; k++) col[o++] = 0;
          } else {
            let src = xOff + (iy * width + ix) * C;
            for (let k = 0; k < C; k++) col[o++] = x[src++]!;
          }
        }
      }
    }
  }
}

/**
 * out [OH, OW, Cout] = conv3x3(x [H, W, Cin] from x[xOff]; p, stride, zero padding 1), OH = ⌊(H−1)/s⌋+1
 * (likewise OW). `col` is scratch: the columns take col[0, im2col3x3Size(H, W, Cin, stride)) and the
 * matmul reads only those, so the input may live in col behind them (x === col, xOff ≥ that size:
 * the faster copyWithin path). out must not overlap the input or the columns.
 */
export function conv3x3(
  kernels: Kernels, x: Float32Array, xOff: number, height: number, width: number, p: Conv3x3Weights, stride: number,
  col: Float32Array, out: Float32Array,
): void {
  const cin = p.inChannels;
  const cout = p.outChannels;
  if (!(Number.isInteger(stride) && stride >= 1)) throw new RangeError(`stride ${stride} must be a positive integer`);
  if (!(Number.isInteger(height) && height >= 1 && Number.isInteger(width) && width >= 1)) throw new RangeError(`image ${width}×${height} must have positive integer sides`);
  if (!(Number.isInteger(xOff) && xOff >= 0 && x.length >= xOff + height * width * cin)) {
    throw new RangeError(`input holds ${x.length} floats, need ${height}·${width}·${cin} from offset ${xOff}`);
  }
  if (p.weight.length !== cout * 9 * cin) throw new RangeError(`weight holds ${p.weight.length} floats, need ${cout}·9·${cin}`);
  const pixels = conv3x3OutSize(height, stride) * conv3x3OutSize(width, stride);
  const cols = pixels * 9 * cin;
  if (col.length < cols) throw new RangeError(`im2col scratch holds ${col.length} floats, need ${cols}`);
  if (x === col && xOff < cols) throw new RangeError(`an input inside the scratch must start at or after the ${cols} column floats, not at ${xOff}`);
  if (out.length < pixels * cout) throw new RangeError(`output holds ${out.length} floats, need ${pixels * cout}`);
  im2col3x3(x, xOff, height, width, cin, stride, col);
  kernels.matmulF32(p.weight, cout, 9 * cin, col, pixels, out, p.bias);
}
