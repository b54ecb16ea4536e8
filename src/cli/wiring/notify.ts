/** systemd readiness and watchdog (sd_notify), or nothing when not under systemd. */
import type { Logger } from '../../log.js';
import { SystemdNotifier } from '../../service/sd-notify.js';

export interface Notifier {
  ready(): void;
  status(text: string): void;
  /** Called by the inference loop after each step: the watchdog pings only while it is called… */
  kick(): void;
  /** …or while the loop says it is idle (waiting for input). */
  setIdle(isIdle: boolean): void;
  reloading(): void;
  stopping(): void;
  dispose?(): void;
}

const NOOP: Notifier = { ready() {}, status() {}, kick() {}, setIdle() {}, reloading() {}, stopping() {} };

export function createNotifier(log: Logger): Notifier {
  if (!process.env.NOTIFY_SOCKET) return NOOP;
  return new SystemdNotifier({ log: { info: (m) => log.info(m), warn: (m) => log.warn(m) } });
}
