/** Every payload builder's output validates against its published JSON Schema. */
import assert from 'node:assert/strict';
import { validateJson, type JsonSchema } from '../../../src/sinks/mqtt/json-schema.js';
import {
  buildCaptionPayload,
  buildMemoryEventPayload,
  buildMetricsPayload,
  buildPartialPayload,
  buildResponsePayload,
  buildStatusPayload,
  isoFromNs,
  toJsonValue,
  type MqttStats,
} from '../../../src/sinks/mqtt/payloads.js';
import {
  ALL_SCHEMAS,
  CAPTION_SCHEMA,
  DESCRIBE_REQUEST_SCHEMA,
  MEMORY_EVENT_SCHEMA,
  METRICS_SCHEMA,
  PARTIAL_SCHEMA,
  RECALL_REQUEST_SCHEMA,
  RESPONSE_SCHEMA,
  STATUS_SCHEMA,
} from '../../../src/sinks/mqtt/schemas.js';
import { caption, token } from '../../mqtt/helpers/captions.js';

const ctx = { nodeId: 'jetson-1', runId: 'lx2k-0a1b2c3d' };
const valid = (schema: JsonSchema, v: unknown): void => assert.deepEqual(validateJson(schema, v), [], JSON.stringify(v));
const stats: MqttStats = {
  connected: true,
  protocolVersion: 5,
  connects: 2,
  published: { qos0: 3, qos1: 1, durable: 4 },
  received: { image: 9 },
  dropped: { rate_limited: 2 },
  queued: { offline: 0, offlineBytes: 0, durable: 1, durableBytes: 300 },
};

describe('MQTT payloads', () => {
  it('caption: JSON with seq, runId, frame stamp as ISO and ns string, latencies', () => {
    const p = buildCaptionPayload(caption(3, { episodeSlot: 2 }), ctx);
    valid(CAPTION_SCHEMA, p);
    assert.deepEqual(p.frame, { id: 3, source: 'mqtt:bitmar/cam1/image', stamp: '2024-11-27T09:33:20.123Z', stampNs: '1732700000123456792', frameId: 'cam1' });
    assert.deepEqual(p.latencyMs, { encode: 3.5, frameToFirstToken: 10, frameToCaption: 42.25, decode: 30 });
    valid(CAPTION_SCHEMA, buildCaptionPayload(caption(4, { cancelled: true, isFinal: false, latency: { encodeMs: 1, frameToFirstTokenMs: -1, frameToCaptionMs: 2, decodeMs: 0 } }), ctx, 'corr-1'));
    assert.equal(JSON.stringify(p).includes('replyTo'), false);
  });

  it('partial, status, memory event, metrics and response payloads validate', () => {
    valid(PARTIAL_SCHEMA, buildPartialPayload(token(1, 0), ctx, 'm'));
    const base = { version: '0.1.0', model: 'm', startedAt: new Date(0).toISOString() };
    valid(STATUS_SCHEMA, buildStatusPayload({ ...base, state: 'online', reason: 'connected', protocolVersion: 5, topics: { subscribed: ['bitmar/x/image'] } }, ctx));
    valid(STATUS_SCHEMA, buildStatusPayload({ ...base, state: 'offline', reason: 'connection lost' }, ctx));
    const mem = buildMemoryEventPayload({ kind: 'evict', slot: 7, at: 5n, vec: new Float32Array(4) } as { kind: string }, ctx, new Date(0));
    valid(MEMORY_EVENT_SCHEMA, mem);
    assert.deepEqual(mem.data, { slot: 7, at: '5', vec: { bytes: 16 } });
    valid(METRICS_SCHEMA, buildMetricsPayload({ fps: 9.5, drops: new Map([['queue_full', 1]]), bad: NaN }, stats, ctx, new Date(0)));
    valid(METRICS_SCHEMA, buildMetricsPayload(42, stats, ctx, new Date(0)));
    valid(RESPONSE_SCHEMA, buildResponsePayload({ request: 'recall', result: [{ slot: 1 }] }, ctx));
    const err = buildResponsePayload({ request: 'describe', error: { code: 'timeout', message: 'slow' }, correlationId: 'x' }, ctx);
    valid(RESPONSE_SCHEMA, err);
    assert.equal(err.ok, false);
  });

  it('schemas reject what they should', () => {
    assert.notDeepEqual(validateJson(CAPTION_SCHEMA, { ...buildCaptionPayload(caption(1), ctx), seq: -1 }), []);
    assert.notDeepEqual(validateJson(CAPTION_SCHEMA, { ...buildCaptionPayload(caption(1), ctx), extra: 1 }), []);
    assert.notDeepEqual(validateJson(STATUS_SCHEMA, { schema: 'bitmar.status.v1', state: 'sleeping' }), []);
    assert.deepEqual(validateJson(DESCRIBE_REQUEST_SCHEMA, {}), []);
    assert.notDeepEqual(validateJson(RECALL_REQUEST_SCHEMA, { query: '' }), []);
    assert.notDeepEqual(validateJson(RECALL_REQUEST_SCHEMA, { query: 'x', k: 1000 }), []);
    assert.equal(new Set(ALL_SCHEMAS.map((s) => s.$id)).size, ALL_SCHEMAS.length);
  });

  it('converts any value to JSON safely', () => {
    assert.deepEqual(toJsonValue({ a: 1n, b: undefined, c: () => 1, d: [Infinity], e: new Date(0) }), { a: '1', d: [null], e: '1970-01-01T00:00:00.000Z' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.doesNotThrow(() => toJsonValue(cyclic));
    assert.equal(isoFromNs(-5n), '1970-01-01T00:00:00.000Z');
  });
});

describe('validateJson', () => {
  it('checks types, required, enum, const, bounds, pattern, items, additionalProperties, anyOf', () => {
    const s: JsonSchema = {
      type: 'object',
      required: ['a'],
      additionalProperties: false,
      properties: {
        a: { type: 'integer', minimum: 0, maximum: 3 },
        b: { type: 'array', items: { type: 'string', pattern: '^x' } },
        c: { enum: ['p', 'q'] },
        d: { const: true },
        e: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        f: { type: 'string', minLength: 1, maxLength: 2 },
      },
    };
    assert.deepEqual(validateJson(s, { a: 1, b: ['xa'], c: 'p', d: true, e: null, f: 'ab' }), []);
    const errors = validateJson(s, { a: 1.5, b: ['y'], c: 'z', d: false, e: 3, f: '', g: 0 });
    assert.equal(errors.length, 7, errors.join('\n'));
    assert.deepEqual(validateJson(s, {}), ['$: missing required "a"']);
    assert.deepEqual(validateJson({ type: 'number' }, NaN), ['$: expected "number", got other']);
  });
});
