/**
 * systemd's readiness and watchdog protocol (sd_notify(3)), as node sees it.
 *
 * Transports, tried in order: the native addon's `sdNotify` (one datagram from node itself, which
 * is what `NotifyAccess=main` requires), then the `systemd-notify` program (a child process, so the
 * unit needs `NotifyAccess=all`; the installer writes that when the addon is missing), then nothing
 * (with a one-line reason). `SystemdNotifier` sends READY/STATUS/RELOADING/STOPPING and drives the
 * watchdog from the inference loop: see `kick()`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

import { loadNativeAddonModule } from '../native-addon.js';
import { PACKAGE_ROOT } from '../paths.js';

/** Where notifications go. */
export type NotifyTransportKind = 'addon' | 'systemd-notify' | 'none';

export interface NotifyTransport {
  readonly kind: NotifyTransportKind;
  /** One line saying why this transport was chosen (logged once at start). */
  readonly reason: string;
  /**
   * Sends one notification: newline-separated `VAR=VALUE` lines in one datagram. Resolves false
   * when it was not delivered; never rejects. Calls are delivered in order.
   */
  send(state: string): Promise<boolean>;
}

/** The part of the native addon this module uses (native/notify/sd_notify.cc). */
export interface NotifyAddon {
  /** true when sent; false when NOTIFY_SOCKET is unset or the send failed. */
  sdNotify(state: string): boolean;
}

function isNotifyAddon(value: unknown): value is NotifyAddon {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'sdNotify') === 'function';
}

/**
 * Loads the native addon's `sdNotify` (the local build, else the prebuilt one: src/native-addon.ts).
 * Returns the addon, or a one-line reason it is unavailable (not built, fails to load, or built
 * before sd_notify existed).
 */
export function loadNotifyAddon(packageRoot: string = PACKAGE_ROOT): NotifyAddon | string {
  try {
    const { addon } = loadNativeAddonModule({ packageRoot, check: (mod) => (isNotifyAddon(mod) ? null : 'has no sdNotify (rebuild it)') });
    return addon as NotifyAddon;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Finds an executable on PATH; null when absent. */
export function findExecutable(name: string, path: string | undefined = process.env.PATH): string | null {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Sends through the addon: synchronous, from node's own pid. */
export function addonTransport(addon: NotifyAddon, reason: string): NotifyTransport {
  return {
    kind: 'addon',
    reason,
    send: (state) => {
      try {
        return Promise.resolve(addon.sdNotify(state));
      } catch {
        return Promise.resolve(false);
      }
    },
  };
}

/**
 * Sends through `systemd-notify VAR=VALUE...`, one child at a time so messages keep their order.
 * systemd-notify (≥ 246) waits for systemd to process each message (BARRIER=1), so its exit is
 * the delivery.
 */
export function systemdNotifyTransport(executable: string, reason: string): NotifyTransport {
  let tail: Promise<boolean> = Promise.resolve(true);
  const runOnce = (state: string): Promise<boolean> =>
    new Promise((resolve) => {
      const child = spawn(executable, state.split('\n').filter((line) => line !== ''), { stdio: 'ignore' });
      child.once('error', () => resolve(false));
      child.once('exit', (code) => resolve(code === 0));
    });
  return {
    kind: 'systemd-notify',
    reason,
    send: (state) => {
      tail = tail.then(() => runOnce(state));
      return tail;
    },
  };
}

/** Drops every notification; `reason` says why. */
export function noopTransport(reason: string): NotifyTransport {
  return { kind: 'none', reason, send: () => Promise.resolve(false) };
}

export interface LoadNotifyTransportOptions {
  /** Environment to read NOTIFY_SOCKET, PATH and BITMAR_NOTIFY from. Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Where to look for the addon. Default: this package. */
  readonly packageRoot?: string;
}

/**
 * Picks the transport. `BITMAR_NOTIFY=addon|systemd-notify|none` forces one (tests, debugging);
 * a forced transport that is unavailable becomes `none` with the reason.
 */
export function loadNotifyTransport(options: LoadNotifyTransportOptions = {}): NotifyTransport {
  const env = options.env ?? process.env;
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') {
    return noopTransport('NOTIFY_SOCKET is not set (not started by systemd with Type=notify)');
  }
  const forced = env.BITMAR_NOTIFY;
  if (forced !== undefined && forced !== '' && forced !== 'addon' && forced !== 'systemd-notify' && forced !== 'none') {
    return noopTransport(`BITMAR_NOTIFY=${forced} is not one of addon, systemd-notify, none`);
  }
  if (forced === 'none') return noopTransport('BITMAR_NOTIFY=none');

  let addonProblem = 'BITMAR_NOTIFY=systemd-notify';
  if (forced !== 'systemd-notify') {
    const addon = loadNotifyAddon(options.packageRoot);
    if (typeof addon !== 'string') return addonTransport(addon, `native addon, socket ${socket}`);
    addonProblem = addon;
    if (forced === 'addon') return noopTransport(addonProblem);
  }
  const executable = findExecutable('systemd-notify', env.PATH);
  if (executable !== null) {
    return systemdNotifyTransport(
      executable,
      `${addonProblem}: using ${executable}, which needs NotifyAccess=all in the unit`,
    );
  }
  return noopTransport(`${addonProblem}, and systemd-notify is not on PATH: no readiness or watchdog notifications`);
}

/** What `formatStatus` reports. */
export interface StatusFigures {
  /** Captions (or inference steps) per second. */
  readonly fps: number;
  /** Median frame-to-caption latency, milliseconds. */
  readonly latencyMs: number;
  /** Inputs dropped since start. */
  readonly drops: number;
  /** Frames waiting for the model. */
  readonly queueDepth: number;
}

/** One STATUS= line for `systemctl status`: "12.3 fps, latency 85 ms, 4 dropped, queue 1". */
export function formatStatus(figures: StatusFigures): string {
  return `${figures.fps.toFixed(1)} fps, latency ${Math.round(figures.latencyMs)} ms, ${figures.drops} dropped, queue ${figures.queueDepth}`;
}

/** The timer functions the notifier uses; tests pass fakes. */
export interface NotifierTimers {
  setInterval(callback: () => void, periodMs: number): unknown;
  clearInterval(handle: unknown): void;
}

const realTimers: NotifierTimers = {
  setInterval: (callback, periodMs) => {
    const handle = setInterval(callback, periodMs);
    handle.unref(); // the watchdog must never be what keeps a stopping node alive
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface SystemdNotifierOptions {
  /** Default: `loadNotifyTransport({ env })`. */
  readonly transport?: NotifyTransport;
  /** Where WATCHDOG_USEC and WATCHDOG_PID are read. Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** This process's pid, compared with WATCHDOG_PID. Default: process.pid. */
  readonly pid?: number;
  readonly timers?: NotifierTimers;
  /** CLOCK_MONOTONIC in microseconds (MONOTONIC_USEC). Default: process.hrtime, which is CLOCK_MONOTONIC. */
  readonly monotonicUsec?: () => bigint;
  /** Where the one-line transport reason and send failures go. Default: stderr (the journal). */
  readonly log?: NotifierLog;
}

/** A line sink, or a logger such as pino's (reason at info, failures at warn). */
export type NotifierLog = ((line: string) => void) | { info(message: string): void; warn(message: string): void };

/**
 * Reads the watchdog period systemd asks for: WATCHDOG_USEC (microseconds), when WATCHDOG_PID is
 * unset or names this process (sd_watchdog_enabled(3)). Returns null when there is no watchdog;
 * throws RangeError when WATCHDOG_USEC is not a positive integer.
 */
export function watchdogUsecFromEnv(env: NodeJS.ProcessEnv, pid: number): bigint | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || usec === '') return null;
  if (!/^[0-9]+$/.test(usec) || BigInt(usec) === 0n) {
    throw new RangeError(`WATCHDOG_USEC=${usec} is not a positive integer number of microseconds`);
  }
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) return null;
  return BigInt(usec);
}

/**
 * Tells systemd where node is in its lifecycle (sd_notify(3)): `ready()` after the model is loaded
 * and inputs are live, `status()` with figures, `reloading()` on SIGHUP then `ready()` again,
 * `stopping()` on shutdown.
 *
 * Watchdog: a timer runs every WATCHDOG_USEC/2 once `ready()` was called, and sends WATCHDOG=1 only
 * if the inference loop called `kick()` since the previous ping (or declared itself idle with
 * `setIdle(true)`). A hung kernel therefore stops the pings and systemd restarts the node. A kick
 * after a tick that found no progress pings at once, so a slow step that then completes does not
 * also lose the next half period.
 */
export class SystemdNotifier {
  readonly transport: NotifyTransport;
  /** Half of WATCHDOG_USEC in milliseconds; null when systemd set no watchdog. */
  readonly watchdogIntervalMs: number | null;
  /** WATCHDOG=1 messages sent so far. */
  watchdogPings = 0;

  private readonly timers: NotifierTimers;
  private readonly monotonicUsec: () => bigint;
  private readonly logInfo: (line: string) => void;
  private readonly logWarn: (line: string) => void;
  private timer: unknown = null;
  private hasProgressed = false;
  private isIdle = false;
  private isPingOverdue = false;
  private isStopping = false;
  private lastStatus: string | null = null;
  private hasLoggedFailure = false;
  private pending: Promise<boolean> = Promise.resolve(true);

  constructor(options: SystemdNotifierOptions = {}) {
    const env = options.env ?? process.env;
    this.transport = options.transport ?? loadNotifyTransport({ env });
    this.timers = options.timers ?? realTimers;
    this.monotonicUsec = options.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n);
    const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
    this.logInfo = typeof log === 'function' ? log : (line) => log.info(line);
    this.logWarn = typeof log === 'function' ? log : (line) => log.warn(line);
    const usec = watchdogUsecFromEnv(env, options.pid ?? process.pid);
    this.watchdogIntervalMs = usec === null ? null : Number(usec) / 2000;
    this.logInfo(`systemd notify: ${this.transport.kind} (${this.transport.reason})`);
  }

  /** READY=1 (with an optional STATUS=), and starts the watchdog timer on the first call. */
  ready(statusText?: string): void {
    this.send(statusText === undefined ? 'READY=1' : `READY=1\n${statusLine(statusText)}`);
    if (statusText !== undefined) this.lastStatus = statusText;
    this.startWatchdog();
  }

  /** STATUS=<text>, shown by `systemctl status`; newlines become spaces; repeats are not resent. */
  status(text: string): void {
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    this.send(statusLine(text));
  }

  /** The inference loop made progress (call after each step): allows the next WATCHDOG=1. */
  kick(): void {
    this.hasProgressed = true;
    if (this.isPingOverdue) this.ping();
  }

  /**
   * The loop is waiting for input (true) or working (false). While idle the watchdog keeps pinging
   * without kicks, so a camera that stops sending does not get the node restarted. Default false.
   */
  setIdle(isIdle: boolean): void {
    this.isIdle = isIdle;
    if (isIdle && this.isPingOverdue) this.ping();
  }

  /** RELOADING=1 with MONOTONIC_USEC (systemd ≥ 253 requires it); call `ready()` when done. */
  reloading(statusText = 'reloading configuration'): void {
    this.lastStatus = statusText;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${this.monotonicUsec()}\n${statusLine(statusText)}`);
  }

  /** STOPPING=1, and no more watchdog pings. */
  stopping(statusText = 'stopping'): void {
    this.isStopping = true;
    this.stopWatchdog();
    this.lastStatus = statusText;
    this.send(`STOPPING=1\n${statusLine(statusText)}`);
  }

  /** EXTEND_TIMEOUT_USEC: asks for more start (or stop) time, e.g. while a large model loads. */
  extendTimeout(timeoutMs: number): void {
    this.send(`EXTEND_TIMEOUT_USEC=${Math.ceil(timeoutMs * 1000)}`);
  }

  /** Resolves when every notification sent so far was handed over (or failed). */
  async flush(): Promise<void> {
    await this.pending;
  }

  /** Stops the watchdog timer. */
  dispose(): void {
    this.stopWatchdog();
  }

  private startWatchdog(): void {
    if (this.watchdogIntervalMs === null || this.timer !== null || this.isStopping) return;
    this.timer = this.timers.setInterval(() => this.tick(), this.watchdogIntervalMs);
  }

  private stopWatchdog(): void {
    if (this.timer === null) return;
    this.timers.clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    if (this.hasProgressed || this.isIdle) this.ping();
    else this.isPingOverdue = true;
  }

  private ping(): void {
    if (this.timer === null) return;
    this.hasProgressed = false;
    this.isPingOverdue = false;
    this.watchdogPings += 1;
    this.send('WATCHDOG=1');
  }

  private send(state: string): void {
    const delivery = this.transport.send(state);
    this.pending = delivery;
    void delivery.then((isSent) => {
      if (isSent || this.hasLoggedFailure || this.transport.kind === 'none') return;
      this.hasLoggedFailure = true;
      this.logWarn(`systemd notify: a notification was not delivered through ${this.transport.kind} (further failures not logged)`);
    });
  }
}

function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ')}`;
}
