/**
 * Notices a frame source that goes quiet — a ROS 2 publisher that vanished, a camera that hung, an
 * MQTT device that stopped sending — and when it speaks again. Nothing is torn down: subscriptions
 * stay, so the next frame flows through as usual; the watch only reports the silence (an `input`
 * event: a log line and a metric for the sinks).
 *
 * Frames that never reach the watch still count when the caller passes them as `arrivals$`: the
 * MQTT and ROS 2 sources apply the sampling policy before decoding, so under heavy sampling (every
 * 30th frame at 1 fps, say) the frames the watch sees can be further apart than `silenceMs` while
 * the camera sends steadily; their sampled-out arrivals keep the watch quiet.
 *
 * Cost per frame or arrival: one clock read. The timer fires about once per `silenceMs` while frames
 * flow (re-armed for the time left), and not at all while the source is silent.
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
  /**
   * The last frame passed through before the silence (absent when none came yet), or the first one
   * after it (absent when an `arrivals$` arrival, not a frame, ended the silence).
   */
  readonly frame?: { readonly id: number; readonly source: string };
  /** One line for the log. */
  readonly message: string;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Passes frames through unchanged and calls `onStatus` when none has arrived for `silenceMs`
 * (counted from subscription for the first one) and again when frames come back. `silenceMs` ≤ 0
 * turns the watch off. The scheduler's clock is used throughout (virtual time in tests).
 *
 * `arrivals$` (optional): inputs that arrived but do not pass through here — frames the source
 * sampled out before decoding, or dropped while its decoder was busy. Each one resets the silence
 * clock like a frame (and ends a reported silence); its values are not looked at. It is subscribed
 * with the frames and unsubscribed with them; its end or error is ignored.
 */
export function watchInput<T extends { readonly id: number; readonly source: string }>(
  silenceMs: number,
  onStatus: (status: InputStatus) => void,
  scheduler: SchedulerLike = asyncScheduler,
  arrivals$?: Observable<unknown>,
): MonoTypeOperatorFunction<T> {
  if (!(silenceMs > 0)) return (source) => source;
  return (source) =>
    new Observable<T>((subscriber) => {
      let lastAt = scheduler.now();
      let last: { id: number; source: string } | undefined;
      /** The latest input was an arrival, not `last`: `last` is older than the silence's start. */
      let arrivedSince = false;
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
        const what = !last
          ? `no frames ${arrivedSince ? `for ${seconds(quiet)} (none passed on yet)` : `yet after ${seconds(quiet)}`}`
          : arrivedSince
            ? `no frames for ${seconds(quiet)} (last passed on: frame ${last.id} from ${last.source})`
            : `no frames for ${seconds(quiet)} since frame ${last.id} from ${last.source}`;
        onStatus({
          state: 'silent',
          silentMs: quiet,
          ...(last ? { frame: { ...last } } : {}),
          message: `${what}; still listening, captioning resumes with the next frame`,
        });
      };

      /** An input at `now`: ends a reported silence (`frame` undefined: an arrival, not a frame). */
      const heard = (now: number, frame?: { readonly id: number; readonly source: string }): void => {
        if (silent) {
          silent = false;
          const gap = now - lastAt;
          onStatus({
            state: 'resumed',
            silentMs: gap,
            ...(frame ? { frame: { id: frame.id, source: frame.source } } : {}),
            message: frame ? `frames again from ${frame.source} after ${seconds(gap)} without` : `frames arriving again after ${seconds(gap)} without`,
          });
          arm(silenceMs);
        }
        lastAt = now;
      };

      arm(silenceMs);
      const arrivals = arrivals$?.subscribe({
        next: () => {
          heard(scheduler.now());
          arrivedSince = true;
        },
        error: () => undefined,
      });
      const upstream = source.subscribe({
        next: (frame) => {
          heard(scheduler.now(), frame);
          last = { id: frame.id, source: frame.source };
          arrivedSince = false;
          subscriber.next(frame);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return () => {
        upstream.unsubscribe();
        arrivals?.unsubscribe();
        timer?.unsubscribe();
        timer = null;
      };
    });
}
