/**
 * The MQTT source: images and prompts in, typed Frame / Prompt out (docs/mqtt.md, Inputs).
 *
 * Topics (default, under `<prefix>/<node-id>/`): `image` (JPEG, PNG, or raw pixels with MQTT 5
 * user properties), `image/raw` (3.1.1 raw form), `prompt`, `request/+` (requests.ts).
 * Worker mode (`shareGroup`): images come through `$share/<group>/<prefix>/+/image`, so N nodes
 * split the frames of many cameras; a frame from camera `<id>` is answered on
 * `<prefix>/<id>/caption` (Frame.replyTo), or on the MQTT 5 responseTopic when one is given.
 *
 * Every bad input is a counted drop (drops$, and the transport's `dropped` counters that the
 * metrics topic carries), never an error on frames$: size limit, rate limit (token bucket, before
 * any decoding), not an image, truncated, bad raw header, bad UTF-8 prompt, unknown request.
 *
 * With a `decodePool` (what `run` passes), JPEG/PNG decoding and raw conversions other than tight
 * rgb8 run in its worker thread; headers and limits are still checked here first, with the same
 * refusals. A topic's frames come out in arrival order: one ready after a newer one is dropped
 * (`superseded`), as is one the busy pool let go (`queue_full`, `superseded`). `shouldDecode` (the
 * sampler's decision, asked after the rate limit) skips a frame before any decoding (`sampled_out`).
 */
import { Observable, Subject } from 'rxjs';
import { isBitmarError } from '../../errors.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from '../../ros2/image-decode.js';
import { nodeTopic, shareFilter, deviceIdOf, STREAMS } from '../../sinks/mqtt/topics.js';
import type { DropNotice, InboundMessage, MqttTransport } from '../../sinks/mqtt/transport.js';
import type { DropEvent, DropReason, Frame, Prompt, ReplyTarget } from '../../types.js';
import { defaultImageDecoder, type ImageDecoder } from './default-decoder.js';
import { ArrivalOrder, isDecodeSkipped, type DecodePool } from '../image/decode-pool.js';
import { decodeImagePayload, decodeImagePayloadAsync, splitRawEnvelope, type ImageMessageResult, type ImageWork, type RawHeader } from './image-message.js';
import { parsePrompt } from './prompt-message.js';
import { createRequestHandler, type MqttRequestHandlers } from './requests.js';

export interface MqttSourceOptions {
  /** Worker mode: share image input with other nodes through `$share/<group>/...`. Default: off. */
  readonly shareGroup?: string;
  /** Image topic filters; default `<prefix>/<node-id>/image` (+ `/image/raw`), or the shared `<prefix>/+/image` forms in worker mode. */
  readonly imageTopics?: readonly string[];
  /** Prompt topic filters; default `<prefix>/<node-id>/prompt`. */
  readonly promptTopics?: readonly string[];
  /** Subscription QoS of images. Default 0 (a fresh frame beats a redelivered old one). */
  readonly imageQoS?: 0 | 1;
  /** JPEG/PNG decoder. Default: src/sources/image/decode.ts `decodeImage`. Not used with `decodePool`. */
  readonly decodeImage?: ImageDecoder;
  /** Decode in this pool's worker thread (see the file comment). Default: on this thread. */
  readonly decodePool?: DecodePool;
  /**
   * Asked for each image after the rate limit, before decoding: false skips it cheaply (the sampler
   * would drop it anyway), counted as `sampled_out`. Not asked for describe requests. Default: decode all.
   */
  readonly shouldDecode?: (topic: string) => boolean;
  /** Largest image accepted (pixels are checked before decoding). Default 8192², 32 MP. */
  readonly limits?: ImageLimits;
  /** Images accepted per second (token bucket, burst = the rate); more are dropped `rate_limited` before decoding. Default 30. */
  readonly maxFramesPerSec?: number;
  /** Prompts accepted per second. Default 5. */
  readonly maxPromptsPerSec?: number;
  /** Longest prompt, bytes. Default 1024. */
  readonly maxPromptBytes?: number;
  /** describe / recall handlers; requests are subscribed when given. */
  readonly handlers?: MqttRequestHandlers;
  readonly requestTimeoutMs?: number;
  readonly maxPendingRequests?: number;
  /** Clock for the rate limits, milliseconds (tests). Default performance.now. */
  readonly nowMs?: () => number;
}

export interface MqttSource {
  /** Hot: frames arriving while nobody subscribes are not kept. */
  readonly frames$: Observable<Frame>;
  readonly prompts$: Observable<Prompt>;
  /** Every refused input (stage `mqtt`). */
  readonly drops$: Observable<DropEvent>;
  /** Unsubscribes the topics and completes the streams. The transport stays open. */
  close(): void;
}

const STAGE = 'mqtt';
const REASONS: ReadonlySet<string> = new Set<DropReason>(['decode_error', 'invalid_input', 'too_large', 'sampled_out', 'queue_full', 'stale', 'superseded', 'cancelled', 'rate_limited', 'unknown_topic']);

/** A token bucket: `rate` tokens per second, at most `rate` banked (at least 1). */
function tokenBucket(ratePerSec: number, nowMs: () => number): () => boolean {
  if (!(ratePerSec > 0)) throw new RangeError(`rate must be > 0 per second, got ${ratePerSec}`);
  const burst = Math.max(1, ratePerSec);
  let tokens = burst;
  let last = nowMs();
  return () => {
    const t = nowMs();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * ratePerSec);
    last = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/** Wall clock in nanoseconds since the epoch, with sub-millisecond resolution from hrtime. */
function epochNsClock(): () => bigint {
  const origin = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => origin + process.hrtime.bigint();
}

function rawHeaderFrom(props: Readonly<Record<string, string>>): RawHeader | undefined {
  if (props.encoding === undefined) return undefined;
  return {
    encoding: props.encoding,
    ...(props.width !== undefined ? { width: props.width } : {}),
    ...(props.height !== undefined ? { height: props.height } : {}),
    ...(props.step !== undefined ? { step: props.step } : {}),
    ...(props.is_bigendian !== undefined ? { is_bigendian: props.is_bigendian } : {}),
  };
}

/**
 * Subscribes the input topics on `transport` (now and after every reconnect) and returns the
 * streams. Throws a TypeError for an invalid share group and a RangeError for a bad rate.
 */
export function createMqttSource(transport: MqttTransport, opts: MqttSourceOptions = {}): MqttSource {
  const frames = new Subject<Frame>();
  const prompts = new Subject<Prompt>();
  const drops = new Subject<DropEvent>();
  const limits = opts.limits ?? DEFAULT_IMAGE_LIMITS;
  const decode = opts.decodeImage ?? defaultImageDecoder(limits);
  const nowMs = opts.nowMs ?? (() => performance.now());
  const admitFrame = tokenBucket(opts.maxFramesPerSec ?? 30, nowMs);
  const admitPrompt = tokenBucket(opts.maxPromptsPerSec ?? 5, nowMs);
  const nowNs = epochNsClock();
  const prefix = transport.prefix;
  const own = (stream: string): string => nodeTopic(prefix, transport.nodeId, stream);
  let nextFrameId = 1;

  const drop = (reason: DropReason, topic: string, detail: string): void => {
    transport.countDrop({ reason, direction: 'in', topic, detail });
  };
  // Transport drops of received messages (too large, unknown topic, handler error) and ours, in one stream.
  const onDrop = (n: DropNotice): void => {
    if (n.direction !== 'in') return;
    const reason: DropReason = REASONS.has(n.reason) ? (n.reason as DropReason) : 'invalid_input';
    drops.next({ stage: STAGE, reason, detail: `${n.topic ?? ''}: ${n.detail ?? n.reason}` });
  };
  transport.on('drop', onDrop);

  /** Where the caption of a frame from `topic` goes: the responseTopic, the camera's own topic (worker mode), or the node's (undefined). */
  const replyTo = (msg: InboundMessage): ReplyTarget | undefined => {
    if (msg.responseTopic !== undefined && !/[+#]/.test(msg.responseTopic)) {
      return { kind: 'mqtt', topic: msg.responseTopic, ...(msg.correlationData !== undefined ? { correlationData: msg.correlationData } : {}) };
    }
    const device = deviceIdOf(prefix, msg.topic);
    return device !== undefined && device !== transport.nodeId ? { kind: 'mqtt', topic: nodeTopic(prefix, device, STREAMS.caption) } : undefined;
  };

  type Refused = { reason: DropReason; detail: string };
  /** The payload and raw header of an image message, or why it is refused. */
  const payloadOf = (msg: InboundMessage): { payload: Uint8Array; raw: RawHeader | undefined } | Refused => {
    const raw = rawHeaderFrom(msg.userProperties);
    if (raw === undefined && msg.topic.endsWith('/image/raw')) {
      try {
        const env = splitRawEnvelope(msg.payload);
        return { payload: env.data, raw: env.header };
      } catch (e) {
        return { reason: 'invalid_input', detail: isBitmarError(e) ? `${e.code}: ${e.message}` : (e as Error).message };
      }
    }
    return { payload: msg.payload, raw };
  };
  const toFrame = (msg: InboundMessage, res: ImageMessageResult): Frame | Refused => {
    if (!res.ok) return { reason: res.reason, detail: res.detail };
    const stamp = msg.userProperties.stampNs;
    const reply = replyTo(msg);
    return {
      id: nextFrameId++,
      source: `mqtt:${msg.topic}`,
      stampNs: stamp !== undefined && /^[0-9]{1,20}$/.test(stamp) ? BigInt(stamp) : nowNs(),
      frameId: msg.userProperties.frameId ?? deviceIdOf(prefix, msg.topic) ?? '',
      receivedMs: msg.receivedMs,
      width: res.image.width,
      height: res.image.height,
      data: res.image.data,
      ...(reply !== undefined ? { replyTo: reply } : {}),
    };
  };
  const frameFrom = (msg: InboundMessage): Frame | Refused => {
    const p = payloadOf(msg);
    if ('reason' in p) return p;
    return toFrame(msg, decodeImagePayload(p.payload, p.raw, decode, limits));
  };
  const pool = opts.decodePool;
  const decodeLimits = { maxWidth: limits.maxWidth, maxHeight: limits.maxHeight };
  /** frameFrom with the pixel work in the pool (`key`: latest wins per camera); null when the pool was closed. */
  const frameFromAsync = async (msg: InboundMessage, p: DecodePool, key: string): Promise<Frame | Refused | null> => {
    const payload = payloadOf(msg);
    if ('reason' in payload) return payload;
    const work: ImageWork = {
      decode: (bytes) => p.decode(bytes, { key, limits: decodeLimits }),
      convert: (view) => p.convert(view, limits, key),
      isSkip: isDecodeSkipped,
    };
    try {
      return toFrame(msg, await decodeImagePayloadAsync(payload.payload, payload.raw, work, limits));
    } catch (e) {
      if (isDecodeSkipped(e)) return e.reason === 'cancelled' ? null : { reason: e.reason, detail: e.message };
      return { reason: 'decode_error', detail: (e as Error)?.message ?? String(e) };
    }
  };
  let closed = false;
  let requestSeq = 0;
  const order = new ArrivalOrder();

  const onImage = (msg: InboundMessage): void => {
    if (!admitFrame()) {
      drop('rate_limited', msg.topic, `more than ${opts.maxFramesPerSec ?? 30} images/s`);
      return;
    }
    if (opts.shouldDecode !== undefined && !opts.shouldDecode(msg.topic)) {
      drops.next({ stage: STAGE, reason: 'sampled_out', detail: msg.topic });
      return;
    }
    if (pool === undefined) {
      const f = frameFrom(msg);
      if ('id' in f) frames.next(f);
      else drop(f.reason, msg.topic, f.detail);
      return;
    }
    const ticket = order.ticket();
    void frameFromAsync(msg, pool, msg.topic).then((f) => {
      if (closed || f === null) return;
      if (!('id' in f)) drop(f.reason, msg.topic, f.detail);
      else if (!order.admit(msg.topic, ticket)) drop('superseded', msg.topic, `frame ${f.id} was ready after a newer one`);
      else frames.next(f);
    });
  };

  const onPrompt = (msg: InboundMessage): void => {
    if (!admitPrompt()) {
      drop('rate_limited', msg.topic, `more than ${opts.maxPromptsPerSec ?? 5} prompts/s`);
      return;
    }
    const p = parsePrompt(msg.payload, opts.maxPromptBytes ?? 1024);
    if (p.ok) prompts.next({ text: p.text, source: `mqtt:${msg.topic}`, receivedMs: msg.receivedMs });
    else drop(p.reason, msg.topic, p.detail);
  };

  const imageTopics =
    opts.imageTopics ??
    (opts.shareGroup !== undefined && opts.shareGroup !== ''
      ? [shareFilter(opts.shareGroup, `${prefix}/+/${STREAMS.image}`), shareFilter(opts.shareGroup, `${prefix}/+/${STREAMS.image}/raw`)]
      : [own(STREAMS.image), own(`${STREAMS.image}/raw`)]);
  const promptTopics = opts.promptTopics ?? [own(STREAMS.prompt)];
  const unsubscribers = [
    ...imageTopics.map((t) => transport.subscribe(t, opts.imageQoS ?? 0, onImage, 'image')),
    ...promptTopics.map((t) => transport.subscribe(t, 1, onPrompt, 'prompt')),
  ];
  if (opts.handlers !== undefined) {
    const onRequest = createRequestHandler(transport, {
      handlers: opts.handlers,
      // The answer goes out as the request's response, so the frame itself carries no reply target.
      frameFromImage: (msg) => {
        const strip = (f: Frame | Refused): Frame | Refused => {
          if (!('id' in f)) return f;
          const { replyTo: _ignored, ...frame } = f;
          return frame;
        };
        if (pool === undefined) return strip(frameFrom(msg));
        // Each request is answered: a key of its own, so no newer image replaces it in the queue.
        return frameFromAsync(msg, pool, `request:${++requestSeq}`).then((f): Frame | Refused => (f === null ? { reason: 'cancelled', detail: 'the node is stopping' } : strip(f)));
      },
      drop,
      ...(opts.requestTimeoutMs !== undefined ? { timeoutMs: opts.requestTimeoutMs } : {}),
      ...(opts.maxPendingRequests !== undefined ? { maxPending: opts.maxPendingRequests } : {}),
    });
    unsubscribers.push(transport.subscribe(own(`${STREAMS.request}/+`), 1, onRequest, 'request'));
  }

  return {
    frames$: frames.asObservable(),
    prompts$: prompts.asObservable(),
    drops$: drops.asObservable(),
    close() {
      closed = true;
      for (const u of unsubscribers) u();
      transport.off('drop', onDrop);
      frames.complete();
      prompts.complete();
      drops.complete();
    },
  };
}
