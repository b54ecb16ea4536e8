/** Types that cross stages: sources → pipeline → model → memory → sinks. */

/** A decoded camera frame: tightly packed RGB8 (stride = width·3). */
export interface Frame {
  /** Monotonic id assigned by the source, unique within a run. */
  readonly id: number;
  /** Where it came from: a ROS topic, an MQTT topic/device, `synthetic`, or a bag channel. */
  readonly source: string;
  /** Capture time (ROS header stamp or arrival time), nanoseconds since the epoch. */
  readonly stampNs: bigint;
  /** ROS header frame_id when there is one. */
  readonly frameId: string;
  /** Arrival in this process, `performance.now()` milliseconds. */
  readonly receivedMs: number;
  readonly width: number;
  readonly height: number;
  /** RGB8, length width·height·3. */
  readonly data: Uint8Array;
  /** Ground truth, known only for synthetic frames (used by eval and tests). */
  readonly truth?: { readonly caption: string };
  /** Where to send the reply for request/response sources (MQTT response topic etc.). */
  readonly replyTo?: ReplyTarget;
}

export interface ReplyTarget {
  readonly kind: 'mqtt';
  readonly topic: string;
  readonly correlationData?: Buffer;
}

/** A text prompt that selects the task (shapes-world.md: Prompts and answers). */
export interface Prompt {
  readonly text: string;
  readonly source: string;
  readonly receivedMs: number;
}

/** Latencies of one caption, milliseconds. */
export interface CaptionLatency {
  readonly encodeMs: number;
  readonly frameToFirstTokenMs: number;
  readonly frameToCaptionMs: number;
  readonly decodeMs: number;
}

/** One streamed token (partial caption). */
export interface CaptionToken {
  readonly seq: number;
  readonly index: number;
  readonly tokenId: number;
  readonly piece: string;
  /** Text so far, pieces joined. */
  readonly text: string;
  readonly frame: FrameRef;
}

/** What a caption says about its source frame (enough for a ROS header or an MQTT payload). */
export interface FrameRef {
  readonly id: number;
  readonly source: string;
  readonly stampNs: bigint;
  readonly frameId: string;
  readonly replyTo?: ReplyTarget;
  /** Ground truth of a synthetic frame (the terminal marks captions right or wrong with it). */
  readonly truth?: { readonly caption: string };
}

/** A final (or cancelled) caption. */
export interface Caption {
  readonly seq: number;
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly prompt: string;
  readonly frame: FrameRef;
  /** Ids of every frame of the batch this caption was made from. */
  readonly batchFrameIds: readonly number[];
  readonly isFinal: boolean;
  readonly cancelled: boolean;
  readonly latency: CaptionLatency;
  readonly model: string;
  /** Memory slot the batch's episode went to, when memory is on. */
  readonly episodeSlot?: number;
}

/** Why an input was dropped; counted per stage in the metrics. */
export type DropReason =
  | 'decode_error'
  | 'invalid_input'
  | 'too_large'
  | 'sampled_out'
  | 'queue_full'
  | 'stale'
  | 'superseded'
  | 'cancelled'
  | 'rate_limited'
  | 'unknown_topic';

export interface DropEvent {
  readonly stage: string;
  readonly reason: DropReason;
  readonly detail?: string;
}
