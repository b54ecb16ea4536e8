/**
 * Topic names of the node (`<prefix>/<node-id>/<stream>`, lower case, no leading slash; see
 * docs/mqtt.md) and MQTT topic-filter matching (MQTT 5.0 §4.7, shared subscriptions §4.8.2).
 */
import { hostname } from 'node:os';

/** The streams a node publishes and subscribes, relative to `<prefix>/<node-id>/`. */
export const STREAMS = {
  caption: 'caption',
  captionPartial: 'caption/partial',
  status: 'status',
  memoryEvent: 'memory/event',
  metrics: 'metrics',
  image: 'image',
  prompt: 'prompt',
  request: 'request',
} as const;

/**
 * A node id usable as one topic level: lower case, `[a-z0-9_-]` only (no `/`, `+`, `#`), at most
 * 64 characters; falls back to `node` when nothing is left. Default: the host name.
 */
export function sanitizeNodeId(raw: string = hostname()): string {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return id.length > 0 ? id : 'node';
}

/** `<prefix>/<nodeId>/<stream>`. */
export function nodeTopic(prefix: string, nodeId: string, stream: string): string {
  return `${prefix}/${nodeId}/${stream}`;
}

/**
 * Strips `$share/<group>/` (MQTT 5.0 §4.8.2): a shared subscription receives messages whose topic
 * matches the filter after the group name.
 */
export function stripShare(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? '' : rest.slice(slash + 1);
}

/** `$share/<group>/<filter>`; throws a TypeError when the group is not a valid share name. */
export function shareFilter(group: string, filter: string): string {
  if (group.length === 0 || /[/+#]/.test(group)) {
    throw new TypeError(`share group "${group}" must be non-empty and contain no '/', '+' or '#'`);
  }
  return `$share/${group}/${filter}`;
}

/** Whether `topic` matches the topic filter (`+` one level, `#` the rest; `$` topics need a literal first level). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = stripShare(filter).split('/');
  const t = topic.split('/');
  // MQTT 5.0 §4.7.2: wildcards in the first level do not match topics starting with `$`.
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * The device id in `<prefix>/<id>/<stream...>`, or undefined when the topic is not under the prefix.
 * In worker mode the id is the camera's device, not this node.
 */
export function deviceIdOf(prefix: string, topic: string): string | undefined {
  const parts = topic.split('/');
  return parts.length >= 3 && parts[0] === prefix ? parts[1] : undefined;
}
