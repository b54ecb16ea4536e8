/**
 * The channels the Foxglove sink advertises: one per kind of pipeline output, JSON encoded, each
 * with its JSON Schema (schemaEncoding `jsonschema`), and the function that turns a value into the
 * channel's message. Frames use Foxglove's own `foxglove.CompressedImage` so the Image panel shows
 * them; the rest are `bitmar.*` schemas for the Raw Messages, Plot and Log panels.
 */
import type { MemoryEvent } from '../../pipeline/events.js';
import type { Caption, CaptionToken, DropEvent } from '../../types.js';

/** A plain JSON value (what a channel message is). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export type ChannelName = 'image' | 'caption' | 'partial' | 'memory' | 'drops' | 'metrics';

export interface ChannelSpec {
  readonly topic: string;
  readonly schemaName: string;
  /** JSON Schema (draft 7) of the message. */
  readonly schema: Readonly<Record<string, unknown>>;
}

/** builtin time as Foxglove's schemas spell it: `{sec, nsec}`. */
const TIME = {
  type: 'object',
  title: 'time',
  properties: { sec: { type: 'integer', minimum: 0 }, nsec: { type: 'integer', minimum: 0, maximum: 999_999_999 } },
};

const FRAME_REF = {
  type: 'object',
  properties: { id: { type: 'integer' }, source: { type: 'string' }, stampNs: { type: 'string' }, frameId: { type: 'string' } },
};

/** The channel table. Topics start with /bitmar so they sort together in Foxglove. */
export const CHANNELS: Readonly<Record<ChannelName, ChannelSpec>> = {
  image: {
    topic: '/bitmar/camera/compressed',
    schemaName: 'foxglove.CompressedImage',
    schema: {
      title: 'foxglove.CompressedImage',
      description: 'A compressed image (downscaled copy of a frame going into the pipeline)',
      type: 'object',
      properties: {
        timestamp: TIME,
        frame_id: { type: 'string' },
        data: { type: 'string', contentEncoding: 'base64' },
        format: { type: 'string' },
      },
    },
  },
  caption: {
    topic: '/bitmar/caption',
    schemaName: 'bitmar.Caption',
    schema: {
      title: 'bitmar.Caption',
      description: 'A final or cancelled caption (src/types.ts Caption)',
      type: 'object',
      properties: {
        timestamp: TIME,
        seq: { type: 'integer' },
        text: { type: 'string' },
        prompt: { type: 'string' },
        cancelled: { type: 'boolean' },
        frame: FRAME_REF,
        batchFrameIds: { type: 'array', items: { type: 'integer' } },
        latencyMs: {
          type: 'object',
          properties: { encode: { type: 'number' }, frameToFirstToken: { type: 'number' }, frameToCaption: { type: 'number' }, decode: { type: 'number' } },
        },
        model: { type: 'string' },
      },
    },
  },
  partial: {
    topic: '/bitmar/caption/partial',
    schemaName: 'bitmar.CaptionToken',
    schema: {
      title: 'bitmar.CaptionToken',
      description: 'One streamed token and the caption so far',
      type: 'object',
      properties: { timestamp: TIME, seq: { type: 'integer' }, index: { type: 'integer' }, piece: { type: 'string' }, text: { type: 'string' }, frame: FRAME_REF },
    },
  },
  memory: {
    topic: '/bitmar/memory',
    schemaName: 'bitmar.MemoryEvent',
    schema: {
      title: 'bitmar.MemoryEvent',
      description: 'An episodic-memory write, merge, eviction or error',
      type: 'object',
      properties: { kind: { type: 'string', enum: ['write', 'merge', 'evict', 'error'] }, slot: { type: 'integer' }, caption: { type: 'string' }, source: { type: 'string' }, detail: { type: 'string' } },
    },
  },
  drops: {
    topic: '/bitmar/drops',
    schemaName: 'bitmar.Drop',
    schema: {
      title: 'bitmar.Drop',
      description: 'An input dropped by a stage, with the reason (counted in bitmar_inputs_dropped_total)',
      type: 'object',
      properties: { stage: { type: 'string' }, reason: { type: 'string' }, detail: { type: 'string' } },
    },
  },
  metrics: {
    topic: '/bitmar/metrics',
    schemaName: 'bitmar.Metrics',
    schema: {
      title: 'bitmar.Metrics',
      description: 'A periodic snapshot of the node (fps, tokens/s, latency percentiles, drops, memory fill)',
      type: 'object',
      additionalProperties: true,
    },
  },
};

function time(ns: bigint): { sec: number; nsec: number } {
  const t = ns < 0n ? 0n : ns;
  return { sec: Number(t / 1_000_000_000n), nsec: Number(t % 1_000_000_000n) };
}

function frameRef(f: Caption['frame']): Json {
  return { id: f.id, source: f.source, stampNs: f.stampNs.toString(), frameId: f.frameId };
}

export function captionMessage(c: Caption): Json {
  return {
    timestamp: time(c.frame.stampNs),
    seq: c.seq,
    text: c.text,
    prompt: c.prompt,
    cancelled: c.cancelled,
    frame: frameRef(c.frame),
    batchFrameIds: [...c.batchFrameIds],
    latencyMs: { encode: c.latency.encodeMs, frameToFirstToken: c.latency.frameToFirstTokenMs, frameToCaption: c.latency.frameToCaptionMs, decode: c.latency.decodeMs },
    model: c.model,
  };
}

export function tokenMessage(t: CaptionToken): Json {
  return { timestamp: time(t.frame.stampNs), seq: t.seq, index: t.index, piece: t.piece, text: t.text, frame: frameRef(t.frame) };
}

export function memoryMessage(m: MemoryEvent): Json {
  return {
    kind: m.kind,
    ...(m.slot !== undefined ? { slot: m.slot } : {}),
    ...(m.caption !== undefined ? { caption: m.caption } : {}),
    ...(m.source !== undefined ? { source: m.source } : {}),
    ...(m.detail !== undefined ? { detail: m.detail } : {}),
  };
}

export function dropMessage(d: DropEvent): Json {
  return { stage: d.stage, reason: d.reason, ...(d.detail !== undefined ? { detail: d.detail } : {}) };
}

/** A JPEG as foxglove.CompressedImage. */
export function imageMessage(jpeg: Uint8Array, stampNs: bigint, frameId: string): Json {
  return { timestamp: time(stampNs), frame_id: frameId, data: Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength).toString('base64'), format: 'jpeg' };
}
