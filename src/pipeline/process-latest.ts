import { Observable, type OperatorFunction, type Subscription } from 'rxjs';

export interface ProcessLatestOptions<T> {
  /** Most items held while one is being processed; beyond it the oldest is dropped. */
  readonly limit: number;
  /** Called for each item that is never processed, with why. */
  readonly onDrop: (item: T, reason: 'queue_full' | 'stale' | 'superseded') => void;
  /** When true, a new item cancels (unsubscribes) the running one. */
  readonly cancelRunningOnNewer?: () => boolean;
  /** Checked when an item is about to start: a stale item is dropped instead. */
  readonly isStale?: (item: T) => boolean;
}

/**
 * Like exhaustMap, but remembers the newest items that arrive while busy (bounded) and processes the
 * newest of them next — latest wins, so a slow model always works on the freshest frames.
 */
export function processLatest<T, R>(project: (item: T) => Observable<R>, options: ProcessLatestOptions<T>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const pending: T[] = [];
      let active: Subscription | null = null;
      let sourceDone = false;

      const startNext = (): void => {
        while (!active && pending.length > 0) {
          const item = pending.pop() as T; // newest first
          for (const older of pending.splice(0)) options.onDrop(older, 'superseded');
          if (options.isStale?.(item)) {
            options.onDrop(item, 'stale');
            continue;
          }
          run(item);
        }
        if (!active && sourceDone) subscriber.complete();
      };

      const run = (item: T): void => {
        let finished = false;
        const sub = project(item).subscribe({
          next: (v) => subscriber.next(v),
          error: (e) => subscriber.error(e),
          complete: () => {
            finished = true;
            active = null;
            startNext();
          },
        });
        if (!finished) active = sub;
      };

      const upstream = source.subscribe({
        next: (item) => {
          if (active && options.cancelRunningOnNewer?.()) {
            active.unsubscribe();
            active = null;
          }
          pending.push(item);
          while (pending.length > options.limit) options.onDrop(pending.shift() as T, 'queue_full');
          if (!active) startNext();
        },
        error: (e) => subscriber.error(e),
        complete: () => {
          sourceDone = true;
          if (!active) startNext();
        },
      });

      return () => {
        upstream.unsubscribe();
        active?.unsubscribe();
        pending.length = 0;
      };
    });
}
