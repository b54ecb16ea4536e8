/**
 * Structured logs (pino). JSON on stderr when it is not a terminal (journald keeps it as it is);
 * short human lines when it is. A limiter lets one line per kind through per interval so a bad
 * input stream cannot flood the journal.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Turns pino's JSON lines into `HH:MM:SS level message key=value` for a terminal. */
function humanLines(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        const { level, time, msg, app: _app, pid: _pid, hostname: _h, ...rest } = rec;
        const t = new Date(typeof time === 'number' ? time : Date.now()).toTimeString().slice(0, 8);
        const extra = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        out.write(`${t} ${LEVEL_NAMES[level as number] ?? String(level)} ${String(msg ?? '')}${extra ? '  ' + extra : ''}\n`);
      } catch {
        out.write(line);
      }
    },
  };
}

export function createLogger(level: string, stream: NodeJS.WriteStream = process.stderr): Logger {
  const options = {
    level,
    base: { app: 'bitmar-node' },
    redact: { paths: ['password', '*.password', 'mqtt.password', 'key', '*.key'], censor: '[redacted]' },
  };
  if (stream.isTTY) return pino(options, humanLines(stream));
  return pino(options, pino.destination({ fd: stream === process.stdout ? 1 : 2, sync: false }));
}

/** Counts repeats per key and reports the count with the next line allowed through. */
export class RepeatLimiter {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Returns the number of suppressed repeats to report, or -1 when this line must be dropped. */
  admit(key: string): number {
    const t = this.now();
    const entry = this.last.get(key);
    if (!entry || t - entry.atMs >= this.intervalMs) {
      const suppressed = entry?.suppressed ?? 0;
      this.last.set(key, { atMs: t, suppressed: 0 });
      if (this.last.size > 1000) this.last.delete(this.last.keys().next().value as string);
      return suppressed;
    }
    entry.suppressed++;
    return -1;
  }
}
