/**
 * Notices a frame source that goes quiet — a ROS 2 publisher that vanished, a camera that hung, an
 * MQTT device that stopped sending — and when it speaks again. Nothing is torn down: subscriptions
 * stay, so the next frame flows through as usual; the watch only reports the silence (an `input`
 * event: a log line and a metric for the sinks).
 *
 * Cost per frame: one clock read. The timer fires about once per `silenceMs` while frames flow
 * (re-armed for the time left), and not at all while the source is silent.
 */
import { Observable, asyncScheduler, type MonoTypeOperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

/** What the watch reports. */
export interface InputStatus {
  /**
   * `silent`: no frame for `silentMs` (the threshold; reported once per silence).
   * `resumed`: a frame arrived after a reported silence that lasted `silentMs`.
   */
  readonly state: 'silent' | 'resumed';
  readonly silentMs: number;
  /** The last frame before the silence (absent when none came yet), or the first one after it. */
  readonly frame?: { readonly id: number; readonly source: string };
  /** One line for the log. */
  readonly message: string;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Passes frames through unchanged and calls `onStatus` when none has arrived for `silenceMs`
 * (counted from subscription for the first one) and again when frames come back. `silenceMs` ≤ 0
 * turns the watch off. The scheduler's clock is used throughout (virtual time in tests).
 */
export function watchInput<T extends { readonly id: number; readonly source: string }>(
  silenceMs: number,
  onStatus: (status: InputStatus) => void,
  scheduler: SchedulerLike = asyncScheduler,
): MonoTypeOperatorFunction<T> {
  if (!(silenceMs > 0)) return (source) => source;
  return (source) =>
    new Observable<T>((subscriber) => {
      let lastAt = scheduler.now();
      let last: { id: number; source: string } | undefined;
      let silent = false;
      let timer: Subscription | null = null;

      const arm = (delayMs: number): void => {
        timer = scheduler.schedule(check, Math.max(0, delayMs));
      };
      const check = (): void => {
        timer = null;
        const quiet = scheduler.now() - lastAt;
        if (quiet < silenceMs) return arm(silenceMs - quiet);
        silent = true;
        const what = last ? `no frames for ${seconds(quiet)} since frame ${last.id} from ${last.source}` : `no frames yet after ${seconds(quiet)}`;
        onStatus({
          state: 'silent',
          silentMs: quiet,
          ...(last ? { frame: { ...last } } : {}),
          message: `${what}; still listening, captioning resumes with the next frame`,
        });
      };

      arm(silenceMs);
      const upstream = source.subscribe({
        next: (frame) => {
          const now = scheduler.now();
          if (silent) {
            silent = false;
            const gap = now - lastAt;
            onStatus({
              state: 'resumed',
              silentMs: gap,
              frame: { id: frame.id, source: frame.source },
              message: `frames again from ${frame.source} after ${seconds(gap)} without`,
            });
            arm(silenceMs);
          }
          lastAt = now;
          last = { id: frame.id, source: frame.source };
          subscriber.next(frame);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return () => {
        upstream.unsubscribe();
        timer?.unsubscribe();
        timer = null;
      };
    });
}
