/**
 * Still-image decoding for the sources (MQTT payloads, files, bag attachments): PNG, JPEG and
 * Netpbm PPM/PGM → tightly packed RGB8, the Frame layout (src/types.ts).
 *
 * The format comes from the magic bytes (a hint only sharpens the error message). Every failure is
 * a BitmarError: BITMAR_ERR_IMAGE_DECODE for unknown, corrupt or truncated data,
 * BITMAR_ERR_IMAGE_SIZE for zero or too large dimensions; library exceptions are wrapped (as
 * `cause`), never passed on. Limits are checked from the header before any pixel is decoded.
 * Alpha is dropped (not composited); grey is replicated to R, G, B; 16-bit samples keep their high
 * byte (pngjs rescale, PPM `v·255/maxval` rounded).
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { BitmarError } from '../../errors.js';

export type ImageFormat = 'png' | 'jpeg' | 'ppm';

/** Decoded image: RGB8, length width·height·3. */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
  readonly format: ImageFormat;
}

export interface ImageLimits {
  /** Largest accepted width, pixels. Default 4096. */
  readonly maxWidth?: number;
  /** Largest accepted height, pixels. Default 4096. */
  readonly maxHeight?: number;
  /** Largest accepted encoded input, bytes. Default 50 MiB. */
  readonly maxBytes?: number;
  /** Working-memory cap handed to the JPEG decoder, MiB. Default 512. */
  readonly maxJpegMemoryMB?: number;
}

const DEFAULT_LIMITS: Required<ImageLimits> = { maxWidth: 4096, maxHeight: 4096, maxBytes: 50 * 1024 * 1024, maxJpegMemoryMB: 512 };

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format named by the magic bytes, or undefined. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 3 && bytes[0] === 0x50 && [0x32, 0x33, 0x35, 0x36].includes(bytes[1]!) && isSpace(bytes[2]!)) return 'ppm';
  return undefined;
}

/**
 * Decodes PNG (any bit depth and colour type, palette included), baseline/progressive JPEG, or
 * PPM/PGM (P6/P5 binary with maxval ≤ 65535, P3/P2 ASCII) to RGB8. `hint` is the format the caller
 * expects (e.g. from a content type); the bytes decide. Throws BitmarError (see file comment).
 */
export function decodeImage(bytes: Uint8Array, hint?: ImageFormat, limits: ImageLimits = {}): DecodedImage {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  if (bytes.length === 0) throw decodeError(hint, 'the data is empty');
  if (bytes.length > lim.maxBytes) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `image data is ${bytes.length} bytes, over the ${lim.maxBytes}-byte limit; send a smaller image or raise the limit`);
  }
  const format = sniffFormat(bytes);
  switch (format) {
    case 'png':
      return decodePng(bytes, lim);
    case 'jpeg':
      return decodeJpeg(bytes, lim);
    case 'ppm':
      return decodePpm(bytes, lim);
    case undefined: {
      const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
      const expected = hint ? `; expected ${hint.toUpperCase()} but the magic bytes do not match` : '';
      throw decodeError(undefined, `unrecognised image format (first bytes ${head})${expected}; supported: PNG, JPEG, PPM/PGM (P2, P3, P5, P6)`);
    }
  }
}

function decodeError(format: ImageFormat | undefined, what: string, cause?: unknown): BitmarError {
  const name = format ? `${format.toUpperCase()} image: ` : '';
  return new BitmarError('BITMAR_ERR_IMAGE_DECODE', `${name}${what}`, cause === undefined ? undefined : { cause });
}

function checkDimensions(format: ImageFormat, width: number, height: number, lim: Required<ImageLimits>): void {
  if (!(width > 0 && height > 0)) {
    throw new BitmarError('BITMAR_ERR_IMAGE_SIZE', `${format.toUpperCase()} image has size ${width}×${height}; both sides must be at least 1`);
  }
  if (width > lim.maxWidth || height > lim.maxHeight) {
    throw new BitmarError(
      'BITMAR_ERR_IMAGE_SIZE',
      `${format.toUpperCase()} image is ${width}×${height}, over the ${lim.maxWidth}×${lim.maxHeight} limit; downscale it before sending`,
    );
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------
// PNG

function decodePng(bytes: Uint8Array, lim: Required<ImageLimits>): DecodedImage {
  // IHDR is the first chunk: length(4) "IHDR"(4) width(4) height(4), big-endian, at offset 8.
  if (bytes.length < 33) throw decodeError('png', `the data is truncated (${bytes.length} bytes, a PNG needs at least 33)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw decodeError('png', 'the first chunk is not IHDR (corrupt file)');
  checkDimensions('png', view.getUint32(16), view.getUint32(20), lim);
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw decodeError('png', `corrupt or truncated data (${messageOf(e)})`, e);
  }
  const { width, height } = png;
  const rgba = png.data;
  if (rgba.length < width * height * 4) throw decodeError('png', 'decoder returned fewer pixels than the header declares');
  const data = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < data.length; p += 3, q += 4) {
    data[p] = rgba[q]!;
    data[p + 1] = rgba[q + 1]!;
    data[p + 2] = rgba[q + 2]!;
  }
  return { width, height, data, format: 'png' };
}

// ---------------------------------------------------------------------------------------------
// JPEG

/** Width and height from the first SOFn marker, or undefined when none is found. */
function jpegDimensions(bytes: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[i + 5]! << 8) | bytes[i + 6]!, width: (bytes[i + 7]! << 8) | bytes[i + 8]! };
    }
    if (marker === 0xda) return undefined; // start of scan before any frame header
    i += 2 + length;
  }
  return undefined;
}

function decodeJpeg(bytes: Uint8Array, lim: Required<ImageLimits>): DecodedImage {
  const dims = jpegDimensions(bytes);
  if (!dims) throw decodeError('jpeg', 'no frame header (SOF marker) found: the data is corrupt or truncated');
  checkDimensions('jpeg', dims.width, dims.height, lim);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: (lim.maxWidth * lim.maxHeight) / 1e6 + 1,
      maxMemoryUsageInMB: lim.maxJpegMemoryMB,
    });
  } catch (e) {
    throw decodeError('jpeg', `corrupt, truncated or unsupported data (${messageOf(e)})`, e);
  }
  const { width, height, data } = img;
  if (data.length !== width * height * 3) throw decodeError('jpeg', `decoder returned ${data.length} bytes for ${width}×${height} RGB`);
  return { width, height, data, format: 'jpeg' };
}

// ---------------------------------------------------------------------------------------------
// PPM / PGM (Netpbm): P6 binary RGB, P5 binary grey, P3 / P2 their ASCII forms.

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
}

/** Reads whitespace/comment-separated decimal tokens from `pos`; returns the number and next offset. */
function readToken(bytes: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let i = pos;
  for (;;) {
    while (i < bytes.length && isSpace(bytes[i]!)) i++;
    if (bytes[i] !== 0x23) break; // '#' comment to end of line
    while (i < bytes.length && bytes[i] !== 0x0a && bytes[i] !== 0x0d) i++;
  }
  const start = i;
  let value = 0;
  while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39 && i - start < 9) value = value * 10 + bytes[i++]! - 0x30;
  if (i === start || (i < bytes.length && !isSpace(bytes[i]!) && bytes[i] !== 0x23)) return undefined;
  return { value, next: i };
}

function decodePpm(bytes: Uint8Array, lim: Required<ImageLimits>): DecodedImage {
  const kind = String.fromCharCode(bytes[0]!, bytes[1]!);
  const channels = kind === 'P6' || kind === 'P3' ? 3 : 1;
  const isAscii = kind === 'P3' || kind === 'P2';
  const fields: number[] = [];
  let pos = 2;
  for (const name of ['width', 'height', 'maxval']) {
    const t = readToken(bytes, pos);
    if (!t) throw decodeError('ppm', `${kind} header: ${name} is missing or not a decimal number`);
    fields.push(t.value);
    pos = t.next;
  }
  const [width, height, maxval] = fields as [number, number, number];
  checkDimensions('ppm', width, height, lim);
  if (maxval < 1 || maxval > 65535) throw decodeError('ppm', `${kind} header: maxval ${maxval} must be 1..65535`);
  const samples = width * height * channels;
  // Check the length before allocating, so a short header cannot claim a huge buffer.
  if (isAscii) {
    const left = bytes.length - pos;
    if (left < 2 * samples - 1) throw decodeError('ppm', `${kind} data is truncated: ${width}×${height} needs ${samples} samples, and ${left} bytes cannot hold them`);
  } else {
    pos++; // exactly one whitespace byte ends the header
    const need = samples * (maxval > 255 ? 2 : 1);
    const left = Math.max(0, bytes.length - pos);
    if (left < need) throw decodeError('ppm', `${kind} data is truncated: ${width}×${height} needs ${need} bytes after the header, got ${left}`);
  }
  const raw = new Uint16Array(samples);
  for (let k = 0; k < samples; k++) {
    if (isAscii) {
      const t = readToken(bytes, pos);
      if (!t) throw decodeError('ppm', `${kind} data: sample ${k} of ${samples} is missing or not a number`);
      raw[k] = t.value;
      pos = t.next;
    } else {
      raw[k] = maxval > 255 ? (bytes[pos + 2 * k]! << 8) | bytes[pos + 2 * k + 1]! : bytes[pos + k]!;
    }
  }
  const data = new Uint8Array(width * height * 3);
  for (let k = 0; k < samples; k++) {
    const v = raw[k]!;
    if (v > maxval) throw decodeError('ppm', `${kind} data: sample ${k} is ${v}, above maxval ${maxval}`);
    const byte = maxval === 255 ? v : Math.floor((v * 255) / maxval + 0.5);
    if (channels === 3) data[k] = byte;
    else data[3 * k] = data[3 * k + 1] = data[3 * k + 2] = byte;
  }
  return { width, height, data, format: 'ppm' };
}

// ---------------------------------------------------------------------------------------------
// Encoders (tests and tools)

/** RGB8 → PNG bytes (colour type 2, 8 bits). */
export function encodePng(img: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const { width, height, data } = img;
  if (data.length !== width * height * 3) throw new RangeError(`RGB8 data of ${data.length} bytes does not match ${width}×${height}`);
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

/** RGB8 → binary PPM (P6, maxval 255). */
export function encodePpm(img: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const { width, height, data } = img;
  if (data.length !== width * height * 3) throw new RangeError(`RGB8 data of ${data.length} bytes does not match ${width}×${height}`);
  const header = Buffer.from(`P6\n${width} ${height}\n255\n`, 'latin1');
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}
