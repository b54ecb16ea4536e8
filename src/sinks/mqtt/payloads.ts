/**
 * Builders of every JSON payload the node publishes (schemas.ts describes each). Pure functions:
 * typed stage objects in, JSON-safe objects out (bigint nanoseconds become decimal strings).
 */
import type { Caption, CaptionToken, FrameRef } from '../../types.js';
import type { JsonObject, JsonValue } from './json-schema.js';
import { SCHEMA_IDS } from './schemas.js';

/** Who is publishing: goes into every payload. */
export interface PayloadContext {
  readonly nodeId: string;
  /** Unique per process start (see CAPTION_SCHEMA.runId). */
  readonly runId: string;
}

/** A memory event as the memory store reports it: a kind plus any other fields (all published under `data`). */
export interface MemoryEventInput {
  readonly kind: string;
}

/** Transport counters as published under `mqtt` in metrics (METRICS_SCHEMA). */
export interface MqttStats {
  readonly connected: boolean;
  readonly protocolVersion: 4 | 5;
  readonly connects: number;
  readonly published: Readonly<Record<string, number>>;
  readonly received: Readonly<Record<string, number>>;
  readonly dropped: Readonly<Record<string, number>>;
  readonly queued: { readonly offline: number; readonly offlineBytes: number; readonly durable: number; readonly durableBytes: number };
}

/** ISO 8601 UTC of a nanosecond timestamp (millisecond precision); negative or huge clamps to the epoch range. */
export function isoFromNs(stampNs: bigint): string {
  const ms = Number(stampNs / 1_000_000n);
  const d = new Date(Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 8.64e15) : 0);
  return d.toISOString();
}

/**
 * Any value as JSON: bigint → decimal string, Buffer/typed arrays → `{bytes: n}`, Date → ISO,
 * Map → object, NaN/Infinity → null, functions/undefined/symbols dropped, cycles cut at depth 8.
 */
export function toJsonValue(value: unknown, depth = 0): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  if (depth > 8 || typeof value !== 'object') return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (ArrayBuffer.isView(value)) return { bytes: value.byteLength };
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v, depth + 1));
  const entries: Iterable<[unknown, unknown]> = value instanceof Map ? value.entries() : Object.entries(value);
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of entries) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out[String(k)] = toJsonValue(v, depth + 1);
  }
  return out;
}

export function frameRefPayload(f: FrameRef): JsonObject {
  const ns = f.stampNs < 0n ? 0n : f.stampNs;
  return { id: f.id, source: f.source, stamp: isoFromNs(ns), stampNs: ns.toString(), frameId: f.frameId };
}

/** bitmar.caption.v1. `correlationId` is echoed for MQTT 3.1.1 request/response only. */
export function buildCaptionPayload(c: Caption, ctx: PayloadContext, correlationId?: string): JsonObject {
  return {
    schema: SCHEMA_IDS.caption,
    seq: c.seq,
    runId: ctx.runId,
    text: c.text,
    tokenIds: [...c.tokenIds],
    prompt: c.prompt,
    isFinal: c.isFinal,
    cancelled: c.cancelled,
    frame: frameRefPayload(c.frame),
    batchFrameIds: [...c.batchFrameIds],
    latencyMs: {
      encode: c.latency.encodeMs,
      frameToFirstToken: c.latency.frameToFirstTokenMs,
      frameToCaption: c.latency.frameToCaptionMs,
      decode: c.latency.decodeMs,
    },
    model: c.model,
    nodeId: ctx.nodeId,
    ...(c.episodeSlot !== undefined ? { episodeSlot: c.episodeSlot } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
  };
}

/** bitmar.caption.partial.v1. */
export function buildPartialPayload(t: CaptionToken, ctx: PayloadContext, model: string): JsonObject {
  return {
    schema: SCHEMA_IDS.partial,
    seq: t.seq,
    runId: ctx.runId,
    index: t.index,
    tokenId: t.tokenId,
    piece: t.piece,
    text: t.text,
    isFinal: false,
    frame: frameRefPayload(t.frame),
    model,
    nodeId: ctx.nodeId,
  };
}

export interface StatusInput {
  readonly state: 'online' | 'offline';
  readonly reason: 'connected' | 'stopped' | 'connection lost';
  readonly version: string;
  readonly model: string;
  readonly startedAt: string;
  readonly protocolVersion?: 4 | 5;
  readonly topics?: Readonly<Record<string, readonly string[]>>;
}

/** bitmar.status.v1: birth (online/connected), last will (offline/connection lost), clean stop (offline/stopped). */
export function buildStatusPayload(s: StatusInput, ctx: PayloadContext): JsonObject {
  const topics: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(s.topics ?? {})) topics[k] = [...v];
  return {
    schema: SCHEMA_IDS.status,
    state: s.state,
    nodeId: ctx.nodeId,
    runId: ctx.runId,
    version: s.version,
    model: s.model,
    startedAt: s.startedAt,
    reason: s.reason,
    ...(s.protocolVersion !== undefined ? { protocolVersion: s.protocolVersion } : {}),
    ...(s.topics !== undefined ? { topics } : {}),
  };
}

/** bitmar.memory.event.v1: `kind` lifted out, every other field under `data`. */
export function buildMemoryEventPayload(e: MemoryEventInput, ctx: PayloadContext, now: Date): JsonObject {
  const { kind, ...rest } = e as MemoryEventInput & Record<string, unknown>;
  const data = toJsonValue(rest);
  return {
    schema: SCHEMA_IDS.memoryEvent,
    nodeId: ctx.nodeId,
    runId: ctx.runId,
    ts: now.toISOString(),
    kind: kind.length > 0 ? kind : 'unknown',
    data: data !== null && typeof data === 'object' && !Array.isArray(data) ? data : {},
  };
}

/** bitmar.metrics.v1. */
export function buildMetricsPayload(pipeline: unknown, mqtt: MqttStats, ctx: PayloadContext, now: Date): JsonObject {
  const p = toJsonValue(pipeline);
  return {
    schema: SCHEMA_IDS.metrics,
    nodeId: ctx.nodeId,
    runId: ctx.runId,
    ts: now.toISOString(),
    mqtt: toJsonValue(mqtt),
    pipeline: p !== null && typeof p === 'object' && !Array.isArray(p) ? p : { value: p },
  };
}

export interface ResponseInput {
  readonly request: string;
  readonly result?: JsonValue;
  readonly error?: { readonly code: string; readonly message: string };
  readonly correlationId?: string;
}

/** bitmar.response.v1: `ok` is true exactly when there is no error. */
export function buildResponsePayload(r: ResponseInput, ctx: PayloadContext): JsonObject {
  return {
    schema: SCHEMA_IDS.response,
    request: r.request,
    ok: r.error === undefined,
    nodeId: ctx.nodeId,
    ...(r.error === undefined && r.result !== undefined ? { result: r.result } : {}),
    ...(r.error !== undefined ? { error: { code: r.error.code, message: r.error.message } } : {}),
    ...(r.correlationId !== undefined ? { correlationId: r.correlationId } : {}),
  };
}
