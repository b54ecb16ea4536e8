/**
 * Serialized ROS 2 inputs → the pipeline's types, shared by the live ROS 2 source and the MCAP bag
 * source: sensor_msgs/Image and CompressedImage CDR → Frame, std_msgs/String CDR → Prompt, and
 * anything that cannot be used → a DropEvent with a reason and an error code. Never throws: bad
 * input is an event (code-style.md, "Errors").
 */
import { decodeImage } from '../sources/image/decode.js';
import type { DropEvent, DropReason, Frame, Prompt } from '../types.js';
import { decodeMessage } from './cdr.js';
import {
  DEFAULT_IMAGE_LIMITS,
  decodeCompressedImageMessage,
  decodeCompressedImageMessageAsync,
  decodeImageMessage,
  decodeImageMessageAsync,
  type AsyncCompressedDecoder,
  type AsyncRawConverter,
  type CompressedDecoder,
  type ImageLimits,
  type ImageResult,
} from './image-decode.js';
import { STRING_TYPE } from './messages.js';

/** Time as sources read it: arrival (performance.now ms) and wall clock (ns since the epoch). */
export interface SourceClock {
  nowMs(): number;
  epochNs(): bigint;
}

export const SYSTEM_CLOCK: SourceClock = {
  nowMs: () => performance.now(),
  epochNs: () => BigInt(Date.now()) * 1_000_000n,
};

export interface InputDecoderOptions {
  /** Stage name in DropEvents, e.g. `ros2-source`. */
  readonly stage: string;
  readonly limits?: ImageLimits;
  /** JPEG/PNG decoder; default: `decodeImage` of src/sources/image/decode.ts. */
  readonly decodeCompressed?: CompressedDecoder;
  /** Longest prompt in characters; longer ones are dropped. Default 1024. */
  readonly maxPromptLength?: number;
  readonly clock?: SourceClock;
  /** Id of the first frame. Default 1. */
  readonly firstFrameId?: number;
}

export type InputResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly drop: DropEvent };

/** When an input arrived. */
export interface Arrival {
  /** performance.now() ms; default: the clock's now. */
  readonly receivedMs?: number;
  /** Stamp for a frame whose header stamp is zero (a bag's log time); default: the wall clock. */
  readonly stampNs?: bigint;
}

export interface InputDecoder {
  /** sensor_msgs/msg/Image CDR from `source` (topic or bag channel). */
  image(source: string, bytes: Uint8Array, at?: Arrival): InputResult<Frame>;
  /** sensor_msgs/msg/CompressedImage CDR. */
  compressed(source: string, bytes: Uint8Array, at?: Arrival): InputResult<Frame>;
  /**
   * `image` and `compressed` with the pixel work done elsewhere (src/sources/image/decode-pool.ts):
   * the CDR is read and checked now, the result and every refusal are the same, and the frame gets
   * its id when it is ready. Rejects only for errors `isSkip` marks (the pool dropped the job).
   */
  imageAsync(source: string, bytes: Uint8Array, convert: AsyncRawConverter, isSkip: (e: unknown) => boolean, at?: Arrival): Promise<InputResult<Frame>>;
  compressedAsync(source: string, bytes: Uint8Array, decode: AsyncCompressedDecoder, isSkip: (e: unknown) => boolean, at?: Arrival): Promise<InputResult<Frame>>;
  /** std_msgs/msg/String CDR. */
  prompt(source: string, bytes: Uint8Array, at?: Arrival): InputResult<Prompt>;
}

/** The shared JPEG/PNG decoder (src/sources/image/decode.ts), as a CompressedDecoder. */
export const defaultCompressedDecoder: CompressedDecoder = (bytes) => decodeImage(bytes);

function drop(stage: string, reason: DropReason, detail: string): { ok: false; drop: DropEvent } {
  return { ok: false, drop: { stage, reason, detail } };
}

/** Creates the decoder; frame ids count up from `firstFrameId` across every image kind. */
export function createInputDecoder(opts: InputDecoderOptions): InputDecoder {
  const limits = opts.limits ?? DEFAULT_IMAGE_LIMITS;
  const clock = opts.clock ?? SYSTEM_CLOCK;
  const maxPromptLength = opts.maxPromptLength ?? 1024;
  let nextId = opts.firstFrameId ?? 1;

  const toFrame = (source: string, result: ImageResult, at: Arrival): InputResult<Frame> => {
    if (!result.ok) return drop(opts.stage, result.reason, `${source}: ${result.detail}`);
    const { image } = result;
    return {
      ok: true,
      value: {
        id: nextId++,
        source,
        // Header stamp when the publisher set one, else arrival (types.ts Frame.stampNs).
        stampNs: image.stampNs > 0n ? image.stampNs : (at.stampNs ?? clock.epochNs()),
        frameId: image.frameId,
        receivedMs: at.receivedMs ?? clock.nowMs(),
        width: image.width,
        height: image.height,
        data: image.data,
      },
    };
  };

  return {
    image: (source, bytes, at = {}) => toFrame(source, decodeImageMessage(bytes, limits), at),

    compressed: (source, bytes, at = {}) =>
      toFrame(source, decodeCompressedImageMessage(bytes, opts.decodeCompressed ?? defaultCompressedDecoder, limits), at),

    imageAsync: async (source, bytes, convert, isSkip, at = {}) => toFrame(source, await decodeImageMessageAsync(bytes, convert, limits, isSkip), at),

    compressedAsync: async (source, bytes, decode, isSkip, at = {}) => toFrame(source, await decodeCompressedImageMessageAsync(bytes, decode, limits, isSkip), at),

    prompt: (source, bytes, at = {}) => {
      let text: string;
      try {
        text = decodeMessage<{ data: string }>(STRING_TYPE, bytes).data;
      } catch (e) {
        return drop(opts.stage, 'decode_error', `${source}: ${(e as Error).message}`);
      }
      if (text.includes('\uFFFD')) return drop(opts.stage, 'invalid_input', `${source}: BITMAR_ERR_PROMPT_INVALID: prompt is not valid UTF-8`);
      if (text.length > maxPromptLength) {
        return drop(opts.stage, 'invalid_input', `${source}: BITMAR_ERR_PROMPT_INVALID: prompt of ${text.length} characters exceeds ${maxPromptLength}`);
      }
      return { ok: true, value: { text: text.trim(), source, receivedMs: at.receivedMs ?? clock.nowMs() } };
    },
  };
}

/** Counts per outcome, for diagnostics and reports. */
export class InputCounts {
  frames = 0;
  prompts = 0;
  readonly drops = new Map<DropReason, number>();

  drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  /** `{frames, prompts, drops: {reason: n}}`, a copy. */
  snapshot(): { frames: number; prompts: number; drops: Partial<Record<DropReason, number>> } {
    return { frames: this.frames, prompts: this.prompts, drops: Object.fromEntries(this.drops) };
  }
}
