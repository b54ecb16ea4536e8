/**
 * The subset of the Foxglove WebSocket protocol v1 this sink speaks (foxglove/ws-protocol
 * docs/spec.md, subprotocol `foxglove.websocket.v1`): the server sends Server Info, Advertise and
 * Status (JSON text) and Message Data (binary); the client sends Subscribe and Unsubscribe.
 * Client publishing, parameters, services, time and assets are not offered (no capabilities).
 */

/** The WebSocket subprotocol of spec v1; the server must select it in the handshake. */
export const SUBPROTOCOL = 'foxglove.websocket.v1';

/** Binary opcode of Message Data (spec: "Message Data", server → client). */
export const OPCODE_MESSAGE_DATA = 0x01;

/** One advertised channel (spec: "Advertise"): JSON messages described by a JSON Schema. */
export interface AdvertisedChannel {
  readonly id: number;
  readonly topic: string;
  readonly encoding: 'json';
  readonly schemaName: string;
  /** The JSON Schema, as a string. */
  readonly schema: string;
  readonly schemaEncoding: 'jsonschema';
}

/** Status levels (spec: "Status"). */
export const STATUS_LEVEL = { info: 0, warning: 1, error: 2 } as const;

export function serverInfo(name: string, sessionId: string, metadata: Readonly<Record<string, string>>): string {
  return JSON.stringify({ op: 'serverInfo', name, capabilities: [], metadata, sessionId });
}

export function advertise(channels: readonly AdvertisedChannel[]): string {
  return JSON.stringify({ op: 'advertise', channels });
}

export function status(level: (typeof STATUS_LEVEL)[keyof typeof STATUS_LEVEL], message: string): string {
  return JSON.stringify({ op: 'status', level, message });
}

/**
 * Message Data: opcode 0x01, uint32 subscription id, uint64 receive timestamp (ns), payload —
 * integers little-endian (spec: "Binary messages").
 */
export function messageData(subscriptionId: number, timestampNs: bigint, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + 4 + 8 + payload.byteLength);
  out.writeUInt8(OPCODE_MESSAGE_DATA, 0);
  out.writeUInt32LE(subscriptionId, 1);
  out.writeBigUInt64LE(timestampNs, 5);
  out.set(payload, 13);
  return out;
}

/** A client request this server understands, or why it cannot be used. */
export type ClientRequest =
  | { readonly op: 'subscribe'; readonly subscriptions: readonly { readonly id: number; readonly channelId: number }[] }
  | { readonly op: 'unsubscribe'; readonly subscriptionIds: readonly number[] }
  | { readonly op: 'invalid'; readonly reason: string };

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** Parses one text frame from a client. Never throws: a bad frame is `{op: 'invalid'}`. */
export function parseClientRequest(text: string): ClientRequest {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { op: 'invalid', reason: 'not JSON' };
  }
  if (msg === null || typeof msg !== 'object' || !('op' in msg)) return { op: 'invalid', reason: 'not an object with "op"' };
  if (msg.op === 'subscribe' && 'subscriptions' in msg && Array.isArray(msg.subscriptions)) {
    const subscriptions: { id: number; channelId: number }[] = [];
    for (const s of msg.subscriptions as unknown[]) {
      if (s === null || typeof s !== 'object' || !('id' in s) || !('channelId' in s) || !isUint32(s.id) || !isUint32(s.channelId)) {
        return { op: 'invalid', reason: 'subscribe: each subscription needs uint32 "id" and "channelId"' };
      }
      subscriptions.push({ id: s.id, channelId: s.channelId });
    }
    return { op: 'subscribe', subscriptions };
  }
  if (msg.op === 'unsubscribe' && 'subscriptionIds' in msg && Array.isArray(msg.subscriptionIds)) {
    const ids = msg.subscriptionIds as unknown[];
    if (!ids.every(isUint32)) return { op: 'invalid', reason: 'unsubscribe: "subscriptionIds" must be uint32s' };
    return { op: 'unsubscribe', subscriptionIds: ids };
  }
  return { op: 'invalid', reason: `unsupported op ${JSON.stringify(msg.op)} (this server offers subscribe and unsubscribe only)` };
}
