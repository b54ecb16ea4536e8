import { filter, type MonoTypeOperatorFunction } from 'rxjs';

export interface SampleOptions {
  /** Keep every Nth frame (1 = all). */
  readonly everyN: number;
  /** Minimum interval between kept frames, ms (0 = none). */
  readonly minIntervalMs: number;
}

/**
 * The sampling decision on its own: called once per arriving frame with its arrival time
 * (performance.now ms), true to keep it. Keeps every Nth frame and at most one frame per minimum
 * interval; options are read per call, so a runtime parameter change applies to the next frame.
 * A source can ask it before decoding (its `shouldDecode`), so a frame the sampler would drop is
 * never decoded; the pipeline then skips its own sample stage (topology.ts `sampledAtSource`).
 */
export function createSampler(options: () => SampleOptions): (receivedMs: number) => boolean {
  let seen = 0;
  let lastKeptMs = -Infinity;
  return (receivedMs) => {
    const { everyN, minIntervalMs } = options();
    const index = seen++;
    const keep = index % everyN === 0 && receivedMs - lastKeptMs >= minIntervalMs;
    if (keep) lastKeptMs = receivedMs;
    return keep;
  };
}

/**
 * Keeps every Nth frame and at most one frame per minimum interval (createSampler, fresh per
 * subscription). Dropped frames go to `onDrop`.
 */
export function sampleFrames<T extends { readonly receivedMs: number }>(
  options: () => SampleOptions,
  onDrop: (frame: T) => void,
): MonoTypeOperatorFunction<T> {
  return (source) => {
    const keep = createSampler(options);
    return source.pipe(
      filter((frame) => {
        const kept = keep(frame.receivedMs);
        if (!kept) onDrop(frame);
        return kept;
      }),
    );
  };
}
