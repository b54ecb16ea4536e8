/**
 * The signals systemd sends a service, mapped onto the notifier: SIGHUP (`systemctl reload`,
 * ExecReload=) → RELOADING=1, reload, READY=1; SIGTERM (`systemctl stop`) and SIGINT → STOPPING=1,
 * stop. Library code: it never exits the process; the `stop` handler decides how node ends.
 */
import type { SystemdNotifier } from './sd-notify.js';

export interface ServiceLifecycleHandlers {
  /**
   * Re-reads the configuration, keeping the loaded model where possible. Absent: SIGHUP is
   * acknowledged (RELOADING=1, READY=1) and otherwise ignored, rather than killing node, which is
   * what an unhandled SIGHUP does.
   */
  readonly reload?: () => Promise<void> | void;
  /** Closes inputs, finishes or cancels the current caption, closes sinks. Called once. */
  readonly stop: (signal: NodeJS.Signals) => Promise<void> | void;
  /** Where a failed reload is reported. Default: stderr. */
  readonly log?: (line: string) => void;
}

/** The part of `process` this module uses (tests pass an EventEmitter). */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

/** Installs SIGHUP/SIGTERM/SIGINT handlers; returns a function that removes them. */
export function handleServiceSignals(
  notifier: SystemdNotifier,
  handlers: ServiceLifecycleHandlers,
  source: SignalSource = process,
): () => void {
  const log = handlers.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let reloading: Promise<void> | null = null;
  let isStopping = false;

  const onHangup = (): void => {
    if (isStopping || reloading !== null) return; // one reload at a time; none while stopping
    notifier.reloading();
    reloading = (async () => {
      try {
        await handlers.reload?.();
        if (!isStopping) notifier.ready('running (configuration reloaded)');
      } catch (e) {
        log(`reload failed, keeping the previous configuration: ${e instanceof Error ? e.message : String(e)}`);
        if (!isStopping) notifier.ready('running (reload failed, previous configuration kept)');
      } finally {
        reloading = null;
      }
    })();
  };

  const onStop = (signal: NodeJS.Signals): void => {
    if (isStopping) return;
    isStopping = true;
    notifier.stopping();
    void (async () => {
      try {
        await reloading;
        await notifier.flush(); // STOPPING=1 is out before `stop` may end the process
        await handlers.stop(signal);
      } catch (e) {
        log(`stop failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    })();
  };
  const onTerm = (): void => onStop('SIGTERM');
  const onInt = (): void => onStop('SIGINT');

  source.on('SIGHUP', onHangup);
  source.on('SIGTERM', onTerm);
  source.on('SIGINT', onInt);
  return () => {
    source.off('SIGHUP', onHangup);
    source.off('SIGTERM', onTerm);
    source.off('SIGINT', onInt);
  };
}
