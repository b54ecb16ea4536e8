/**
 * The logger the MQTT code writes to: pino's call shape (`log.warn(obj, msg)`), so a pino logger
 * can be passed as is. Every object passed is redacted first (redact.ts).
 */
import { redact } from './redact.js';

export type LogFn = (obj: object, msg: string) => void;

export interface MqttLogger {
  readonly debug?: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

/** Writes warnings and errors to stderr, one line each; info is dropped. */
export const stderrLogger: MqttLogger = {
  info: () => {},
  warn: (obj, msg) => process.stderr.write(`[mqtt] warn: ${msg} ${JSON.stringify(obj)}\n`),
  error: (obj, msg) => process.stderr.write(`[mqtt] error: ${msg} ${JSON.stringify(obj)}\n`),
};

/** Logs nothing (tests). */
export const silentLogger: MqttLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** Wraps a logger so every object is redacted before it is written (methods keep their `this`, as pino needs). */
export function redactingLogger(log: MqttLogger): MqttLogger {
  const clean = (obj: object): object => redact(obj) as object;
  return {
    debug: (obj, msg) => log.debug?.(clean(obj), msg),
    info: (obj, msg) => log.info(clean(obj), msg),
    warn: (obj, msg) => log.warn(clean(obj), msg),
    error: (obj, msg) => log.error(clean(obj), msg),
  };
}
