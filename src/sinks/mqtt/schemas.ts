/**
 * JSON Schemas of every MQTT payload the node sends or accepts. These objects are the single
 * source: docs/mqtt.md prints them verbatim (test/sinks/mqtt/docs.test.ts keeps the two equal),
 * the tests validate real payloads against them, and requests are validated with them on arrival.
 */
import type { JsonSchema } from './json-schema.js';

/** MQTT 5 user property `schema` on every publish: the version of this whole topic layout. */
export const TOPIC_SCHEMA_VERSION = 'bitmar.v1';

export const SCHEMA_IDS = {
  caption: 'bitmar.caption.v1',
  partial: 'bitmar.caption.partial.v1',
  status: 'bitmar.status.v1',
  memoryEvent: 'bitmar.memory.event.v1',
  metrics: 'bitmar.metrics.v1',
  response: 'bitmar.response.v1',
  describeRequest: 'bitmar.request.describe.v1',
  recallRequest: 'bitmar.request.recall.v1',
} as const;

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';
const ISO_TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$';
const count: JsonSchema = { type: 'integer', minimum: 0 };
const nodeId: JsonSchema = { type: 'string', pattern: '^[a-z0-9_-]{1,64}$', description: 'Sanitized node id (topic level 2).' };
const runId: JsonSchema = {
  type: 'string',
  minLength: 1,
  description: 'Unique per node process start; (nodeId, runId, seq) identifies a caption for de-duplication.',
};

const frameRef: JsonSchema = {
  type: 'object',
  description: 'The frame the caption describes.',
  required: ['id', 'source', 'stamp', 'stampNs', 'frameId'],
  additionalProperties: false,
  properties: {
    id: { ...count, description: 'Frame id, unique within a run.' },
    source: { type: 'string', description: 'Where the frame came from, e.g. mqtt:bitmar/cam1/image or a ROS topic.' },
    stamp: { type: 'string', pattern: ISO_TIME, description: 'Capture time, ISO 8601 UTC (millisecond precision).' },
    stampNs: { type: 'string', pattern: '^[0-9]+$', description: 'Capture time, nanoseconds since the epoch, as a decimal string.' },
    frameId: { type: 'string', description: 'ROS header frame_id, or empty.' },
  },
};

export const CAPTION_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.caption,
  title: 'Final caption',
  description: 'On <prefix>/<node-id>/caption (QoS 1, not retained) or the request\'s reply topic.',
  type: 'object',
  required: ['schema', 'seq', 'runId', 'text', 'tokenIds', 'prompt', 'isFinal', 'cancelled', 'frame', 'latencyMs', 'model', 'nodeId'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.caption },
    seq: { ...count, description: 'Caption sequence number of this run; use with runId to drop duplicates (QoS 1 is at-least-once).' },
    runId,
    text: { type: 'string' },
    tokenIds: { type: 'array', items: count },
    prompt: { type: 'string', description: 'The prompt (task) the caption answers.' },
    isFinal: { type: 'boolean' },
    cancelled: { type: 'boolean', description: 'True when a newer frame or prompt cut the caption short.' },
    frame: frameRef,
    batchFrameIds: { type: 'array', items: count, description: 'Every frame of the batch the caption was made from.' },
    latencyMs: {
      type: 'object',
      required: ['encode', 'frameToFirstToken', 'frameToCaption', 'decode'],
      additionalProperties: false,
      properties: {
        encode: { type: 'number', description: 'Vision encode of the batch.' },
        frameToFirstToken: { type: 'number', description: 'Frame arrival to first token (-1 when none).' },
        frameToCaption: { type: 'number', description: 'Frame arrival to this caption.' },
        decode: { type: 'number', description: 'Token generation.' },
      },
    },
    model: { type: 'string' },
    nodeId,
    episodeSlot: { ...count, description: 'Memory slot of the batch\'s episode, when memory is on.' },
    correlationId: { type: 'string', description: 'MQTT 3.1.1 request/response only: the request\'s correlationId echoed.' },
  },
};

export const PARTIAL_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.partial,
  title: 'Streamed token',
  description: 'On <prefix>/<node-id>/caption/partial (QoS 0, message expiry): one message per generated token.',
  type: 'object',
  required: ['schema', 'seq', 'runId', 'index', 'tokenId', 'piece', 'text', 'isFinal', 'frame', 'model', 'nodeId'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.partial },
    seq: { ...count, description: 'The caption this token belongs to (same seq as the final caption).' },
    runId,
    index: { ...count, description: 'Token position within the caption.' },
    tokenId: count,
    piece: { type: 'string', description: 'Text of this token.' },
    text: { type: 'string', description: 'Caption text so far.' },
    isFinal: { const: false },
    frame: frameRef,
    model: { type: 'string' },
    nodeId,
  },
};

export const STATUS_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.status,
  title: 'Node status (birth, last will, clean stop)',
  description: 'On <prefix>/<node-id>/status, QoS 1, retained. The last will carries state "offline".',
  type: 'object',
  required: ['schema', 'state', 'nodeId', 'runId', 'version', 'model', 'startedAt'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.status },
    state: { enum: ['online', 'offline'] },
    nodeId,
    runId,
    version: { type: 'string', description: 'bitmar-node package version.' },
    model: { type: 'string', description: 'Model name, or empty before one is loaded.' },
    startedAt: { type: 'string', pattern: ISO_TIME },
    reason: { enum: ['connected', 'stopped', 'connection lost'], description: 'Why this status was sent: birth, clean stop, or the broker sent the last will.' },
    protocolVersion: { enum: [4, 5], description: 'MQTT protocol version in use (birth only).' },
    topics: {
      type: 'object',
      description: 'Input topics this node reads (birth only).',
      additionalProperties: { type: 'array', items: { type: 'string' } },
    },
  },
};

export const MEMORY_EVENT_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.memoryEvent,
  title: 'Memory event',
  description: 'On <prefix>/<node-id>/memory/event (QoS 1, not retained): episodic-memory writes, merges, evictions, recalls.',
  type: 'object',
  required: ['schema', 'nodeId', 'runId', 'ts', 'kind', 'data'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.memoryEvent },
    nodeId,
    runId,
    ts: { type: 'string', pattern: ISO_TIME },
    kind: { type: 'string', minLength: 1, description: 'write, merge, evict, recall, error, ...' },
    data: { type: 'object', description: 'The event fields as the memory store reports them (bigint as decimal strings).' },
  },
};

const mqttStats: JsonSchema = {
  type: 'object',
  required: ['connected', 'protocolVersion', 'connects', 'published', 'dropped', 'queued'],
  additionalProperties: false,
  properties: {
    connected: { type: 'boolean' },
    protocolVersion: { enum: [4, 5] },
    connects: { ...count, description: 'Successful connects since start (1 + reconnects).' },
    published: {
      type: 'object',
      additionalProperties: count,
      description: 'Messages handed to the broker, by kind (qos0, qos1, durable).',
    },
    received: { type: 'object', additionalProperties: count, description: 'Messages received, by input (image, prompt, request).' },
    dropped: {
      type: 'object',
      additionalProperties: count,
      description: 'Messages dropped, by reason (offline_qos0_cap, offline_queue_full, store_full, backpressure, too_large, unknown_topic, decode_error, invalid_input, rate_limited, ...).',
    },
    queued: {
      type: 'object',
      required: ['offline', 'offlineBytes', 'durable', 'durableBytes'],
      additionalProperties: false,
      properties: { offline: count, offlineBytes: count, durable: count, durableBytes: count },
    },
  },
};

export const METRICS_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.metrics,
  title: 'Metrics snapshot',
  description: 'On <prefix>/<node-id>/metrics (QoS 0, not retained): transport counters plus whatever the pipeline reports.',
  type: 'object',
  required: ['schema', 'nodeId', 'runId', 'ts', 'mqtt', 'pipeline'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.metrics },
    nodeId,
    runId,
    ts: { type: 'string', pattern: ISO_TIME },
    mqtt: mqttStats,
    pipeline: { type: 'object', description: 'Pipeline counters (fps, latencies, drops by stage and reason, memory fill).' },
  },
};

export const RESPONSE_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.response,
  title: 'Response to a request',
  description: 'On the request\'s responseTopic with its correlationData (QoS 1, not retained).',
  type: 'object',
  required: ['schema', 'request', 'ok', 'nodeId'],
  additionalProperties: false,
  properties: {
    schema: { const: SCHEMA_IDS.response },
    request: { type: 'string', description: 'describe, recall, or the unknown request name.' },
    ok: { type: 'boolean' },
    nodeId,
    result: { description: 'describe: a bitmar.caption.v1 object; recall: what the memory returned.' },
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    correlationId: { type: 'string', description: 'Requests in the JSON form only (MQTT 3.1.1): the request\'s correlationId echoed.' },
  },
};

const v311Reply: { readonly [key: string]: JsonSchema } = {
  responseTopic: { type: 'string', minLength: 1, description: 'JSON form for MQTT 3.1.1 clients; MQTT 5 clients use the responseTopic property.' },
  correlationId: { type: 'string', maxLength: 256, description: 'JSON form: echoed in the response; MQTT 5 clients use correlationData.' },
};

export const DESCRIBE_REQUEST_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.describeRequest,
  title: 'describe-now request',
  description: 'On <prefix>/<node-id>/request/describe: JSON (or empty) to caption the newest frame, or JPEG/PNG bytes to caption that image.',
  type: 'object',
  additionalProperties: false,
  properties: {
    prompt: { type: 'string', minLength: 1, maxLength: 1024, description: 'Task for this request; default: the current prompt.' },
    ...v311Reply,
  },
};

export const RECALL_REQUEST_SCHEMA: JsonSchema = {
  $schema: DRAFT,
  $id: SCHEMA_IDS.recallRequest,
  title: 'memory recall request',
  description: 'On <prefix>/<node-id>/request/recall: find the episodes closest to a text query.',
  type: 'object',
  required: ['query'],
  additionalProperties: false,
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 1024 },
    k: { type: 'integer', minimum: 1, maximum: 100, description: 'How many episodes, default 5.' },
    ...v311Reply,
  },
};

/** Every schema, in the order docs/mqtt.md lists them. */
export const ALL_SCHEMAS: readonly JsonSchema[] = [
  CAPTION_SCHEMA,
  PARTIAL_SCHEMA,
  STATUS_SCHEMA,
  MEMORY_EVENT_SCHEMA,
  METRICS_SCHEMA,
  RESPONSE_SCHEMA,
  DESCRIBE_REQUEST_SCHEMA,
  RECALL_REQUEST_SCHEMA,
];
