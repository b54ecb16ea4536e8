/**
 * ROS 2 parameters from the config schema's descriptor list: declared with description, range and
 * read-only flag (visible in `ros2 param describe`), overridden by `--params-file`/`-p` at start, and
 * — for the safe ones — changed at run time by `ros2 param set`, through one
 * addOnSetParametersCallback that validates, then hands the change to the node.
 *
 * Names are the schema's dotted keys (`pipeline.batchSize`); in a params file nested maps become
 * these dotted names (`/**: ros__parameters: pipeline: batchSize: 4`).
 */
import { parse as parseYaml } from 'yaml';
import { BitmarError } from '../errors.js';
import { QOS_CHOICES } from './qos.js';
import type { RclnodejsApi, RclNode, RclParameter, RclSetParametersResult } from './rclnodejs-api.js';

export type Ros2ParameterType = 'string' | 'integer' | 'double' | 'bool';
export type Ros2ParameterValue = string | number | boolean;

/**
 * One parameter, shaped like the lead's `ParameterDescriptor` (src/config/schema.ts), so that list
 * can be passed as is.
 */
export interface Ros2ParameterSpec {
  /** Dotted name, e.g. `pipeline.batchSize`. */
  readonly name: string;
  readonly type: Ros2ParameterType;
  readonly description: string;
  /** Inclusive bounds for integer and double parameters. */
  readonly min?: number;
  readonly max?: number;
  /** The only accepted values (enums). */
  readonly allowed?: readonly (string | number)[];
  /** Safe to change while running (`ros2 param set`); the others are declared read-only. */
  readonly runtime?: boolean;
  /** Overrides the read-only flag derived from `runtime`. */
  readonly readOnly?: boolean;
}

/** A spec with the value to declare (the loaded config's); a params file overrides it. */
export interface Ros2ParameterDescriptor extends Ros2ParameterSpec {
  readonly value: Ros2ParameterValue;
}

export interface ParameterChange {
  readonly name: string;
  readonly value: Ros2ParameterValue;
}

/**
 * Applies validated run-time changes (all of one `ros2 param set`/set_parameters call). Return a
 * string (or throw) to refuse them; the caller then sees `successful: false` and that reason.
 */
export type ParameterChangeHandler = (changes: readonly ParameterChange[]) => void | string;

export interface DeclaredParameters {
  /** Every declared value after overrides (integers as numbers). */
  readonly values: ReadonlyMap<string, Ros2ParameterValue>;
  /** Values the params file or `-p` changed from the descriptors' — merge them into the config. */
  readonly overridden: readonly ParameterChange[];
}

/** Parameters of the ROS 2 transport itself, until the config schema carries them. */
export const ROS2_TRANSPORT_PARAMETERS: readonly Ros2ParameterDescriptor[] = [
  { name: 'ros2.imageQos', type: 'string', description: 'QoS of the sensor_msgs/Image subscription', allowed: QOS_CHOICES, value: 'sensor_data' },
  { name: 'ros2.compressedQos', type: 'string', description: 'QoS of the sensor_msgs/CompressedImage subscription', allowed: QOS_CHOICES, value: 'sensor_data' },
  { name: 'ros2.promptQos', type: 'string', description: 'QoS of the std_msgs/String prompt subscription', allowed: QOS_CHOICES, value: 'reliable' },
  { name: 'ros2.partialTopic', type: 'string', description: 'bitmar_msgs/CaptionToken stream of partial captions (empty = off)', value: '~/caption/partial' },
  { name: 'ros2.textTopic', type: 'string', description: 'std_msgs/String mirror of final captions (empty = off)', value: '~/caption/text' },
  { name: 'ros2.memoryEventsTopic', type: 'string', description: 'bitmar_msgs/MemoryEvent topic (empty = off)', value: '~/memory/events' },
  { name: 'ros2.diagnosticsTopic', type: 'string', description: 'diagnostic_msgs/DiagnosticArray topic', value: '/diagnostics' },
];

/** Never declared: a parameter's value can be read by anyone on the ROS graph (`ros2 param get`). */
export const SECRET_PARAMETER = /(^|\.)(password|secret|token)$/i;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function typeCode(rcl: RclnodejsApi, type: Ros2ParameterType): number {
  const t = rcl.ParameterType;
  return type === 'bool' ? t.PARAMETER_BOOL : type === 'integer' ? t.PARAMETER_INTEGER : type === 'double' ? t.PARAMETER_DOUBLE : t.PARAMETER_STRING;
}

function isReadOnly(spec: Ros2ParameterSpec): boolean {
  return spec.readOnly ?? !(spec.runtime ?? false);
}

/**
 * Checks a value (number, bigint, string, boolean as ROS delivers it) against a spec: type (an
 * integer for a double is refused, as rcl does), range, allowed values. Returns the problem, or
 * undefined when the value is fine.
 */
export function checkParameterValue(spec: Ros2ParameterSpec, value: unknown): string | undefined {
  const where = `parameter ${spec.name}`;
  switch (spec.type) {
    case 'bool':
      if (typeof value !== 'boolean') return `${where} must be a bool (true/false), got ${describe(value)}`;
      return undefined;
    case 'string':
      if (typeof value !== 'string') return `${where} must be a string, got ${describe(value)}`;
      break;
    case 'integer':
      if (typeof value !== 'bigint' && !(typeof value === 'number' && Number.isInteger(value))) return `${where} must be an integer, got ${describe(value)}`;
      if (typeof value === 'bigint' && (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))) return `${where}: ${value} is too large`;
      break;
    case 'double':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${where} must be a double (write 2.0, not 2), got ${describe(value)}`;
      break;
  }
  if (spec.type === 'integer' || spec.type === 'double') {
    const n = Number(value);
    if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
      return `${where}: ${n} is out of range [${spec.min ?? '-inf'}, ${spec.max ?? 'inf'}]`;
    }
  }
  if (spec.allowed !== undefined) {
    const v = typeof value === 'bigint' ? Number(value) : value;
    if (!spec.allowed.some((a) => a === v)) return `${where}: ${describe(value)} is not one of ${spec.allowed.join(', ')}`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'bigint') return `${value} (integer)`;
  if (typeof value === 'number') return Number.isInteger(value) ? `${value} (integer)` : `${value} (double)`;
  return String(value);
}

/** Parameter value as the node uses it: integers as numbers. */
function toPlain(value: unknown): Ros2ParameterValue {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return String(value);
}

function rangeFor(rcl: RclnodejsApi, spec: Ros2ParameterSpec): object | undefined {
  if (spec.min === undefined && spec.max === undefined) return undefined;
  if (spec.type === 'integer') {
    const from = spec.min !== undefined ? BigInt(Math.ceil(spec.min)) : INT64_MIN;
    const to = spec.max !== undefined ? BigInt(Math.floor(spec.max)) : INT64_MAX;
    return new rcl.IntegerRange(from, to, 1n);
  }
  if (spec.type === 'double') {
    // step 0 = continuous (the rclnodejs default step of 1 would only accept whole numbers).
    return new rcl.FloatingPointRange(spec.min ?? -Number.MAX_VALUE, spec.max ?? Number.MAX_VALUE, 0);
  }
  return undefined;
}

/**
 * Declares every descriptor on the node (the first of a duplicated name wins; secrets such as
 * `mqtt.password` are never declared) and registers the
 * one set-parameters callback: it refuses undeclared types, out-of-range and not-allowed values
 * and read-only changes, then calls `onChange` with the accepted run-time changes.
 * Declaration-time values (params file, `-p`) are validated the same way and come back in
 * `overridden`, not through `onChange`.
 * Throws BitmarError BITMAR_ERR_CONFIG_INVALID listing every refused declaration.
 */
export function declareParameters(
  target: { readonly rcl: RclnodejsApi; readonly node: RclNode },
  descriptors: readonly Ros2ParameterDescriptor[],
  onChange: ParameterChangeHandler,
): DeclaredParameters {
  const { rcl, node } = target;
  const byName = new Map<string, Ros2ParameterDescriptor>();
  for (const d of descriptors) if (!byName.has(d.name) && !SECRET_PARAMETER.test(d.name)) byName.set(d.name, d);
  let declaring = true;

  node.addOnSetParametersCallback((parameters: RclParameter[]): RclSetParametersResult => {
    const changes: ParameterChange[] = [];
    for (const p of parameters) {
      const spec = byName.get(p.name);
      if (!spec) continue; // not ours (use_sim_time, qos_overrides.*)
      if (!declaring && isReadOnly(spec)) return { successful: false, reason: `parameter ${p.name} is read-only: change it in the params file and restart the node` };
      if (p.type !== typeCode(rcl, spec.type)) return { successful: false, reason: `parameter ${p.name} must be of type ${spec.type}${spec.type === 'double' ? ' (write 2.0, not 2)' : ''}` };
      const problem = checkParameterValue(spec, p.value);
      if (problem !== undefined) return { successful: false, reason: problem };
      changes.push({ name: p.name, value: toPlain(p.value) });
    }
    if (declaring || changes.length === 0) return { successful: true, reason: '' };
    try {
      const refusal = onChange(changes);
      return typeof refusal === 'string' ? { successful: false, reason: refusal } : { successful: true, reason: '' };
    } catch (e) {
      return { successful: false, reason: (e as Error)?.message ?? String(e) };
    }
  });

  const problems: string[] = [];
  const values = new Map<string, Ros2ParameterValue>();
  const overridden: ParameterChange[] = [];
  try {
    for (const d of byName.values()) {
      const initial = checkParameterValue(d, d.value);
      if (initial !== undefined) {
        problems.push(`${initial} (configured value)`);
        continue;
      }
      const type = typeCode(rcl, d.type);
      const descriptor = new rcl.ParameterDescriptor(d.name, type, d.description, isReadOnly(d), rangeFor(rcl, d));
      if (d.allowed !== undefined) descriptor.additionalConstraints = `one of: ${d.allowed.join(', ')}`;
      const value = d.type === 'integer' ? BigInt(d.value) : d.value;
      try {
        const declared = node.declareParameter(new rcl.Parameter(d.name, type, value), descriptor);
        const v = toPlain(declared.value);
        values.set(d.name, v);
        if (v !== d.value) overridden.push({ name: d.name, value: v });
      } catch (e) {
        problems.push(`${d.name}: ${(e as Error)?.message ?? String(e)}`);
      }
    }
  } finally {
    declaring = false;
  }
  if (problems.length > 0) {
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `ROS 2 parameters refused (params file or -p): ${problems.join('; ')}`);
  }
  return { values, overridden };
}

/**
 * Descriptors with values, from specs and a nested config object (`{pipeline: {batchSize: 4}}`
 * gives `pipeline.batchSize` = 4). Specs whose value is missing or not a scalar are skipped.
 */
export function withValues(specs: readonly Ros2ParameterSpec[], config: object): Ros2ParameterDescriptor[] {
  const out: Ros2ParameterDescriptor[] = [];
  for (const spec of specs) {
    let cur: unknown = config;
    for (const key of spec.name.split('.')) cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[key] : undefined;
    if (typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean') out.push({ ...spec, value: cur });
  }
  return out;
}

/**
 * Validates a ROS 2 params file (YAML text) against the specs the node declares, the way rcl and
 * rclnodejs read it: every `<node name>` or `/**` entry's `ros__parameters` map, nested maps joined
 * with dots, YAML integers as integers (so `2` for a double is an error). Returns every problem
 * (unknown names, types, ranges, allowed values, structure); empty = valid.
 */
export function validateParamsYaml(text: string, specs: readonly Ros2ParameterSpec[]): string[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { intAsBigInt: true });
  } catch (e) {
    return [`not valid YAML: ${(e as Error).message}`];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['the top level must be a map of node names (e.g. /**:)'];
  const byName = new Map(specs.map((s) => [s.name, s]));
  const problems: string[] = [];
  for (const [nodeKey, entry] of Object.entries(doc)) {
    const params = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).ros__parameters : undefined;
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      problems.push(`${nodeKey}: needs a ros__parameters: map`);
      continue;
    }
    for (const [name, value] of flatten(params as Record<string, unknown>, '')) {
      const spec = byName.get(name);
      if (!spec) {
        problems.push(`${nodeKey}: ${name} is not a declared parameter`);
        continue;
      }
      const problem = checkParameterValue(spec, value);
      if (problem !== undefined) problems.push(`${nodeKey}: ${problem}`);
    }
  }
  return problems;
}

function flatten(map: Record<string, unknown>, prefix: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [key, value] of Object.entries(map)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(...flatten(value as Record<string, unknown>, name));
    else out.push([name, value]);
  }
  return out;
}
