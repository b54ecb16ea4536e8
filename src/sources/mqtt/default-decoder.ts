/**
 * The JPEG/PNG decoder MQTT images go through by default: `decodeImage` of
 * src/sources/image/decode.ts, with its size limits raised to the source's (the source checks
 * the header against its own limits first, so an oversize image is a `too_large` drop).
 */
import type { ImageLimits } from '../../ros2/image-decode.js';
import { decodeImage } from '../image/decode.js';

/** Bytes of a JPEG or PNG file → pixels (RGB8; RGBA8 is accepted and its alpha dropped). Throws BitmarError. */
export type ImageDecoder = (bytes: Uint8Array) => { width: number; height: number; data: Uint8Array };

/** `decodeImage` with the given dimension limits. */
export function defaultImageDecoder(limits: ImageLimits): ImageDecoder {
  return (bytes) => decodeImage(bytes, undefined, { maxWidth: limits.maxWidth, maxHeight: limits.maxHeight });
}
