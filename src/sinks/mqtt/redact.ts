/**
 * Keeps secrets out of logs and error messages: passwords (option values and URL user info) and
 * private key material. Every log line and error of the MQTT code goes through these.
 */

const MASK = '***';
const SECRET_KEY = /pass(word)?|secret|token|^key$|private/i;

/** `mqtt://user:pw@host` → `mqtt://user:***@host`; anything unparsable is returned unchanged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password.length === 0) return url;
    u.password = MASK;
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, `//$1:${MASK}@`);
  }
}

/**
 * A copy of `value` with every secret-looking field (password, secret, token, key, private…)
 * replaced by `***` and URLs stripped of their password. Nested objects and arrays are walked;
 * Buffers are shown as their length only.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return value.includes('://') ? redactUrl(value) : value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== undefined && v !== '' ? MASK : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Removes every occurrence of the given secrets from a message (for errors that echo input). */
export function scrub(message: string, secrets: readonly (string | undefined)[]): string {
  let out = message;
  for (const s of secrets) {
    if (s !== undefined && s.length >= 3) out = out.split(s).join(MASK);
  }
  return out;
}
