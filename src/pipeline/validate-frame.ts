import type { Frame } from '../types.js';

/** Limits a decoded frame must satisfy before it reaches the model. */
export interface FrameLimits {
  readonly maxWidth: number;
  readonly maxHeight: number;
}

/** Returns why a frame is unusable, or null when it is fine. Pure, so every source shares it. */
export function frameProblem(frame: Frame, limits: FrameLimits): string | null {
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    return `frame ${frame.id} from ${frame.source} has invalid dimensions ${width}×${height}`;
  }
  if (width > limits.maxWidth || height > limits.maxHeight) {
    return `frame ${frame.id} from ${frame.source} is ${width}×${height}, larger than the ${limits.maxWidth}×${limits.maxHeight} limit`;
  }
  if (data.length !== width * height * 3) {
    return `frame ${frame.id} from ${frame.source} holds ${data.length} bytes, expected ${width * height * 3} for ${width}×${height} RGB8`;
  }
  return null;
}
