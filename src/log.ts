/**
 * Structured logs (pino, JSON on stderr — journald keeps them as they are), and a limiter that
 * lets one line per kind through per interval so a bad input stream cannot flood the journal.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, pretty = false): Logger {
  return pino(
    {
      level,
      base: { app: 'bitmar-node' },
      redact: { paths: ['password', '*.password', 'mqtt.password', 'key', '*.key'], censor: '[redacted]' },
    },
    pretty ? pino.destination({ fd: 2, sync: true }) : pino.destination({ fd: 2, sync: false }),
  );
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
