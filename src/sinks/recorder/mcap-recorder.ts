/**
 * `--record FILE.mcap`: writes captions, memory events and diagnostics as a rosbag2-compatible MCAP
 * file (profile "ros2"; channels with messageEncoding "cdr" and a "ros2msg" schema holding the full
 * definition text with its dependencies), so `ros2 bag info|play FILE.mcap` and Foxglove read it.
 * The message bytes are those the ROS 2 sink publishes (src/ros2/messages.ts).
 *
 * Chunks are small (16 KiB, zstd) so a crash loses at most the last few seconds; the summary and
 * indexes are written on close. McapWriter calls must not overlap, so every write goes through one
 * promise queue; the sink methods return at once.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { McapWriter } from '@mcap/core';
import { FileHandleWritable } from '@mcap/nodejs';
import type { PipelineEvent } from '../../pipeline/events.js';
import { ros2msgSchema } from '../../ros2/definitions.js';
import {
  CAPTION_TOKEN_TYPE,
  CAPTION_TYPE,
  DIAGNOSTIC_ARRAY_TYPE,
  MEMORY_EVENT_TYPE,
  STRING_TYPE,
  encodeCaption,
  encodeCaptionToken,
  encodeDiagnostics,
  encodeMemoryEvent,
  encodeString,
  wallClockNs,
  type DiagnosticStatusInput,
  type MemoryEventInput,
} from '../../ros2/messages.js';
import type { Caption, CaptionToken } from '../../types.js';

export interface McapRecorderTopics {
  /** Default `/bitmar_node/caption`. */
  readonly caption?: string;
  /** Streamed tokens; default '' (off: one message per token is mostly noise in a recording). */
  readonly partial?: string;
  /** std_msgs/String mirror of final captions; default '' (off). */
  readonly text?: string;
  /** Default `/bitmar_node/memory/events`. */
  readonly memoryEvents?: string;
  /** Default `/diagnostics`. */
  readonly diagnostics?: string;
}

export interface McapRecorderOptions {
  readonly path: string;
  /** Chunk compression. Default zstd (@foxglove/wasm-zstd, installed with @mcap/support). */
  readonly compression?: 'zstd' | 'none';
  readonly topics?: McapRecorderTopics;
  /** Uncompressed chunk size before it is written out. Default 16 KiB. */
  readonly chunkBytes?: number;
  /** Log time of each record, ns since the epoch. Default: wall clock. */
  readonly clockNs?: () => bigint;
}

export interface McapRecorder {
  captionToken(token: CaptionToken): void;
  caption(caption: Caption): void;
  memoryEvent(event: MemoryEventInput): void;
  diagnostics(statuses: readonly DiagnosticStatusInput[]): void;
  /** Dispatches a pipeline event to the methods above. */
  observe(event: PipelineEvent): void;
  /** Messages written so far. */
  count(): number;
  /** Resolves once every message given so far has been handed to the writer. */
  drain(): Promise<void>;
  /** Writes the summary and closes the file. Idempotent. Rejects on a write error. */
  close(): Promise<void>;
}

type ChunkCompressor = (chunk: Uint8Array) => { compression: string; compressedData: Uint8Array };

/** zstd through @foxglove/wasm-zstd (a dependency of @mcap/support), loaded by path. */
async function loadZstd(): Promise<ChunkCompressor> {
  const specifier = '@foxglove/wasm-zstd';
  const mod: unknown = await import(specifier);
  const m = (typeof mod === 'object' && mod !== null ? mod : {}) as Record<string, unknown>;
  const lib = (typeof m.compress === 'function' ? m : (m.default ?? {})) as Record<string, unknown>;
  const compress = lib.compress;
  if (typeof compress !== 'function') throw new Error(`${specifier} has no compress(); record with compression 'none'`);
  await lib.isLoaded;
  return (chunk) => {
    const out: unknown = compress(chunk, 3);
    if (!(out instanceof Uint8Array)) throw new Error('zstd compress returned no bytes');
    return { compression: 'zstd', compressedData: out };
  };
}

/**
 * Opens (truncates) `path` and starts the MCAP file. Rejects with the file system error when the
 * file cannot be created, or when zstd is asked for and unavailable.
 */
export async function createMcapRecorder(opts: McapRecorderOptions): Promise<McapRecorder> {
  const compressChunk = (opts.compression ?? 'zstd') === 'zstd' ? await loadZstd() : undefined;
  const clockNs = opts.clockNs ?? wallClockNs;
  const t = opts.topics ?? {};
  const topics = {
    caption: t.caption ?? '/bitmar_node/caption',
    partial: t.partial ?? '',
    text: t.text ?? '',
    memoryEvents: t.memoryEvents ?? '/bitmar_node/memory/events',
    diagnostics: t.diagnostics ?? '/diagnostics',
  };
  const handle: FileHandle = await open(opts.path, 'w');
  const writer = new McapWriter({
    writable: new FileHandleWritable(handle),
    chunkSize: opts.chunkBytes ?? 16 * 1024,
    compressChunk,
  });
  const utf8 = new TextEncoder();
  const schemaIds = new Map<string, number>();
  const channels = new Map<string, { id: number; sequence: number }>();
  let written = 0;
  let failure: unknown;
  let queue: Promise<void> = writer.start({ profile: 'ros2', library: 'bitmar-node' }).catch((e: unknown) => {
    failure = e;
  });
  let closing: Promise<void> | undefined;

  const channelFor = async (topic: string, type: string): Promise<{ id: number; sequence: number }> => {
    let ch = channels.get(topic);
    if (ch) return ch;
    let schemaId = schemaIds.get(type);
    if (schemaId === undefined) {
      schemaId = await writer.registerSchema({ name: type, encoding: 'ros2msg', data: utf8.encode(ros2msgSchema(type)) });
      schemaIds.set(type, schemaId);
    }
    // rosbag2 reads offered_qos_profiles per channel; empty = the player's default QoS (the
    // YAML layout differs between Humble and Jazzy, and an empty string is valid for both).
    const id = await writer.registerChannel({ topic, messageEncoding: 'cdr', schemaId, metadata: new Map([['offered_qos_profiles', '']]) });
    ch = { id, sequence: 0 };
    channels.set(topic, ch);
    return ch;
  };

  const write = (topic: string, type: string, encode: (logTimeNs: bigint) => Uint8Array): void => {
    if (topic === '' || closing || failure !== undefined) return;
    const logTime = clockNs();
    let data: Uint8Array;
    try {
      data = encode(logTime);
    } catch (e) {
      failure = e;
      return;
    }
    queue = queue.then(async () => {
      if (failure !== undefined) return;
      try {
        const ch = await channelFor(topic, type);
        await writer.addMessage({ channelId: ch.id, sequence: ch.sequence++, logTime, publishTime: logTime, data });
        written++;
      } catch (e) {
        failure = e;
      }
    });
  };

  const recorder: McapRecorder = {
    captionToken: (tok) => write(topics.partial, CAPTION_TOKEN_TYPE, () => encodeCaptionToken(tok)),
    caption: (c) => {
      write(topics.caption, CAPTION_TYPE, () => encodeCaption(c));
      if (c.isFinal) write(topics.text, STRING_TYPE, () => encodeString(c.text));
    },
    memoryEvent: (e) => write(topics.memoryEvents, MEMORY_EVENT_TYPE, (now) => encodeMemoryEvent(now, e)),
    diagnostics: (statuses) => write(topics.diagnostics, DIAGNOSTIC_ARRAY_TYPE, (now) => encodeDiagnostics(now, statuses)),
    observe: (ev) => {
      if (ev.type === 'token') recorder.captionToken(ev.token);
      else if (ev.type === 'caption') recorder.caption(ev.caption);
      else if (ev.type === 'memory') recorder.memoryEvent(ev.memory);
    },
    count: () => written,
    drain: () => queue,
    close: () => {
      closing ??= (async () => {
        try {
          await queue;
          await writer.end();
        } finally {
          await handle.close();
        }
        if (failure !== undefined) throw failure;
      })();
      return closing;
    },
  };
  return recorder;
}
