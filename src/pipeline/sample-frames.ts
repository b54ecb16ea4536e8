import { filter, type MonoTypeOperatorFunction } from 'rxjs';

export interface SampleOptions {
  /** Keep every Nth frame (1 = all). */
  readonly everyN: number;
  /** Minimum interval between kept frames, ms (0 = none). */
  readonly minIntervalMs: number;
}

/**
 * Keeps every Nth frame and at most one frame per minimum interval. Options are read per frame,
 * so a runtime parameter change applies to the next frame. Dropped frames go to `onDrop`.
 */
export function sampleFrames<T extends { readonly receivedMs: number }>(
  options: () => SampleOptions,
  onDrop: (frame: T) => void,
): MonoTypeOperatorFunction<T> {
  return (source) => {
    let seen = 0;
    let lastKeptMs = -Infinity;
    return source.pipe(
      filter((frame) => {
        const { everyN, minIntervalMs } = options();
        const index = seen++;
        const keep = index % everyN === 0 && frame.receivedMs - lastKeptMs >= minIntervalMs;
        if (keep) lastKeptMs = frame.receivedMs;
        else onDrop(frame);
        return keep;
      }),
    );
  };
}
