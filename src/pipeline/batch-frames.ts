import { asyncScheduler, bufferTime, filter, type OperatorFunction, type SchedulerLike } from 'rxjs';

/**
 * Groups frames into batches of at most `maxSize`, emitted when full or after `maxWaitMs`
 * (whichever comes first). Empty windows emit nothing. Bounded by `maxSize` by construction.
 */
export function batchFrames<T>(maxSize: number, maxWaitMs: number, scheduler: SchedulerLike = asyncScheduler): OperatorFunction<T, T[]> {
  return (source) =>
    source.pipe(
      bufferTime(Math.max(1, maxWaitMs), null, maxSize, scheduler),
      filter((batch) => batch.length > 0),
    );
}
