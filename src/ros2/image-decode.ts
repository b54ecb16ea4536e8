/**
 * Raw CDR → RGB8 for sensor_msgs/msg/Image and sensor_msgs/msg/CompressedImage, used by the live
 * ROS 2 source (isRaw subscriptions) and the MCAP bag source.
 *
 * The CDR is walked field by field (XCDR1, REP 2003 / OMG CDR §9.3: each primitive aligned to its
 * size relative to the byte after the 4-byte encapsulation header); the pixel bytes are taken as a
 * view into the message buffer and converted once into a new tightly packed RGB8 array — the
 * only copy of the pixels. Every length is checked against the bytes actually present, because the
 * buffers rclnodejs and MCAP hand out are views into larger ones.
 *
 * Encodings (sensor_msgs/image_encodings.hpp): rgb8 bgr8 rgba8 bgra8 mono8, rgb16 bgr16 rgba16
 * bgra16 mono16 (high byte kept, `is_bigendian` honoured), yuv422 = UYVY, yuv422_yuy2 = YUYV (aliases
 * uyvy, yuyv, yuy2), converted with BT.601 limited range as OpenCV's COLOR_YUV2RGB_UYVY/YUY2.
 * Rows honour `step` (padding after each row).
 */
import { CdrReader } from '@foxglove/cdr';
import { BitmarError, type ErrorCode } from '../errors.js';
import type { DropReason } from '../types.js';
import { nsFromTime } from './cdr.js';

/** Largest accepted image; anything beyond is dropped as `too_large`. */
export interface ImageLimits {
  readonly maxWidth: number;
  readonly maxHeight: number;
  /** width·height. */
  readonly maxPixels: number;
}

/** 8K on a side, 32 MP: well above any camera a small board captions. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = Object.freeze({ maxWidth: 8192, maxHeight: 8192, maxPixels: 32 * 1024 * 1024 });

/** A decoded image, tightly packed RGB8 (length width·height·3). */
export interface DecodedImage {
  /** Header stamp, ns since the epoch (0 when the publisher left it unset). */
  readonly stampNs: bigint;
  readonly frameId: string;
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** The outcome of decoding one image message: an image, or why it was dropped. */
export type ImageResult =
  | { readonly ok: true; readonly image: DecodedImage }
  | { readonly ok: false; readonly reason: DropReason; readonly code: ErrorCode; readonly detail: string };

/** sensor_msgs/msg/Image fields with `data` as a view into the message bytes. */
export interface RawImageView {
  readonly stampNs: bigint;
  readonly frameId: string;
  readonly height: number;
  readonly width: number;
  readonly encoding: string;
  readonly isBigEndian: boolean;
  readonly step: number;
  readonly data: Uint8Array;
}

/** sensor_msgs/msg/CompressedImage fields with `data` as a view into the message bytes. */
export interface CompressedImageView {
  readonly stampNs: bigint;
  readonly frameId: string;
  readonly format: string;
  readonly data: Uint8Array;
}

/** Decodes a JPEG or PNG file's bytes to pixels (src/sources/image/decode.ts `decodeImage`). */
export type CompressedDecoder = (bytes: Uint8Array) => { width: number; height: number; data: Uint8Array };

// ---------------------------------------------------------------------------------------------
// CDR walking

function cdrReader(bytes: Uint8Array, type: string): CdrReader {
  if (bytes.byteLength < 4) throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${type}: ${bytes.byteLength} bytes, shorter than the CDR header`);
  const reader = new CdrReader(bytes);
  // 0x00 CDR_BE, 0x01 CDR_LE (plain XCDR1, what every ROS 2 rmw sends).
  if (bytes[0] !== 0 || (reader.kind !== 0 && reader.kind !== 1)) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${type}: unsupported CDR encapsulation ${bytes[0]} ${bytes[1]}`);
  }
  return reader;
}

function remaining(r: CdrReader): number {
  return r.byteLength - r.decodedBytes;
}

function readString(r: CdrReader, what: string): string {
  const length = r.uint32(); // includes the NUL
  if (length > remaining(r)) throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${what}: string of ${length} bytes, only ${remaining(r)} left`);
  return r.string(length);
}

function readBytes(r: CdrReader, what: string): Uint8Array {
  const length = r.sequenceLength();
  if (length > remaining(r)) throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${what}: data claims ${length} bytes, only ${remaining(r)} left`);
  return r.uint8Array(length);
}

function readHeader(r: CdrReader, what: string): { stampNs: bigint; frameId: string } {
  const sec = r.int32();
  const nanosec = r.uint32();
  const frameId = readString(r, `${what}.header.frame_id`);
  return { stampNs: sec < 0 ? 0n : nsFromTime({ sec, nanosec }), frameId };
}

/** Runs a CDR walk, turning DataView RangeErrors (reads past the end) into BitmarErrors. */
function walk<T>(type: string, bytes: Uint8Array, body: (r: CdrReader) => T): T {
  try {
    return body(cdrReader(bytes, type));
  } catch (e) {
    if (e instanceof BitmarError) throw e;
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${type}: truncated or malformed CDR (${bytes.byteLength} bytes): ${(e as Error).message}`, { cause: e });
  }
}

/** Reads sensor_msgs/msg/Image CDR without copying the pixels. Throws BITMAR_ERR_ROS2_MESSAGE. */
export function parseImageCdr(bytes: Uint8Array): RawImageView {
  return walk('sensor_msgs/msg/Image', bytes, (r) => {
    const { stampNs, frameId } = readHeader(r, 'Image');
    const height = r.uint32();
    const width = r.uint32();
    const encoding = readString(r, 'Image.encoding');
    const isBigEndian = r.uint8() !== 0;
    const step = r.uint32();
    const data = readBytes(r, 'Image.data');
    return { stampNs, frameId, height, width, encoding, isBigEndian, step, data };
  });
}

/** Reads sensor_msgs/msg/CompressedImage CDR without copying the payload. Throws BITMAR_ERR_ROS2_MESSAGE. */
export function parseCompressedImageCdr(bytes: Uint8Array): CompressedImageView {
  return walk('sensor_msgs/msg/CompressedImage', bytes, (r) => {
    const { stampNs, frameId } = readHeader(r, 'CompressedImage');
    const format = readString(r, 'CompressedImage.format');
    const data = readBytes(r, 'CompressedImage.data');
    return { stampNs, frameId, format, data };
  });
}

// ---------------------------------------------------------------------------------------------
// Pixel conversion: one function per row layout, writing `width` RGB8 pixels at dst[d..].

type RowConverter = (src: Uint8Array, s: number, dst: Uint8Array, d: number, width: number, bigEndian: boolean) => void;

interface EncodingInfo {
  /** Bytes per pixel in the source row. */
  readonly bytesPerPixel: number;
  /** Pixels must come in pairs (4:2:2 chroma). */
  readonly evenWidth: boolean;
  /** Already RGB8: a tight image is copied in one `set`. */
  readonly isRgb8?: boolean;
  readonly row: RowConverter;
}

/** 8-bit channels; r, g, b are byte offsets within a pixel of `n` bytes. */
function rgbRow8(n: number, r: number, g: number, b: number): RowConverter {
  return (src, s, dst, d, width) => {
    for (let x = 0; x < width; x++, s += n, d += 3) {
      dst[d] = src[s + r]!;
      dst[d + 1] = src[s + g]!;
      dst[d + 2] = src[s + b]!;
    }
  };
}

/** 16-bit channels: keep the high byte (the first byte when big endian). Offsets in channels. */
function rgbRow16(channels: number, r: number, g: number, b: number): RowConverter {
  return (src, s, dst, d, width, bigEndian) => {
    const hi = bigEndian ? 0 : 1;
    const n = channels * 2;
    for (let x = 0; x < width; x++, s += n, d += 3) {
      dst[d] = src[s + 2 * r + hi]!;
      dst[d + 1] = src[s + 2 * g + hi]!;
      dst[d + 2] = src[s + 2 * b + hi]!;
    }
  };
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One YUV pixel (BT.601, limited range, 8-bit fixed point) to RGB at dst[d..]. */
function yuvPixel(dst: Uint8Array, d: number, y: number, u: number, v: number): void {
  const c = 298 * (y - 16);
  const du = u - 128;
  const dv = v - 128;
  dst[d] = clampByte((c + 409 * dv + 128) >> 8);
  dst[d + 1] = clampByte((c - 100 * du - 208 * dv + 128) >> 8);
  dst[d + 2] = clampByte((c + 516 * du + 128) >> 8);
}

/** 4:2:2 macro-pixels of 4 bytes holding two pixels; y0, u, y1, v are byte offsets. */
function yuv422Row(y0: number, u: number, y1: number, v: number): RowConverter {
  return (src, s, dst, d, width) => {
    for (let x = 0; x < width; x += 2, s += 4, d += 6) {
      const uu = src[s + u]!;
      const vv = src[s + v]!;
      yuvPixel(dst, d, src[s + y0]!, uu, vv);
      yuvPixel(dst, d + 3, src[s + y1]!, uu, vv);
    }
  };
}

const monoRow8: RowConverter = (src, s, dst, d, width) => {
  for (let x = 0; x < width; x++, s++, d += 3) {
    const v = src[s]!;
    dst[d] = v;
    dst[d + 1] = v;
    dst[d + 2] = v;
  }
};

const monoRow16: RowConverter = (src, s, dst, d, width, bigEndian) => {
  const hi = bigEndian ? 0 : 1;
  for (let x = 0; x < width; x++, s += 2, d += 3) {
    const v = src[s + hi]!;
    dst[d] = v;
    dst[d + 1] = v;
    dst[d + 2] = v;
  }
};

const UYVY: EncodingInfo = { bytesPerPixel: 2, evenWidth: true, row: yuv422Row(1, 0, 3, 2) };
const YUYV: EncodingInfo = { bytesPerPixel: 2, evenWidth: true, row: yuv422Row(0, 1, 2, 3) };

/** The table of accepted encodings (lower-cased). */
const ENCODINGS: ReadonlyMap<string, EncodingInfo> = new Map<string, EncodingInfo>([
  ['rgb8', { bytesPerPixel: 3, evenWidth: false, row: rgbRow8(3, 0, 1, 2), isRgb8: true }],
  ['bgr8', { bytesPerPixel: 3, evenWidth: false, row: rgbRow8(3, 2, 1, 0) }],
  ['rgba8', { bytesPerPixel: 4, evenWidth: false, row: rgbRow8(4, 0, 1, 2) }],
  ['bgra8', { bytesPerPixel: 4, evenWidth: false, row: rgbRow8(4, 2, 1, 0) }],
  ['mono8', { bytesPerPixel: 1, evenWidth: false, row: monoRow8 }],
  ['rgb16', { bytesPerPixel: 6, evenWidth: false, row: rgbRow16(3, 0, 1, 2) }],
  ['bgr16', { bytesPerPixel: 6, evenWidth: false, row: rgbRow16(3, 2, 1, 0) }],
  ['rgba16', { bytesPerPixel: 8, evenWidth: false, row: rgbRow16(4, 0, 1, 2) }],
  ['bgra16', { bytesPerPixel: 8, evenWidth: false, row: rgbRow16(4, 2, 1, 0) }],
  ['mono16', { bytesPerPixel: 2, evenWidth: false, row: monoRow16 }],
  // sensor_msgs: YUV422 = "yuv422" is UYVY; YUV422_YUY2 = "yuv422_yuy2" is YUYV.
  ['yuv422', UYVY],
  ['uyvy', UYVY],
  ['yuv422_yuy2', YUYV],
  ['yuyv', YUYV],
  ['yuy2', YUYV],
]);

/** The encodings `convertToRgb8` accepts. */
export const SUPPORTED_ENCODINGS: readonly string[] = [...ENCODINGS.keys()];

/** Size errors that are drops for `too_large` rather than `invalid_input`. */
const tooLargeErrors = new WeakSet<BitmarError>();

/** Rejects zero and too large dimensions. Throws BITMAR_ERR_IMAGE_SIZE. */
export function checkDimensions(width: number, height: number, limits: ImageLimits, what: string): void {
  if (width === 0 || height === 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${what}: zero dimension ${width}×${height}`);
  if (width > limits.maxWidth || height > limits.maxHeight || width * height > limits.maxPixels) {
    const err = new BitmarError(
      'BITMAR_ERR_IMAGE_SIZE',
      `${what}: ${width}×${height} exceeds the limit (${limits.maxWidth}×${limits.maxHeight}, ${limits.maxPixels} pixels)`,
    );
    tooLargeErrors.add(err);
    throw err;
  }
}

/**
 * Checks a raw Image view without touching its pixels: the encoding, the dimensions, `step` and
 * the data length. Throws what `convertToRgb8` throws for the same view; returns the encoding.
 */
function checkRaw(img: RawImageView, limits: ImageLimits): EncodingInfo {
  const { width, height, step, data } = img;
  const info = ENCODINGS.get(img.encoding.toLowerCase());
  if (!info) {
    throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', `unsupported encoding '${img.encoding}' (accepted: ${SUPPORTED_ENCODINGS.join(', ')})`);
  }
  checkDimensions(width, height, limits, `Image ${img.encoding}`);
  if (info.evenWidth && width % 2 !== 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${img.encoding} needs an even width, got ${width}`);
  const rowBytes = width * info.bytesPerPixel;
  if (step < rowBytes) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `step ${step} is shorter than a row of ${width} ${img.encoding} pixels (${rowBytes} bytes)`);
  if (data.byteLength < step * height) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `data has ${data.byteLength} bytes, fewer than step×height = ${step}×${height} = ${step * height}`);
  }
  return info;
}

/**
 * Checks a raw Image view as `convertToRgb8` does (same errors) and tells whether its pixels need a
 * per-pixel conversion (true) or are tight RGB8 already, a single copy (false).
 */
export function checkRawImage(img: RawImageView, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): boolean {
  const info = checkRaw(img, limits);
  return !(info.isRgb8 === true && img.step === img.width * info.bytesPerPixel);
}

/**
 * Converts a raw Image view to tightly packed RGB8 (one copy of the pixels). Throws
 * BITMAR_ERR_IMAGE_ENCODING (unknown encoding) or BITMAR_ERR_IMAGE_SIZE (zero/huge dimensions,
 * `step` shorter than a row, data shorter than step·height, odd width for 4:2:2).
 */
export function convertToRgb8(img: RawImageView, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): DecodedImage {
  const { width, height, step, data } = img;
  const info = checkRaw(img, limits);
  const rowBytes = width * info.bytesPerPixel;
  const out = new Uint8Array(width * height * 3);
  if (info.isRgb8 === true && step === rowBytes) {
    out.set(data.subarray(0, rowBytes * height));
  } else {
    for (let y = 0; y < height; y++) info.row(data, y * step, out, y * width * 3, width, img.isBigEndian);
  }
  return { stampNs: img.stampNs, frameId: img.frameId, width, height, data: out };
}

function failure(e: unknown): ImageResult {
  const err = e instanceof BitmarError ? e : new BitmarError('BITMAR_ERR_IMAGE_DECODE', String((e as Error)?.message ?? e), { cause: e });
  const reason: DropReason =
    err.code === 'BITMAR_ERR_ROS2_MESSAGE' || err.code === 'BITMAR_ERR_IMAGE_DECODE'
      ? 'decode_error'
      : tooLargeErrors.has(err)
        ? 'too_large'
        : 'invalid_input';
  return { ok: false, reason, code: err.code, detail: `${err.code}: ${err.message}` };
}

/** sensor_msgs/msg/Image CDR → RGB8, or the reason it was dropped. Never throws. */
export function decodeImageMessage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): ImageResult {
  try {
    return { ok: true, image: convertToRgb8(parseImageCdr(bytes), limits) };
  } catch (e) {
    return failure(e);
  }
}

/** A CompressedImage with a usable payload; throws for a depth image or an empty one. */
function compressedView(bytes: Uint8Array): CompressedImageView {
  const msg = parseCompressedImageCdr(bytes);
  if (/compresseddepth/i.test(msg.format)) {
    throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', `CompressedImage format '${msg.format}' is a depth image, not a camera image`);
  }
  if (msg.data.byteLength === 0) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `CompressedImage '${msg.format}' has no data`);
  return msg;
}

/** A decoder's exception as the BitmarError the drop reports (a BitmarError passes unchanged). */
function decoderError(msg: CompressedImageView, e: unknown): BitmarError {
  if (e instanceof BitmarError) return e;
  return new BitmarError('BITMAR_ERR_IMAGE_DECODE', `CompressedImage '${msg.format}': ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

function compressedResult(msg: CompressedImageView, decoded: { width: number; height: number; data: Uint8Array }, limits: ImageLimits): ImageResult {
  const { width, height } = decoded;
  checkDimensions(width, height, limits, `CompressedImage '${msg.format}'`);
  return { ok: true, image: { stampNs: msg.stampNs, frameId: msg.frameId, width, height, data: toRgb8(decoded) } };
}

/**
 * sensor_msgs/msg/CompressedImage CDR (image_transport "jpeg"/"png", "bgr8; jpeg compressed bgr8")
 * → RGB8 through `decoder`, or the reason it was dropped. compressedDepth is refused. Never throws.
 */
export function decodeCompressedImageMessage(bytes: Uint8Array, decoder: CompressedDecoder, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): ImageResult {
  try {
    const msg = compressedView(bytes);
    let decoded: { width: number; height: number; data: Uint8Array };
    try {
      decoded = decoder(msg.data);
    } catch (e) {
      throw decoderError(msg, e);
    }
    return compressedResult(msg, decoded, limits);
  } catch (e) {
    return failure(e);
  }
}

/** `CompressedDecoder` off the calling thread (src/sources/image/decode-pool.ts `DecodePool.decode`). */
export type AsyncCompressedDecoder = (bytes: Uint8Array) => Promise<{ width: number; height: number; data: Uint8Array }>;

/** Raw pixels → RGB8 off the calling thread (decode-pool.ts `DecodePool.convert`), after `checkRawImage`. */
export type AsyncRawConverter = (view: RawImageView) => Promise<{ width: number; height: number; data: Uint8Array }>;

/**
 * `decodeCompressedImageMessage` with the decoding done by `decoder` elsewhere (a worker): the CDR
 * is read here, the result and every refusal are the same. `isSkip(e)` marks errors that are not
 * about the image (the pool dropped the job): those reject the promise instead of becoming a result.
 */
export async function decodeCompressedImageMessageAsync(
  bytes: Uint8Array,
  decoder: AsyncCompressedDecoder,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
  isSkip: (e: unknown) => boolean = () => false,
): Promise<ImageResult> {
  let msg: CompressedImageView;
  try {
    msg = compressedView(bytes);
  } catch (e) {
    return failure(e);
  }
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = await decoder(msg.data);
  } catch (e) {
    if (isSkip(e)) throw e;
    return failure(decoderError(msg, e));
  }
  try {
    return compressedResult(msg, decoded, limits);
  } catch (e) {
    return failure(e);
  }
}

/**
 * `decodeImageMessage` with the per-pixel conversion (bgr8, mono, 16-bit, YUV…) done by `convert`
 * elsewhere; tight rgb8 is copied here (that copy is the whole cost). Same results and refusals;
 * `isSkip` as for decodeCompressedImageMessageAsync.
 */
export async function decodeImageMessageAsync(
  bytes: Uint8Array,
  convert: AsyncRawConverter,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
  isSkip: (e: unknown) => boolean = () => false,
): Promise<ImageResult> {
  let view: RawImageView;
  try {
    view = parseImageCdr(bytes);
    if (!checkRawImage(view, limits)) return { ok: true, image: convertToRgb8(view, limits) };
  } catch (e) {
    return failure(e);
  }
  try {
    const out = await convert(view);
    return { ok: true, image: { stampNs: view.stampNs, frameId: view.frameId, width: out.width, height: out.height, data: out.data } };
  } catch (e) {
    if (isSkip(e)) throw e;
    return failure(e);
  }
}

/** Decoder output to packed RGB8: 3 channels pass through, 4 (RGBA) drop alpha. */
function toRgb8(img: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const pixels = img.width * img.height;
  if (img.data.byteLength === pixels * 3) return img.data;
  if (img.data.byteLength === pixels * 4) {
    const out = new Uint8Array(pixels * 3);
    rgbRow8(4, 0, 1, 2)(img.data, 0, out, 0, pixels, false);
    return out;
  }
  throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `decoder returned ${img.data.byteLength} bytes for ${img.width}×${img.height}`);
}
