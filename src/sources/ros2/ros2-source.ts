/**
 * Live ROS 2 input: camera frames from sensor_msgs/msg/Image and sensor_msgs/msg/CompressedImage
 * subscriptions and prompts from a std_msgs/msg/String subscription, all raw (`isRaw: true`): the
 * CDR is decoded here (src/ros2/image-decode.ts), so the pixels are copied once, into the RGB8
 * Frame, instead of rclnodejs building a message object first (its weak point for big images).
 *
 * The callbacks only decode and emit: generation never runs inside them (the pipeline decides
 * what to caption, on its own schedule), so a slow caption never stalls the executor. Frames
 * that arrive while a lifecycle node is inactive are skipped without counting.
 *
 * With a `decodePool` (what `run` passes), JPEG/PNG decoding and the per-pixel conversions (bgr8,
 * mono, 16-bit, YUV) run in its worker thread: the callback only reads the CDR, and the frame is
 * emitted when its pixels are ready. A topic's frames come out in arrival order: one that finishes
 * after a newer one is dropped (`superseded`), and so is one the busy pool let go (`queue_full`,
 * `superseded`). Tight rgb8 is a single copy and stays in the callback.
 */
import { Subject, type Observable } from 'rxjs';
import { createInputDecoder, InputCounts, type SourceClock } from '../../ros2/inputs.js';
import { DEFAULT_IMAGE_LIMITS, type CompressedDecoder, type ImageLimits } from '../../ros2/image-decode.js';
import { ArrivalOrder, isDecodeSkipped, type DecodePool } from '../image/decode-pool.js';
import { COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, STRING_TYPE } from '../../ros2/messages.js';
import { qosProfile, type QosChoice } from '../../ros2/qos.js';
import type { Ros2Transport } from '../../ros2/transport.js';
import type { DropEvent, Frame, Prompt } from '../../types.js';

export interface Ros2SourceOptions {
  /** The shared node (openRos2Transport). */
  readonly transport: Ros2Transport;
  /** sensor_msgs/msg/Image topic; '' = none. Default `/image_raw`. */
  readonly imageTopic?: string;
  /** sensor_msgs/msg/CompressedImage topic (image_transport: `<image>/compressed`); '' = none (default). */
  readonly compressedTopic?: string;
  /** std_msgs/msg/String prompts; '' = none. Default `~/prompt`. */
  readonly promptTopic?: string;
  /** Default `sensor_data` (best effort): what camera drivers publish with. */
  readonly imageQos?: QosChoice;
  /** Default `sensor_data`. */
  readonly compressedQos?: QosChoice;
  /** Default `reliable` (depth 10): prompts must not be lost. */
  readonly promptQos?: QosChoice;
  readonly limits?: ImageLimits;
  /** JPEG/PNG decoder; default: src/sources/image/decode.ts `decodeImage`. Not used with `decodePool`. */
  readonly decodeCompressed?: CompressedDecoder;
  /** Decode JPEG/PNG and convert raw encodings in this pool's worker (see the file comment). Default: in the callback. */
  readonly decodePool?: DecodePool;
  /** Default 1024 characters. */
  readonly maxPromptLength?: number;
  /**
   * Asked before decoding each image: return false to skip it cheaply (e.g. the sampler would
   * drop it anyway); it is then counted as `sampled_out`. Default: decode everything.
   */
  readonly shouldDecode?: (topic: string) => boolean;
  readonly clock?: SourceClock;
}

export interface Ros2Source {
  /** Hot: frames as they arrive (after `transport.spin()`). Completes on close. */
  readonly frames$: Observable<Frame>;
  readonly prompts$: Observable<Prompt>;
  /** Every input that could not be used, with a reason. */
  readonly drops$: Observable<DropEvent>;
  /** Frames, prompts and drops by reason so far. */
  counts(): ReturnType<InputCounts['snapshot']>;
  /** Completes the streams (the transport destroys the subscriptions with the node). */
  close(): void;
}

const STAGE = 'ros2-source';

function toBytes(message: unknown): Uint8Array | undefined {
  return message instanceof Uint8Array ? message : undefined;
}

/** Subscribes to the configured topics on `transport.node`. Throws what rclnodejs throws. */
export function createRos2Source(opts: Ros2SourceOptions): Ros2Source {
  const { transport } = opts;
  const { rcl, node } = transport;
  const frames$ = new Subject<Frame>();
  const prompts$ = new Subject<Prompt>();
  const drops$ = new Subject<DropEvent>();
  const counts = new InputCounts();
  const decoder = createInputDecoder({
    stage: STAGE,
    limits: opts.limits,
    decodeCompressed: opts.decodeCompressed,
    maxPromptLength: opts.maxPromptLength,
    clock: opts.clock,
  });
  let closed = false;

  const dropped = (d: DropEvent): void => {
    counts.drop(d.reason);
    drops$.next(d);
  };
  const pool = opts.decodePool;
  const limits = opts.limits ?? DEFAULT_IMAGE_LIMITS;
  const order = new ArrivalOrder();
  const emitFrame = (result: ReturnType<typeof decoder.image>): void => {
    if (closed) return;
    if (result.ok) {
      counts.frames++;
      frames$.next(result.value);
    } else {
      dropped(result.drop);
    }
  };
  /** Raw bytes, or a drop when rclnodejs did not deliver a Buffer; skips while inactive. */
  const accept = (topic: string, message: unknown, isImage: boolean): Uint8Array | undefined => {
    if (closed || !transport.isActive()) return undefined;
    const bytes = toBytes(message);
    if (!bytes) {
      dropped({ stage: STAGE, reason: 'decode_error', detail: `${topic}: expected a serialized message (isRaw), got ${typeof message}` });
      return undefined;
    }
    if (isImage && opts.shouldDecode && !opts.shouldDecode(topic)) {
      dropped({ stage: STAGE, reason: 'sampled_out', detail: topic });
      return undefined;
    }
    return bytes;
  };

  /** A frame decoded in the pool: emitted unless a newer one of its topic went out first. */
  const emitLater = (topic: string, work: Promise<ReturnType<typeof decoder.image>>): void => {
    const ticket = order.ticket();
    work.then(
      (result) => {
        if (closed) return;
        if (result.ok && !order.admit(topic, ticket)) {
          dropped({ stage: STAGE, reason: 'superseded', detail: `${topic}: frame ${result.value.id} was ready after a newer one` });
        } else {
          emitFrame(result);
        }
      },
      (e: unknown) => {
        if (closed || (isDecodeSkipped(e) && e.reason === 'cancelled')) return;
        if (isDecodeSkipped(e)) dropped({ stage: STAGE, reason: e.reason, detail: `${topic}: ${e.message}` });
        else dropped({ stage: STAGE, reason: 'decode_error', detail: `${topic}: ${(e as Error)?.message ?? String(e)}` });
      },
    );
  };

  const imageTopic = opts.imageTopic ?? '/image_raw';
  if (imageTopic !== '') {
    const qos = qosProfile(rcl, opts.imageQos ?? 'sensor_data');
    node.createSubscription(IMAGE_TYPE, imageTopic, { qos, isRaw: true }, (message) => {
      const bytes = accept(imageTopic, message, true);
      if (!bytes) return;
      if (pool) emitLater(imageTopic, decoder.imageAsync(imageTopic, bytes, (view) => pool.convert(view, limits, imageTopic), isDecodeSkipped));
      else emitFrame(decoder.image(imageTopic, bytes));
    });
  }

  const compressedTopic = opts.compressedTopic ?? '';
  if (compressedTopic !== '') {
    const qos = qosProfile(rcl, opts.compressedQos ?? 'sensor_data');
    node.createSubscription(COMPRESSED_IMAGE_TYPE, compressedTopic, { qos, isRaw: true }, (message) => {
      const bytes = accept(compressedTopic, message, true);
      if (!bytes) return;
      if (pool) emitLater(compressedTopic, decoder.compressedAsync(compressedTopic, bytes, (data) => pool.decode(data, { key: compressedTopic }), isDecodeSkipped));
      else emitFrame(decoder.compressed(compressedTopic, bytes));
    });
  }

  const promptTopic = opts.promptTopic ?? '~/prompt';
  if (promptTopic !== '') {
    const qos = qosProfile(rcl, opts.promptQos ?? 'reliable');
    node.createSubscription(STRING_TYPE, promptTopic, { qos, isRaw: true }, (message) => {
      const bytes = accept(promptTopic, message, false);
      if (!bytes) return;
      const result = decoder.prompt(promptTopic, bytes);
      if (result.ok) {
        counts.prompts++;
        prompts$.next(result.value);
      } else {
        dropped(result.drop);
      }
    });
  }

  return {
    frames$: frames$.asObservable(),
    prompts$: prompts$.asObservable(),
    drops$: drops$.asObservable(),
    counts: () => counts.snapshot(),
    close: () => {
      if (closed) return;
      closed = true;
      frames$.complete();
      prompts$.complete();
      drops$.complete();
    },
  };
}
