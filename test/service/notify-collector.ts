/**
 * Plays systemd's side of sd_notify(3) for tests: binds a NOTIFY_SOCKET of its own (an AF_UNIX
 * datagram socket, through a small python3 helper, since Node has none), runs a real child process
 * with NOTIFY_SOCKET set, and records every notification with its arrival time.
 *
 * Point it at any program, e.g. the node itself:
 *   const run = await collectNotifications(process.execPath, ['bin/bitmar-node.js', 'run', '--frames', '50'],
 *     { WATCHDOG_USEC: '2000000' }, 20_000);
 *   assert.ok(run.messages.some((m) => m.fields.READY === '1'));
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const LISTENER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'notify-listener.py');

/** One datagram received on the socket. */
export interface Notification {
  /** Milliseconds since the child was spawned (CLOCK_MONOTONIC on both sides). */
  readonly atMs: number;
  /** The raw payload. */
  readonly state: string;
  /** Its VAR=VALUE lines. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface CollectedRun {
  /** In arrival order; systemd-notify's BARRIER=1 messages are left out. */
  readonly messages: readonly Notification[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when `untilMs` ran out and the child was killed (SIGKILL). */
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** Child spawn time on CLOCK_MONOTONIC, milliseconds (to compare with MONOTONIC_USEC). */
  readonly startMonotonicMs: number;
}

export interface CollectOptions {
  /** Called for each notification as it arrives: send the child signals from here. */
  readonly onMessage?: (message: Notification, child: ChildProcess, all: readonly Notification[]) => void;
  /** Socket name; default a fresh path in a temporary directory. '@name' binds an abstract socket. */
  readonly socketName?: string;
  readonly cwd?: string;
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function parseFields(state: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of state.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

/** Starts the python3 listener; resolves once its socket is bound. */
async function startListener(name: string): Promise<{ proc: ChildProcess; lines: AsyncIterableIterator<string> }> {
  const proc = spawn('python3', [LISTENER, name], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done === true || !String(first.value).includes('listening')) {
    proc.kill();
    throw new Error(`the notify listener did not start (python3 ${LISTENER})`);
  }
  return { proc, lines };
}

/**
 * Runs `cmd args` with NOTIFY_SOCKET pointing at a socket this function binds, plus `env` (merged
 * over process.env), until it exits or `untilMs` passes (then SIGKILL). Never rejects because of the
 * child; rejects only when python3 or the socket cannot be set up.
 */
export async function collectNotifications(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  untilMs: number,
  options: CollectOptions = {},
): Promise<CollectedRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-notify-'));
  const socketName = options.socketName ?? join(dir, 'notify.sock');
  const listener = await startListener(socketName);
  const messages: Notification[] = [];
  const startMonotonicMs = monotonicMs();
  const child = spawn(cmd, [...args], {
    cwd: options.cwd,
    env: { ...process.env, ...env, NOTIFY_SOCKET: socketName },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  const reading = (async () => {
    for await (const line of listener.lines) {
      const record = JSON.parse(line) as { atMs: number; state: string };
      if (record.state === 'BARRIER=1') continue;
      const message: Notification = { atMs: record.atMs - startMonotonicMs, state: record.state, fields: parseFields(record.state) };
      messages.push(message);
      options.onMessage?.(message, child, messages);
    }
  })();

  let timedOut = false;
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, untilMs);
    child.once('error', () => {
      clearTimeout(timer);
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  // Let datagrams already queued reach the listener, then stop it (closing stdin ends it).
  await new Promise((resolve) => setTimeout(resolve, 150));
  listener.proc.stdin!.end();
  await reading;
  rmSync(dir, { recursive: true, force: true });
  return { messages, exitCode: exit.code, signal: exit.signal, timedOut, stdout, stderr, startMonotonicMs };
}

/** The messages that carry `key` (e.g. 'WATCHDOG', 'READY'). */
export function withField(messages: readonly Notification[], key: string): Notification[] {
  return messages.filter((message) => key in message.fields);
}
