/**
 * `--source bag:FILE.mcap`: replays a rosbag2 MCAP file (ros2 profile: CDR messages, ros2msg
 * schemas; chunks uncompressed, zstd or lz4 through @mcap/support) into the same streams as the live
 * ROS 2 source: sensor_msgs/msg/Image and CompressedImage channels → frames, std_msgs/msg/String →
 * prompts. No ROS 2 needed.
 *
 * Pacing: by log time at `rate` (1 = as recorded, 2 = twice as fast), or as fast as possible
 * (rate 0, yielding to the event loop between messages so timers and the pipeline still run).
 *
 * Decoding: with a `decodePool` (what `run` passes), JPEG/PNG decoding and the per-pixel
 * conversions (bgr8, mono, 16-bit, YUV) run in its worker thread, as for the live ROS 2 source, so
 * a 720p JPEG does not block the event loop; tight rgb8 is a single copy and stays here. Unlike a
 * live source a replay keeps every frame, in order: each message is paced, then submitted, and the
 * next one is read only once its pixels are back (no sampling before decoding, no latest-wins). A
 * job the pool lets go anyway (busy with other sources: `queue_full`, `superseded`; closed:
 * `cancelled`) is counted as a drop with the pool's reason. Without a pool, images are decoded here,
 * on the event loop. Prompts are always decoded here.
 *
 * The file is streamed (McapStreamReader, 1 MiB reads), so memory stays flat and a bag cut short
 * by a crash still plays up to its last complete chunk. Bad input is counted and skipped:
 * channels with an unknown schema or encoding (`unknown_topic`), undecodable images and prompts
 * (see src/ros2/inputs.ts), chunks that fail to decompress (skipped whole), and a truncated end.
 * A corrupt record the reader cannot step over ends the replay early, reported in `done`.
 */
import { open } from 'node:fs/promises';
import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core';
import { FileHandleReadable } from '@mcap/nodejs';
import { loadDecompressHandlers } from '@mcap/support';
import { Observable, Subject } from 'rxjs';
import { BitmarError } from '../../errors.js';
import { longTypeName } from '../../ros2/definitions.js';
import { DEFAULT_IMAGE_LIMITS, type CompressedDecoder, type ImageLimits } from '../../ros2/image-decode.js';
import { createInputDecoder, InputCounts, SYSTEM_CLOCK, type InputResult, type SourceClock } from '../../ros2/inputs.js';
import { COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, STRING_TYPE } from '../../ros2/messages.js';
import type { DropEvent, Frame, Prompt } from '../../types.js';
import { isDecodeSkipped, type DecodePool } from '../image/decode-pool.js';

export interface BagSourceOptions {
  /** Path of the .mcap file. */
  readonly path: string;
  /** 1 = log time (default), 2 = twice as fast, 0 = as fast as possible. */
  readonly rate?: number;
  /** Only these image topics (Image or CompressedImage); default: every image channel. */
  readonly imageTopics?: readonly string[];
  /** Only these prompt topics; default: every std_msgs/msg/String channel. */
  readonly promptTopics?: readonly string[];
  readonly limits?: ImageLimits;
  /** JPEG/PNG decoder; default: src/sources/image/decode.ts `decodeImage`. Not used with `decodePool`. */
  readonly decodeCompressed?: CompressedDecoder;
  /** Decode JPEG/PNG and convert raw encodings in this pool's worker (see the file comment). Default: on the event loop. */
  readonly decodePool?: DecodePool;
  readonly maxPromptLength?: number;
  readonly clock?: SourceClock;
  /** Waits for pacing; default setTimeout. Tests pass a virtual one. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** File read size. Default 1 MiB. */
  readonly readBytes?: number;
}

/** What a replay did, once it is over. */
export interface BagReport {
  readonly path: string;
  /** Messages read (all channels). */
  readonly messages: number;
  readonly frames: number;
  readonly prompts: number;
  readonly drops: ReturnType<InputCounts['snapshot']>['drops'];
  /** The file ended inside a record (a recording cut short). */
  readonly truncated: boolean;
  /** Chunks skipped because they could not be decompressed. */
  readonly skippedChunks: number;
  /** Set when reading stopped early, e.g. a corrupt record. */
  readonly error?: string;
  /** From the summary section when the file has one. */
  readonly summary?: { readonly messageCount: bigint; readonly channels: number; readonly startNs: bigint; readonly endNs: bigint };
}

export interface BagSource {
  /** Hot; replay starts once frames$ has a subscriber (on the next macrotask). Completes at the end. */
  readonly frames$: Observable<Frame>;
  readonly prompts$: Observable<Prompt>;
  readonly drops$: Observable<DropEvent>;
  /** Resolves when the replay is over (never rejects). */
  readonly done: Promise<BagReport>;
  /** Stops the replay early. */
  close(): void;
}

type ChannelKind = 'image' | 'compressed' | 'prompt' | 'skip' | 'unknown';

const STAGE = 'bag-source';

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Creates the source; nothing is read until frames$ is subscribed. */
export function createBagSource(opts: BagSourceOptions): BagSource {
  const rate = opts.rate ?? 1;
  if (!(rate >= 0 && Number.isFinite(rate))) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `bag rate ${rate} must be ≥ 0 (0 = as fast as possible)`);
  const clock = opts.clock ?? SYSTEM_CLOCK;
  const sleep = opts.sleep ?? realSleep;
  const frames = new Subject<Frame>();
  const prompts = new Subject<Prompt>();
  const drops = new Subject<DropEvent>();
  const counts = new InputCounts();
  const decoder = createInputDecoder({
    stage: STAGE,
    limits: opts.limits,
    decodeCompressed: opts.decodeCompressed,
    maxPromptLength: opts.maxPromptLength,
    clock,
  });
  const pool = opts.decodePool;
  const limits = opts.limits ?? DEFAULT_IMAGE_LIMITS;
  let started = false;
  let stopped = false;
  // Resolves on close(), so that a replay waiting for the pool ends at once.
  let onClose!: () => void;
  const closing = new Promise<undefined>((resolve) => (onClose = () => resolve(undefined)));
  let resolveDone!: (r: BagReport) => void;
  const done = new Promise<BagReport>((resolve) => (resolveDone = resolve));

  const dropped = (d: DropEvent): void => {
    counts.drop(d.reason);
    drops.next(d);
  };
  const emit = <T>(result: InputResult<T>, subject: Subject<T>, kind: 'frames' | 'prompts'): void => {
    if (result.ok) {
      counts[kind]++;
      subject.next(result.value);
    } else {
      dropped(result.drop);
    }
  };

  const run = async (): Promise<void> => {
    let report: Omit<BagReport, 'frames' | 'prompts' | 'drops'>;
    try {
      report = await replay();
    } catch (e) {
      const detail = `${opts.path}: BITMAR_ERR_BAG_READ: ${(e as Error)?.message ?? String(e)}`;
      dropped({ stage: STAGE, reason: 'decode_error', detail });
      report = { path: opts.path, messages: 0, truncated: false, skippedChunks: 0, error: detail };
    }
    const { frames: f, prompts: p, drops: d } = counts.snapshot();
    frames.complete();
    prompts.complete();
    drops.complete();
    resolveDone({ ...report, frames: f, prompts: p, drops: d });
  };

  const replay = async (): Promise<Omit<BagReport, 'frames' | 'prompts' | 'drops'>> => {
    const summary = await readSummary(opts.path);
    const handlers = await loadDecompressHandlers();
    let skippedChunks = 0;
    // A chunk that fails to decompress is skipped whole: returning no bytes makes the reader see
    // an empty chunk (CRCs are not validated, so an empty chunk is accepted).
    const tolerant: McapTypes.DecompressHandlers = {};
    for (const [name, handler] of Object.entries(handlers)) {
      tolerant[name] = (buffer, size) => {
        try {
          const out = handler(buffer, size);
          if (BigInt(out.byteLength) !== size) throw new Error(`${out.byteLength} bytes instead of ${size}`);
          return out;
        } catch (e) {
          skippedChunks++;
          dropped({ stage: STAGE, reason: 'decode_error', detail: `${opts.path}: BITMAR_ERR_BAG_READ: ${name} chunk skipped (${(e as Error)?.message ?? String(e)})` });
          return new Uint8Array(0);
        }
      };
    }
    const reader = new McapStreamReader({ decompressHandlers: tolerant, validateCrcs: false });
    const schemas = new Map<number, McapTypes.Schema>();
    const channels = new Map<number, { topic: string; kind: ChannelKind; why: string }>();
    let messages = 0;
    let firstLogTime: bigint | undefined;
    let startMs = 0;
    let error: string | undefined;

    const pace = async (logTime: bigint): Promise<void> => {
      if (firstLogTime === undefined) {
        firstLogTime = logTime;
        startMs = clock.nowMs();
        return;
      }
      if (rate === 0) return nextMacrotask();
      const targetMs = startMs + Number(logTime - firstLogTime) / 1e6 / rate;
      const waitMs = targetMs - clock.nowMs();
      if (waitMs > 0) await sleep(waitMs);
    };

    const onMessage = async (m: McapTypes.Message): Promise<void> => {
      messages++;
      const ch = channels.get(m.channelId);
      if (!ch || ch.kind === 'skip') return;
      if (ch.kind === 'unknown') {
        dropped({ stage: STAGE, reason: 'unknown_topic', detail: `${opts.path}: ${ch.topic}: ${ch.why}` });
        return;
      }
      await pace(m.logTime);
      if (stopped) return;
      const at = { receivedMs: clock.nowMs(), stampNs: m.logTime };
      if (ch.kind === 'prompt') emit(decoder.prompt(ch.topic, m.data, at), prompts, 'prompts');
      else if (pool) await decodeInPool(ch.topic, ch.kind, m.data, at);
      else if (ch.kind === 'image') emit(decoder.image(ch.topic, m.data, at), frames, 'frames');
      else emit(decoder.compressed(ch.topic, m.data, at), frames, 'frames');
    };

    /** One image through the pool, awaited (a replay keeps every frame and their order). */
    const decodeInPool = async (topic: string, kind: 'image' | 'compressed', data: Uint8Array, at: { receivedMs: number; stampNs: bigint }): Promise<void> => {
      const key = `bag:${topic}`; // not a live source's key: its newer image must not replace ours
      const work =
        kind === 'image'
          ? decoder.imageAsync(topic, data, (view) => pool!.convert(view, limits, key), isDecodeSkipped, at)
          : decoder.compressedAsync(topic, data, (bytes) => pool!.decode(bytes, { key }), isDecodeSkipped, at);
      try {
        const result = await Promise.race([work, closing]);
        if (result === undefined || stopped) return;
        emit(result, frames, 'frames');
      } catch (e) {
        if (stopped) return;
        if (isDecodeSkipped(e)) dropped({ stage: STAGE, reason: e.reason, detail: `${topic}: ${e.message}` });
        else dropped({ stage: STAGE, reason: 'decode_error', detail: `${topic}: ${(e as Error)?.message ?? String(e)}` });
      } finally {
        work.catch(() => undefined); // settles after close(): nothing to report
      }
    };

    const file = await open(opts.path, 'r');
    try {
      const buf = new Uint8Array(opts.readBytes ?? 1 << 20);
      let ended = false;
      while (!stopped && !reader.done()) {
        const { bytesRead } = await file.read(buf, 0, buf.byteLength, null);
        if (bytesRead === 0) {
          ended = true;
          break;
        }
        reader.append(buf.subarray(0, bytesRead));
        try {
          for (let rec = reader.nextRecord(); rec && !stopped; rec = reader.nextRecord()) {
            if (rec.type === 'Schema') schemas.set(rec.id, rec);
            else if (rec.type === 'Channel') channels.set(rec.id, classify(rec, schemas.get(rec.schemaId), opts));
            else if (rec.type === 'Message') await onMessage(rec);
          }
        } catch (e) {
          error = `${opts.path}: BITMAR_ERR_BAG_READ: ${(e as Error)?.message ?? String(e)} (after ${messages} messages; the rest of the file is skipped)`;
          dropped({ stage: STAGE, reason: 'decode_error', detail: error });
          break;
        }
      }
      const truncated = ended && !reader.done();
      if (truncated) {
        dropped({
          stage: STAGE,
          reason: 'decode_error',
          detail: `${opts.path}: BITMAR_ERR_BAG_READ: the file ends inside a record (${reader.bytesRemaining()} bytes left over): the recording was cut short`,
        });
      }
      return { path: opts.path, messages, truncated, skippedChunks, error, summary };
    } finally {
      await file.close();
    }
  };

  const frames$ = new Observable<Frame>((subscriber) => {
    const sub = frames.subscribe(subscriber);
    if (!started) {
      started = true;
      setImmediate(() => void run());
    }
    return sub;
  });

  return {
    frames$,
    prompts$: prompts.asObservable(),
    drops$: drops.asObservable(),
    done,
    close: () => {
      stopped = true;
      onClose();
      if (!started) {
        started = true;
        void run();
      }
    },
  };
}

/** What to do with a channel's messages. */
function classify(
  ch: McapTypes.Channel,
  schema: McapTypes.Schema | undefined,
  opts: Pick<BagSourceOptions, 'imageTopics' | 'promptTopics'>,
): { topic: string; kind: ChannelKind; why: string } {
  const topic = ch.topic;
  if (ch.messageEncoding !== 'cdr') return { topic, kind: 'unknown', why: `message encoding '${ch.messageEncoding}' is not cdr` };
  if (!schema) return { topic, kind: 'unknown', why: `no schema (id ${ch.schemaId})` };
  if (schema.encoding !== 'ros2msg') return { topic, kind: 'unknown', why: `schema encoding '${schema.encoding}' is not ros2msg` };
  const type = longTypeName(schema.name);
  const wanted = (list: readonly string[] | undefined): boolean => list === undefined || list.includes(topic);
  if (type === IMAGE_TYPE) return { topic, kind: wanted(opts.imageTopics) ? 'image' : 'skip', why: '' };
  if (type === COMPRESSED_IMAGE_TYPE) return { topic, kind: wanted(opts.imageTopics) ? 'compressed' : 'skip', why: '' };
  if (type === STRING_TYPE) return { topic, kind: wanted(opts.promptTopics) ? 'prompt' : 'skip', why: '' };
  return { topic, kind: 'unknown', why: `schema ${schema.name} is not an input type (Image, CompressedImage, String)` };
}

/** The summary section (message count, time range), when the file is complete and indexed. */
async function readSummary(path: string): Promise<BagReport['summary']> {
  const handle = await open(path, 'r');
  try {
    const reader = await McapIndexedReader.Initialize({ readable: new FileHandleReadable(handle) });
    const stats = reader.statistics;
    if (!stats) return undefined;
    return { messageCount: stats.messageCount, channels: reader.channelsById.size, startNs: stats.messageStartTime, endNs: stats.messageEndTime };
  } catch {
    return undefined; // no footer or summary: a truncated bag, streamed all the same
  } finally {
    await handle.close();
  }
}
