/**
 * Builds the frozen configuration: defaults < YAML file < environment (BITMAR_*) < CLI overrides.
 * Every problem is reported at once, naming the key, the source and the allowed values.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BitmarError } from '../errors.js';
import { configSchema, parameterDescriptors, type BitmarConfig, type ParameterDescriptor } from './schema.js';

export type ConfigOverrides = Record<string, unknown>;

/** `mqtt.nodeId` → `BITMAR_MQTT_NODE_ID`. */
export function envNameOf(key: string): string {
  return 'BITMAR_' + key.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Short aliases users expect (issue: BITMAR_MQTT_URL, BITMAR_NODE_ID, BITMAR_STATE_DIR). */
const ENV_ALIASES: Record<string, string> = {
  BITMAR_NODE_ID: 'mqtt.nodeId',
  BITMAR_MODEL: 'model.path',
};

function coerce(desc: ParameterDescriptor, raw: string, origin: string): unknown {
  switch (desc.type) {
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `${origin}: "${raw}" is not a boolean for ${desc.name} (use true or false)`);
    case 'integer':
    case 'double': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) {
        throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `${origin}: "${raw}" is not a number for ${desc.name}`);
      }
      return n;
    }
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = target;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = deepMerge(b as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Reads environment variables named after the schema (see envNameOf) plus the aliases. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const descs = new Map(parameterDescriptors().map((d) => [d.name, d]));
  for (const d of descs.values()) {
    const raw = env[envNameOf(d.name)];
    if (raw !== undefined) setPath(out, d.name, coerce(d, raw, `environment ${envNameOf(d.name)}`));
  }
  for (const [alias, key] of Object.entries(ENV_ALIASES)) {
    const raw = env[alias];
    const d = descs.get(key);
    if (raw !== undefined && d && env[envNameOf(key)] === undefined) setPath(out, key, coerce(d, raw, `environment ${alias}`));
  }
  return out;
}

/** Parses a YAML file into a plain object; a missing file is an error only when asked for explicitly. */
export function configFromFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_CONFIG_FILE', `cannot read config file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_CONFIG_FILE', `config file ${path} is not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new BitmarError('BITMAR_ERR_CONFIG_FILE', `config file ${path} must hold a mapping of sections (model:, source:, …)`);
  }
  return doc as Record<string, unknown>;
}

function describeIssue(issue: z.ZodIssue): string {
  const key = issue.path.join('.') || '(root)';
  if (issue.code === 'invalid_enum_value') return `${key}: "${String(issue.received)}" is not allowed; use one of ${issue.options.join(', ')}`;
  if (issue.code === 'unrecognized_keys') return `${key === '(root)' ? '' : key + ': '}unknown key(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'too_small') return `${key}: must be ≥ ${String(issue.minimum)}`;
  if (issue.code === 'too_big') return `${key}: must be ≤ ${String(issue.maximum)}`;
  return `${key}: ${issue.message}`;
}

export interface LoadConfigOptions {
  /** Explicit config file (error if missing). */
  file?: string;
  /** Default file to read when present (config/bitmar.yaml of the package, /etc/bitmar-node/…). */
  defaultFiles?: string[];
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}

/** Validates once, reports every problem together, and returns a frozen config. */
export function loadConfig(opts: LoadConfigOptions = {}): Readonly<BitmarConfig> {
  let merged: Record<string, unknown> = {};
  const files = opts.file ? [opts.file] : (opts.defaultFiles ?? []).filter((f) => existsSync(f));
  for (const f of files) merged = deepMerge(merged, configFromFile(f));
  merged = deepMerge(merged, configFromEnv(opts.env ?? process.env));
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts.overrides ?? {})) if (v !== undefined) setPath(overrides, k, v);
  merged = deepMerge(merged, overrides);
  const res = configSchema.safeParse(merged);
  if (!res.success) {
    const lines = res.error.issues.map(describeIssue);
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return deepFreeze(res.data);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
