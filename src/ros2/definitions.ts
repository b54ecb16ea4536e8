/**
 * ROS 2 message definitions: the standard ones (sensor_msgs, std_msgs, diagnostic_msgs,
 * builtin_interfaces from @foxglove/rosmsg-msgs-common, Jazzy — identical to Humble for every type
 * used here) and ours, parsed from the `.msg` files of the bitmar_msgs package in msg/msg/.
 *
 * Names: ROS 2 spells a type `pkg/msg/Name`; the definitions (and MCAP ros2msg dependency sections)
 * use `pkg/Name`. Every function here accepts either.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from '@foxglove/rosmsg';
import { ros2jazzy } from '@foxglove/rosmsg-msgs-common';
import { BitmarError } from '../errors.js';

export type MessageDefinition = ReturnType<typeof parse>[number];
export type MessageField = MessageDefinition['definitions'][number];

/** The bitmar_msgs interface package, next to src/ and dist/ (installed with the app). */
export const BITMAR_MSGS_DIR = new URL('../../msg/', import.meta.url);

const BITMAR_PACKAGE = 'bitmar_msgs';
const SECTION_RULE = '='.repeat(80);

/** `sensor_msgs/msg/Image` → `sensor_msgs/Image` (already short names pass through). */
export function shortTypeName(type: string): string {
  const parts = type.split('/');
  return parts.length === 3 && parts[1] === 'msg' ? `${parts[0]}/${parts[2]}` : type;
}

/** `sensor_msgs/Image` → `sensor_msgs/msg/Image`. */
export function longTypeName(type: string): string {
  const parts = type.split('/');
  return parts.length === 2 ? `${parts[0]}/msg/${parts[1]}` : type;
}

interface Registry {
  readonly byName: ReadonlyMap<string, MessageDefinition>;
  /** The original .msg text of our own messages (comments kept, as rosbag2 stores them). */
  readonly sourceText: ReadonlyMap<string, string>;
}

let registry: Registry | undefined;

function loadRegistry(): Registry {
  const byName = new Map<string, MessageDefinition>();
  const common: Readonly<Record<string, MessageDefinition>> = ros2jazzy;
  for (const [name, def] of Object.entries(common)) byName.set(name, def);
  const sourceText = new Map<string, string>();
  const msgDir = new URL('msg/', BITMAR_MSGS_DIR);
  let files: string[];
  try {
    files = readdirSync(msgDir).filter((f) => f.endsWith('.msg'));
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `the bitmar_msgs definitions were not found in ${msgDir.pathname}; reinstall the package (msg/ ships with it)`, { cause: e });
  }
  for (const file of files.sort()) {
    const name = `${BITMAR_PACKAGE}/${file.slice(0, -'.msg'.length)}`;
    const text = readFileSync(new URL(file, msgDir), 'utf8');
    byName.set(name, { ...parseMsgText(text, BITMAR_PACKAGE), name });
    sourceText.set(name, text);
  }
  return { byName, sourceText };
}

/**
 * Parses the text of one ROS 2 `.msg` (no dependency sections) of package `pkg`. Unqualified complex
 * types are qualified with `pkg`, as rosidl does. Throws BitmarError BITMAR_ERR_ROS2_MESSAGE.
 */
export function parseMsgText(text: string, pkg: string): MessageDefinition {
  let defs: MessageDefinition[];
  try {
    defs = parse(text, { ros2: true, skipTypeFixup: true });
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `invalid .msg text in package ${pkg}: ${(e as Error).message}`, { cause: e });
  }
  const root = defs[0];
  if (defs.length !== 1 || root === undefined) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `a .msg file of package ${pkg} must define exactly one type (found ${defs.length})`);
  }
  const definitions = root.definitions.map((f) => (f.isComplex === true && !f.type.includes('/') ? { ...f, type: `${pkg}/${f.type}` } : f));
  return { definitions };
}

function getRegistry(): Registry {
  registry ??= loadRegistry();
  return registry;
}

/** Whether a definition is known for `type`. */
export function hasDefinition(type: string): boolean {
  return getRegistry().byName.has(shortTypeName(type));
}

/**
 * The definitions of `type` for @foxglove/rosmsg2-serialization: the root first (unnamed, as
 * `parse` returns it), then every type it depends on, transitively, each named.
 * Throws BitmarError BITMAR_ERR_ROS2_MESSAGE for an unknown type.
 */
export function definitionsFor(type: string): MessageDefinition[] {
  const { byName } = getRegistry();
  const rootName = shortTypeName(type);
  const root = byName.get(rootName);
  if (!root) throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `no message definition for ${type}`);
  const out: MessageDefinition[] = [{ definitions: root.definitions }];
  const seen = new Set<string>([rootName]);
  const visit = (def: MessageDefinition): void => {
    for (const field of def.definitions) {
      if (field.isComplex !== true || seen.has(field.type)) continue;
      const dep = byName.get(field.type);
      if (!dep) throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `${type} depends on ${field.type}, which has no definition`);
      seen.add(field.type);
      out.push({ ...dep, name: field.type });
      visit(dep);
    }
  };
  visit(root);
  return out;
}

/**
 * The `ros2msg` schema text of `type` for MCAP (the ros2 profile): the type's own text, then one
 * section per dependency, `====…` (80) + `MSG: pkg/Name` + its text — what rosbag2 writes and what
 * Foxglove and `ros2 bag` read.
 */
export function ros2msgSchema(type: string): string {
  const { sourceText } = getRegistry();
  const defs = definitionsFor(type);
  const rootName = shortTypeName(type);
  const parts: string[] = [textOf(rootName, defs[0]!, sourceText)];
  for (const dep of defs.slice(1)) {
    const name = dep.name ?? '';
    parts.push(`${SECTION_RULE}\nMSG: ${name}\n${textOf(name, dep, sourceText)}`);
  }
  // `time`/`duration` are primitives to the parser but messages to ROS 2: give them sections too.
  const used = new Set(defs.flatMap((d) => d.definitions.map((f) => f.type)));
  for (const [primitive, name] of [['time', 'builtin_interfaces/Time'], ['duration', 'builtin_interfaces/Duration']] as const) {
    if (used.has(primitive)) parts.push(`${SECTION_RULE}\nMSG: ${name}\nint32 sec\nuint32 nanosec\n`);
  }
  return parts.join('\n');
}

function textOf(name: string, def: MessageDefinition, sourceText: ReadonlyMap<string, string>): string {
  const text = sourceText.get(name) ?? stringifyRos2(def);
  return text.endsWith('\n') ? text : `${text}\n`;
}

/**
 * Writes a definition back as ROS 2 `.msg` text (no comments): `time`/`duration` become
 * builtin_interfaces/Time and Duration again, bounds and fixed sizes are kept.
 */
export function stringifyRos2(def: MessageDefinition): string {
  return def.definitions.map(fieldLine).join('\n') + '\n';
}

function fieldLine(f: MessageField): string {
  let type = f.type === 'time' ? 'builtin_interfaces/Time' : f.type === 'duration' ? 'builtin_interfaces/Duration' : f.type;
  if (type === 'string' && f.upperBound !== undefined) type = `string<=${f.upperBound}`;
  if (f.isConstant === true) return `${type} ${f.name}=${f.valueText ?? String(f.value)}`;
  if (f.isArray === true) {
    type += f.arrayLength !== undefined ? `[${f.arrayLength}]` : f.arrayUpperBound !== undefined ? `[<=${f.arrayUpperBound}]` : '[]';
  }
  return `${type} ${f.name}`;
}
