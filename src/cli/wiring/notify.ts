/** systemd readiness and watchdog, or nothing when not under systemd. */
import type { Logger } from '../../log.js';

export interface Notifier {
  ready(): void;
  status(text: string): void;
  /** Called by the inference loop after each caption: the watchdog pings only while it is called. */
  kick(): void;
  reloading(): void;
  stopping(): void;
}

const NOOP: Notifier = { ready() {}, status() {}, kick() {}, reloading() {}, stopping() {} };

export async function createNotifier(log: Logger): Promise<Notifier> {
  if (!process.env.NOTIFY_SOCKET) return NOOP;
  try {
    const mod = (await import('../../service/sd-notify.js')) as { SystemdNotifier: new (opts?: { log?: Logger }) => Notifier };
    return new mod.SystemdNotifier({ log });
  } catch (e) {
    log.warn(`NOTIFY_SOCKET is set but sd_notify is unavailable: ${(e as Error).message}`);
    return NOOP;
  }
}
