/**
 * Our types → ROS 2 message objects (field names as in the .msg files) and their CDR bytes. The
 * same bytes are published by the ROS 2 sink (as serialized messages) and written by the MCAP
 * recorder, so what `ros2 topic echo` shows and what `ros2 bag play` replays are identical.
 */
import type { MemoryEvent } from '../pipeline/events.js';
import type { Caption, CaptionToken } from '../types.js';
import { encodeMessage, timeFromNs } from './cdr.js';

export const CAPTION_TYPE = 'bitmar_msgs/msg/Caption';
export const CAPTION_TOKEN_TYPE = 'bitmar_msgs/msg/CaptionToken';
export const MEMORY_EVENT_TYPE = 'bitmar_msgs/msg/MemoryEvent';
export const STRING_TYPE = 'std_msgs/msg/String';
export const DIAGNOSTIC_ARRAY_TYPE = 'diagnostic_msgs/msg/DiagnosticArray';
export const IMAGE_TYPE = 'sensor_msgs/msg/Image';
export const COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage';

export interface RosTime {
  readonly sec: number;
  readonly nanosec: number;
}

export interface RosHeader {
  readonly stamp: RosTime;
  readonly frame_id: string;
}

/** diagnostic_msgs/DiagnosticStatus levels (bytes in the message). */
export const DIAGNOSTIC_LEVEL = { ok: 0, warn: 1, error: 2, stale: 3 } as const;
export type DiagnosticLevel = keyof typeof DIAGNOSTIC_LEVEL;

/** One status of a DiagnosticArray, e.g. `bitmar_node: pipeline` with fps, drops, queue depth. */
export interface DiagnosticStatusInput {
  readonly level: DiagnosticLevel;
  /** Conventionally `<node name>: <component>`. */
  readonly name: string;
  readonly message: string;
  readonly hardwareId?: string;
  readonly values?: Readonly<Record<string, string | number | boolean>>;
}

/** bitmar_msgs/MemoryEvent kinds (constants of the message). */
export const MEMORY_EVENT_KIND = { write: 0, merge: 1, evict: 2, error: 3, reset: 4 } as const;
export type MemoryEventKind = keyof typeof MEMORY_EVENT_KIND;

/** A memory event of the pipeline, or a reset done through the service. */
export type MemoryEventInput = MemoryEvent | { readonly kind: 'reset'; readonly detail?: string; readonly slot?: number; readonly caption?: string; readonly source?: string };

function clampMs(ms: number): number {
  return Number.isFinite(ms) ? ms : 0;
}

/** bitmar_msgs/msg/Caption: header = the source frame's stamp and frame_id. */
export function captionMessage(c: Caption): Record<string, unknown> {
  return {
    header: { stamp: timeFromNs(c.frame.stampNs), frame_id: c.frame.frameId },
    seq: BigInt(c.seq),
    text: c.text,
    token_ids: Int32Array.from(c.tokenIds),
    prompt: c.prompt,
    is_final: c.isFinal,
    cancelled: c.cancelled,
    model: c.model,
    source: c.frame.source,
    frame_id_number: BigInt(c.frame.id),
    batch_frame_ids: BigUint64Array.from(c.batchFrameIds, (id) => BigInt(id)),
    encode_ms: clampMs(c.latency.encodeMs),
    frame_to_first_token_ms: clampMs(c.latency.frameToFirstTokenMs),
    frame_to_caption_ms: clampMs(c.latency.frameToCaptionMs),
    decode_ms: clampMs(c.latency.decodeMs),
    episode_slot: c.episodeSlot ?? -1,
  };
}

/** bitmar_msgs/msg/CaptionToken (the partial-caption topic). */
export function captionTokenMessage(t: CaptionToken): Record<string, unknown> {
  return {
    header: { stamp: timeFromNs(t.frame.stampNs), frame_id: t.frame.frameId },
    seq: BigInt(t.seq),
    index: t.index,
    token_id: t.tokenId,
    piece: t.piece,
    text: t.text,
  };
}

/** diagnostic_msgs/msg/DiagnosticArray stamped `stampNs`. */
export function diagnosticArrayMessage(stampNs: bigint, statuses: readonly DiagnosticStatusInput[]): Record<string, unknown> {
  return {
    header: { stamp: timeFromNs(stampNs), frame_id: '' },
    status: statuses.map((s) => ({
      level: DIAGNOSTIC_LEVEL[s.level],
      name: s.name,
      message: s.message,
      hardware_id: s.hardwareId ?? '',
      values: Object.entries(s.values ?? {}).map(([key, value]) => ({ key, value: String(value) })),
    })),
  };
}

/** bitmar_msgs/msg/MemoryEvent stamped `stampNs`. */
export function memoryEventMessage(stampNs: bigint, e: MemoryEventInput): Record<string, unknown> {
  return {
    header: { stamp: timeFromNs(stampNs), frame_id: '' },
    kind: MEMORY_EVENT_KIND[e.kind],
    slot: e.slot ?? -1,
    caption: e.caption ?? '',
    source: e.source ?? '',
    detail: e.detail ?? '',
  };
}

/** CDR of a Caption. */
export function encodeCaption(c: Caption): Uint8Array {
  return encodeMessage(CAPTION_TYPE, captionMessage(c));
}

/** CDR of a CaptionToken. */
export function encodeCaptionToken(t: CaptionToken): Uint8Array {
  return encodeMessage(CAPTION_TOKEN_TYPE, captionTokenMessage(t));
}

/** CDR of a std_msgs/String. */
export function encodeString(text: string): Uint8Array {
  return encodeMessage(STRING_TYPE, { data: text });
}

/** CDR of a DiagnosticArray. */
export function encodeDiagnostics(stampNs: bigint, statuses: readonly DiagnosticStatusInput[]): Uint8Array {
  return encodeMessage(DIAGNOSTIC_ARRAY_TYPE, diagnosticArrayMessage(stampNs, statuses));
}

/** CDR of a MemoryEvent. */
export function encodeMemoryEvent(stampNs: bigint, e: MemoryEventInput): Uint8Array {
  return encodeMessage(MEMORY_EVENT_TYPE, memoryEventMessage(stampNs, e));
}

/** Wall-clock time, ns since the epoch (what ROS stamps with when not using sim time). */
export function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
