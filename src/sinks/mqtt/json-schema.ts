/**
 * JSON values and a small JSON Schema (draft 2020-12 subset) validator. The schemas of every MQTT
 * payload (schemas.ts) are written with only these keywords, so the same objects are printed in
 * docs/mqtt.md, checked against real payloads in the tests, and used to validate requests.
 *
 * Supported: type, properties, required, additionalProperties, items, enum, const, minimum,
 * maximum, minLength, maxLength, pattern, anyOf. Annotations ($schema, $id, title, description)
 * are ignored.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type JsonObject = { readonly [key: string]: JsonValue };

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

export interface JsonSchema {
  readonly $schema?: string;
  readonly $id?: string;
  readonly title?: string;
  readonly description?: string;
  readonly type?: JsonType | readonly JsonType[];
  readonly properties?: { readonly [key: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly JsonPrimitive[];
  readonly const?: JsonPrimitive;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly anyOf?: readonly JsonSchema[];
}

function typeOf(v: unknown): JsonType | 'undefined' | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isFinite(v) ? (Number.isInteger(v) ? 'integer' : 'number') : 'other';
    case 'object':
      return 'object';
    case 'undefined':
      return 'undefined';
    default:
      return 'other';
  }
}

function typeAllowed(actual: string, allowed: JsonType | readonly JsonType[]): boolean {
  const list: readonly JsonType[] = typeof allowed === 'string' ? [allowed] : allowed;
  return list.some((t) => t === actual || (t === 'number' && actual === 'integer'));
}

/**
 * Validates `value` against `schema`; returns the problems as `path: message` strings (empty when
 * valid). Never throws on any input.
 */
export function validateJson(schema: JsonSchema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined && !typeAllowed(t, schema.type)) {
    return [`${path}: expected ${JSON.stringify(schema.type)}, got ${t}`];
  }
  if (schema.const !== undefined && value !== schema.const) {
    errors.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => e === value)) {
    errors.push(`${path}: must be one of ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: must be <= ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(`${path}: does not match ${schema.pattern}`);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((v: unknown, i) => errors.push(...validateJson(items, v, `${path}[${i}]`)));
  }
  if (t === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    errors.push(...validateObject(schema, value as Record<string, unknown>, path));
  }
  if (schema.anyOf !== undefined && !schema.anyOf.some((s) => validateJson(s, value, path).length === 0)) {
    errors.push(`${path}: matches none of anyOf`);
  }
  return errors;
}

function validateObject(schema: JsonSchema, obj: Record<string, unknown>, path: string): string[] {
  const errors: string[] = [];
  for (const key of schema.required ?? []) {
    if (!(key in obj) || obj[key] === undefined) errors.push(`${path}: missing required "${key}"`);
  }
  const props = schema.properties ?? {};
  for (const [key, v] of Object.entries(obj)) {
    const sub = props[key];
    if (sub !== undefined) {
      errors.push(...validateJson(sub, v, `${path}.${key}`));
    } else if (schema.additionalProperties === false) {
      errors.push(`${path}: unexpected property "${key}"`);
    } else if (typeof schema.additionalProperties === 'object') {
      errors.push(...validateJson(schema.additionalProperties, v, `${path}.${key}`));
    }
  }
  return errors;
}
