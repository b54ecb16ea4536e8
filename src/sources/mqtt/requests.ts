/**
 * Request/response over MQTT (MQTT 5.0 §4.10): `<prefix>/<node-id>/request/<name>` with a
 * responseTopic and correlationData; the answer (bitmar.response.v1) goes to the response topic
 * with the same correlation data. MQTT 3.1.1 clients put `responseTopic` and `correlationId` in
 * the JSON body instead, and get `correlationId` back in the JSON.
 *
 * Requests: `describe` (caption the newest frame now, or the JPEG/PNG in the payload) and `recall`
 * (episodic-memory query). The handlers are injected; an absent handler answers `unsupported`.
 */
import { BitmarError, isBitmarError } from '../../errors.js';
import type { JsonValue } from '../../sinks/mqtt/json-schema.js';
import { validateJson } from '../../sinks/mqtt/json-schema.js';
import { buildCaptionPayload, buildResponsePayload, toJsonValue } from '../../sinks/mqtt/payloads.js';
import { DESCRIBE_REQUEST_SCHEMA, RECALL_REQUEST_SCHEMA } from '../../sinks/mqtt/schemas.js';
import type { InboundMessage, MqttTransport } from '../../sinks/mqtt/transport.js';
import type { Caption, DropReason, Frame } from '../../types.js';
import { isJpeg, isPng } from './image-message.js';

export interface DescribeRequest {
  /** Task for this request; undefined = the current prompt. */
  readonly prompt?: string;
  /** The image sent with the request; undefined = caption the newest frame. */
  readonly frame?: Frame;
  /** The request topic. */
  readonly topic: string;
}

export interface RecallRequest {
  readonly query: string;
  /** How many episodes (1..100, default 5). */
  readonly k: number;
  readonly topic: string;
}

export interface MqttRequestHandlers {
  /** Resolves to the caption to return (sent as bitmar.caption.v1 in `result`). */
  readonly describe?: (req: DescribeRequest) => Promise<Caption>;
  /** Resolves to the episodes found, as JSON-able data (sent in `result`). */
  readonly recall?: (req: RecallRequest) => Promise<unknown>;
}

export interface RequestOptions {
  readonly handlers: MqttRequestHandlers;
  /** Answer `timeout` after this long, milliseconds. Default 30 000. */
  readonly timeoutMs?: number;
  /** Requests handled at once; more are answered `busy`. Default 8. */
  readonly maxPending?: number;
  /**
   * JPEG/PNG payload of a describe request → Frame; returns a drop reason when it cannot. May
   * resolve later (decoded in a worker): the request is then answered when it does.
   */
  readonly frameFromImage: (msg: InboundMessage) => FrameOrRefusal | Promise<FrameOrRefusal>;
  /** Counts a refused request (also emitted on drops$). */
  readonly drop: (reason: DropReason, topic: string, detail: string) => void;
}

type FrameOrRefusal = Frame | { reason: DropReason; detail: string };

interface Reply {
  readonly topic: string;
  /** MQTT 5 correlationData property of the request. */
  readonly correlationData?: Buffer;
  /** `correlationId` of the JSON body (the MQTT 3.1.1 form). */
  readonly correlationId?: string;
}

function errorCode(e: unknown): string {
  return isBitmarError(e) ? e.code : 'internal';
}

/** Parses the JSON body of a request; `{}` for an empty payload. Throws BitmarError. */
function jsonBody(payload: Buffer): Record<string, JsonValue> {
  if (payload.byteLength === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', `request body is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BitmarError('BITMAR_ERR_PROMPT_INVALID', 'request body must be a JSON object');
  return body as Record<string, JsonValue>;
}

function replyOf(msg: InboundMessage, body: Record<string, JsonValue> | undefined): Reply | undefined {
  const topic = msg.responseTopic ?? (typeof body?.responseTopic === 'string' ? body.responseTopic : undefined);
  if (topic === undefined || topic.length === 0 || /[+#]/.test(topic)) return undefined;
  const id = body?.correlationId;
  return {
    topic,
    ...(msg.correlationData !== undefined ? { correlationData: msg.correlationData } : {}),
    ...(typeof id === 'string' ? { correlationId: id } : {}),
  };
}

/** Returns the handler for messages on `<prefix>/<node-id>/request/+`. */
export function createRequestHandler(transport: MqttTransport, opts: RequestOptions): (msg: InboundMessage) => void {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxPending = opts.maxPending ?? 8;
  let pending = 0;

  const respond = (reply: Reply, request: string, outcome: { result?: JsonValue; error?: { code: string; message: string } }): void => {
    // The JSON form of the request gets its correlationId back in the JSON; MQTT 5 correlationData goes back as the property.
    const payload = buildResponsePayload({ request, ...outcome, ...(reply.correlationId !== undefined ? { correlationId: reply.correlationId } : {}) }, transport.context);
    const props = transport.jsonProperties(reply.correlationData !== undefined ? { correlationData: reply.correlationData } : {});
    transport.publish(reply.topic, payload, { qos: 1, ...(props !== undefined ? { properties: props } : {}) });
  };

  const run = async (name: string, msg: InboundMessage, body: Record<string, JsonValue>, frame: Frame | undefined): Promise<JsonValue> => {
    if (name === 'describe') {
      const handler = opts.handlers.describe;
      if (handler === undefined) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', 'describe requests are not enabled on this node');
      const caption = await handler({
        topic: msg.topic,
        ...(typeof body.prompt === 'string' ? { prompt: body.prompt } : {}),
        ...(frame !== undefined ? { frame } : {}),
      });
      return buildCaptionPayload(caption, transport.context);
    }
    const handler = opts.handlers.recall;
    if (handler === undefined) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', 'recall requests are not enabled on this node');
    const k = typeof body.k === 'number' ? body.k : 5;
    return toJsonValue(await handler({ topic: msg.topic, query: String(body.query), k }));
  };

  const handle = (msg: InboundMessage): void => {
    const name = msg.topic.slice(msg.topic.lastIndexOf('/') + 1);
    const isImage = name === 'describe' && (isJpeg(msg.payload) || isPng(msg.payload));
    let body: Record<string, JsonValue> | undefined;
    let bodyError: BitmarError | undefined;
    try {
      body = isImage ? {} : jsonBody(msg.payload);
    } catch (e) {
      bodyError = e as BitmarError;
    }
    const reply = replyOf(msg, body);
    if (reply === undefined) {
      opts.drop('invalid_input', msg.topic, 'request without a response topic (MQTT 5 responseTopic, or "responseTopic" in the JSON body on 3.1.1)');
      return;
    }
    if (name !== 'describe' && name !== 'recall') {
      opts.drop('unknown_topic', msg.topic, `unknown request "${name}"`);
      respond(reply, name, { error: { code: 'unknown_request', message: `unknown request "${name}" (known: describe, recall)` } });
      return;
    }
    if (bodyError !== undefined || body === undefined) {
      opts.drop('invalid_input', msg.topic, bodyError?.message ?? 'bad body');
      respond(reply, name, { error: { code: bodyError?.code ?? 'invalid_request', message: bodyError?.message ?? 'bad body' } });
      return;
    }
    const problems = validateJson(name === 'describe' ? DESCRIBE_REQUEST_SCHEMA : RECALL_REQUEST_SCHEMA, body);
    if (problems.length > 0) {
      opts.drop('invalid_input', msg.topic, problems.join('; '));
      respond(reply, name, { error: { code: 'invalid_request', message: problems.join('; ') } });
      return;
    }
    const proceed = (frame: Frame | undefined): void => {
      if (pending >= maxPending) {
        opts.drop('rate_limited', msg.topic, `${pending} requests pending`);
        respond(reply, name, { error: { code: 'busy', message: `${pending} requests already pending; retry later` } });
        return;
      }
      start(name, msg, body, frame, reply);
    };
    if (!isImage) return proceed(undefined);
    const withFrame = (f: FrameOrRefusal): void => {
      if (!('id' in f)) {
        opts.drop(f.reason, msg.topic, f.detail);
        respond(reply, name, { error: { code: f.reason, message: f.detail } });
        return;
      }
      proceed(f);
    };
    const f = opts.frameFromImage(msg);
    if (f instanceof Promise) {
      f.then(withFrame, (e: unknown) => withFrame({ reason: 'decode_error', detail: (e as Error)?.message ?? String(e) }));
    } else {
      withFrame(f);
    }
  };

  const start = (name: string, msg: InboundMessage, body: Record<string, JsonValue>, frame: Frame | undefined, reply: Reply): void => {
    pending++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'timeout' })), timeoutMs);
    });
    Promise.race([run(name, msg, body, frame), timeout])
      .then(
        (result) => respond(reply, name, { result }),
        (e: unknown) => {
          const code = (e as { code?: unknown }).code === 'timeout' ? 'timeout' : errorCode(e);
          respond(reply, name, { error: { code, message: (e as Error)?.message ?? String(e) } });
        },
      )
      .finally(() => {
        clearTimeout(timer);
        pending--;
      });
  };

  return handle;
}
