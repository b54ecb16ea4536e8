/**
 * One MQTT image message → RGB8 pixels, or the reason it is dropped. Three payload forms:
 *  - JPEG or PNG file bytes (recognised by their magic numbers), decoded by `decodeImage`;
 *  - raw pixels with MQTT 5 user properties `encoding`, `width`, `height`, optional `step`
 *    (row bytes, default tight) and `is_bigendian` (16-bit encodings);
 *  - MQTT 3.1.1 (no user properties), topic `.../image/raw`: the same fields as a one-line JSON
 *    header, a `\n`, then the pixels.
 * The header of a JPEG/PNG is read before decoding, so a huge or truncated file is refused
 * without allocating its pixels.
 */
import { BitmarError, type ErrorCode } from '../../errors.js';
import { checkRawImage, convertToRgb8, DEFAULT_IMAGE_LIMITS, SUPPORTED_ENCODINGS, type ImageLimits, type RawImageView } from '../../ros2/image-decode.js';
import type { DropReason } from '../../types.js';
import type { ImageDecoder } from './default-decoder.js';

export interface DecodedMqttImage {
  readonly width: number;
  readonly height: number;
  /** RGB8, width·height·3 bytes. */
  readonly data: Uint8Array;
}

export type ImageMessageResult =
  | { readonly ok: true; readonly image: DecodedMqttImage }
  | { readonly ok: false; readonly reason: DropReason; readonly code: ErrorCode; readonly detail: string };

/** The raw-pixel header, from user properties or the 3.1.1 JSON line. */
export interface RawHeader {
  readonly encoding?: string;
  readonly width?: string | number;
  readonly height?: string | number;
  readonly step?: string | number;
  readonly is_bigendian?: string | number | boolean;
}

const MAX_HEADER_BYTES = 1024;

/** Bytes per pixel of each raw encoding, for the default `step` (a tight row). */
const BYTES_PER_PIXEL: Readonly<Record<string, number>> = {
  rgb8: 3, bgr8: 3, rgba8: 4, bgra8: 4, mono8: 1,
  rgb16: 6, bgr16: 6, rgba16: 8, bgra16: 8, mono16: 2,
  yuv422: 2, uyvy: 2, yuv422_yuy2: 2, yuyv: 2, yuy2: 2,
};

export function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

export function isPng(b: Uint8Array): boolean {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return b.length >= 8 && sig.every((v, i) => b[i] === v);
}

class TooLarge extends BitmarError {}

function check(width: number, height: number, limits: ImageLimits, what: string): void {
  if (!(width > 0 && height > 0)) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${what}: zero dimension ${width}×${height}`);
  if (width > limits.maxWidth || height > limits.maxHeight || width * height > limits.maxPixels) {
    throw new TooLarge('BITMAR_ERR_IMAGE_SIZE', `${what}: ${width}×${height} exceeds the limit (${limits.maxWidth}×${limits.maxHeight}, ${limits.maxPixels} pixels)`);
  }
}

/**
 * Width and height from a JPEG SOFn or PNG IHDR header, and whether the file ends as it should
 * (JPEG EOI marker FFD9 near the end; PNG IEND chunk). Undefined when no header is found.
 */
export function peekImage(b: Uint8Array): { width: number; height: number; complete: boolean } | undefined {
  if (isPng(b)) {
    if (b.length < 24) return undefined;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const tail = Buffer.from(b.buffer, b.byteOffset, b.byteLength).subarray(Math.max(0, b.length - 64));
    return { width: v.getUint32(16), height: v.getUint32(20), complete: tail.includes('IEND') };
  }
  if (!isJpeg(b)) return undefined;
  let i = 2;
  let size: { width: number; height: number } | undefined;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): height at +5, width at +7.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      size = { height: (b[i + 5]! << 8) | b[i + 6]!, width: (b[i + 7]! << 8) | b[i + 8]! };
      break;
    }
    if (marker === 0xda) break; // start of scan without a frame header
    i += 2 + len;
  }
  if (size === undefined) return undefined;
  // In entropy-coded data 0xFF is always followed by 0x00 or RSTn, so FFD9 is only the EOI marker;
  // allow some trailing padding after it, as some cameras add.
  let complete = false;
  for (let j = b.length - 2; j >= Math.max(0, b.length - 256); j--) {
    if (b[j] === 0xff && b[j + 1] === 0xd9) {
      complete = true;
      break;
    }
  }
  return { ...size, complete };
}

function toInt(v: string | number | undefined, what: string): number {
  const n = typeof v === 'number' ? v : v === undefined || v === '' ? NaN : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `raw image header: ${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Raw pixels + header → the Image view `convertToRgb8` takes, checked except for the pixel layout. Throws BitmarError. */
function rawView(data: Uint8Array, header: RawHeader, limits: ImageLimits): RawImageView {
  const encoding = String(header.encoding ?? '').toLowerCase();
  if (!SUPPORTED_ENCODINGS.includes(encoding)) {
    throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', `raw image encoding '${header.encoding ?? ''}' is not supported (accepted: ${SUPPORTED_ENCODINGS.join(', ')})`);
  }
  const width = toInt(header.width, 'width');
  const height = toInt(header.height, 'height');
  check(width, height, limits, `raw ${encoding} image`);
  const step = header.step === undefined || header.step === '' ? width * (BYTES_PER_PIXEL[encoding] ?? 1) : toInt(header.step, 'step');
  const big = header.is_bigendian;
  const isBigEndian = big === true || big === 1 || big === '1' || big === 'true';
  return { stampNs: 0n, frameId: '', width, height, step, encoding, isBigEndian, data };
}

/** Raw pixels + header → RGB8 (conversion shared with ROS 2: convertToRgb8). Throws BitmarError. */
export function decodeRawPixels(data: Uint8Array, header: RawHeader, limits: ImageLimits): DecodedMqttImage {
  const img = convertToRgb8(rawView(data, header, limits), limits);
  return { width: img.width, height: img.height, data: img.data };
}

/** Splits the 3.1.1 raw form `<json header>\n<pixels>`. Throws BitmarError. */
export function splitRawEnvelope(payload: Uint8Array): { header: RawHeader; data: Uint8Array } {
  const nl = payload.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  if (nl < 0) throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', `image/raw payload must start with a JSON header line (at most ${MAX_HEADER_BYTES} bytes) and a newline`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, nl).toString('utf8'));
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', `image/raw header is not JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new BitmarError('BITMAR_ERR_IMAGE_ENCODING', 'image/raw header must be a JSON object {encoding, width, height, step}');
  }
  return { header: header as RawHeader, data: payload.subarray(nl + 1) };
}

/** Decoder output (RGB8 or RGBA8) as packed RGB8. */
function toRgb8(img: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const pixels = img.width * img.height;
  if (img.data.byteLength === pixels * 3) return img.data;
  if (img.data.byteLength === pixels * 4) {
    const out = new Uint8Array(pixels * 3);
    for (let p = 0, s = 0, d = 0; p < pixels; p++, s += 4, d += 3) {
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
    return out;
  }
  throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `decoder returned ${img.data.byteLength} bytes for ${img.width}×${img.height}`);
}

/** Checks a JPEG/PNG header against the limits before decoding; returns the kind. Throws BitmarError. */
function checkCompressed(payload: Uint8Array, limits: ImageLimits): 'JPEG' | 'PNG' {
  const kind = isJpeg(payload) ? 'JPEG' : 'PNG';
  const peek = peekImage(payload);
  if (peek === undefined) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `${kind} without a readable header (${payload.byteLength} bytes)`);
  check(peek.width, peek.height, limits, kind);
  if (!peek.complete) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', `truncated ${kind}: ${payload.byteLength} bytes and no end marker`);
  return kind;
}

/** A decoder's exception as the BitmarError the drop reports (a BitmarError passes unchanged). */
function decoderError(kind: string, e: unknown): BitmarError {
  if (e instanceof BitmarError) return e;
  return new BitmarError('BITMAR_ERR_IMAGE_DECODE', `${kind}: ${(e as Error).message}`, { cause: e });
}

function compressedImage(out: { width: number; height: number; data: Uint8Array }, limits: ImageLimits, kind: string): DecodedMqttImage {
  check(out.width, out.height, limits, kind);
  return { width: out.width, height: out.height, data: toRgb8(out) };
}

/** JPEG/PNG bytes → RGB8 after checking the header. Throws BitmarError. */
export function decodeCompressed(payload: Uint8Array, decode: ImageDecoder, limits: ImageLimits): DecodedMqttImage {
  const kind = checkCompressed(payload, limits);
  let out: { width: number; height: number; data: Uint8Array };
  try {
    out = decode(payload);
  } catch (e) {
    throw decoderError(kind, e);
  }
  return compressedImage(out, limits, kind);
}

function describeStart(b: Uint8Array): string {
  return [...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Not a JPEG/PNG payload (and no raw header): throws the BitmarError that says what to send. */
function checkEncoded(payload: Uint8Array): void {
  if (payload.byteLength === 0) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', 'empty image payload');
  if (!isJpeg(payload) && !isPng(payload)) {
    throw new BitmarError(
      'BITMAR_ERR_IMAGE_DECODE',
      `not a JPEG or PNG (starts ${describeStart(payload)}); raw pixels need MQTT 5 user properties encoding, width, height (or the image/raw topic on MQTT 3.1.1)`,
    );
  }
}

function refusal(e: unknown): ImageMessageResult & { ok: false } {
  const err = e instanceof BitmarError ? e : new BitmarError('BITMAR_ERR_IMAGE_DECODE', String((e as Error)?.message ?? e), { cause: e });
  const reason: DropReason = e instanceof TooLarge ? 'too_large' : err.code === 'BITMAR_ERR_IMAGE_DECODE' ? 'decode_error' : 'invalid_input';
  return { ok: false, reason, code: err.code, detail: `${err.code}: ${err.message}` };
}

/**
 * Decodes one image payload. `raw` is the raw-pixel header (user properties or 3.1.1 envelope
 * already split), undefined for JPEG/PNG. Never throws.
 */
export function decodeImagePayload(payload: Uint8Array, raw: RawHeader | undefined, decode: ImageDecoder, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): ImageMessageResult {
  try {
    if (raw !== undefined) return { ok: true, image: decodeRawPixels(payload, raw, limits) };
    checkEncoded(payload);
    return { ok: true, image: decodeCompressed(payload, decode, limits) };
  } catch (e) {
    return refusal(e);
  }
}

/** Where `decodeImagePayloadAsync` sends the pixel work (src/sources/image/decode-pool.ts `DecodePool`). */
export interface ImageWork {
  /** JPEG/PNG bytes → pixels, as `ImageDecoder`. */
  decode(bytes: Uint8Array): Promise<{ width: number; height: number; data: Uint8Array }>;
  /** A checked raw view → RGB8, as `convertToRgb8`. */
  convert(view: RawImageView): Promise<{ width: number; height: number; data: Uint8Array }>;
  /** Errors that are not about the image (the pool dropped the job): they reject instead. */
  isSkip(e: unknown): boolean;
}

/**
 * `decodeImagePayload` with the decoding (and raw conversions other than tight rgb8, a copy) done
 * by `work`, off this thread. Headers are checked here first; the results and refusals are the same.
 * Rejects only with errors `work.isSkip` marks.
 */
export async function decodeImagePayloadAsync(payload: Uint8Array, raw: RawHeader | undefined, work: ImageWork, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<ImageMessageResult> {
  let pending: Promise<{ width: number; height: number; data: Uint8Array }>;
  let kind = '';
  try {
    if (raw !== undefined) {
      const view = rawView(payload, raw, limits);
      if (!checkRawImage(view, limits)) {
        const img = convertToRgb8(view, limits);
        return { ok: true, image: { width: img.width, height: img.height, data: img.data } };
      }
      pending = work.convert(view);
    } else {
      checkEncoded(payload);
      kind = checkCompressed(payload, limits);
      pending = work.decode(payload);
    }
  } catch (e) {
    return refusal(e);
  }
  let out: { width: number; height: number; data: Uint8Array };
  try {
    out = await pending;
  } catch (e) {
    if (work.isSkip(e)) throw e;
    return refusal(raw !== undefined ? e : decoderError(kind, e));
  }
  try {
    return { ok: true, image: raw !== undefined ? { width: out.width, height: out.height, data: out.data } : compressedImage(out, limits, kind) };
  } catch (e) {
    return refusal(e);
  }
}
