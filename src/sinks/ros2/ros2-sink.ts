/**
 * Live ROS 2 output on the shared node:
 *   ~/caption          bitmar_msgs/msg/Caption       final (and cancelled) captions
 *   ~/caption/partial  bitmar_msgs/msg/CaptionToken  each streamed token
 *   ~/caption/text     std_msgs/msg/String           caption text only, for simple consumers
 *   /diagnostics       diagnostic_msgs/msg/DiagnosticArray
 *   ~/memory/events    bitmar_msgs/msg/MemoryEvent
 * services ~/memory/query|reset|export (bitmar_msgs/srv/Memory*) and the action ~/describe
 * (bitmar_msgs/action/Describe: tokens as feedback, cancellable).
 *
 * Messages are published as CDR bytes from src/ros2/messages.ts (rclnodejs publishes a Buffer as a
 * serialized message), the same bytes the MCAP recorder writes. Publishers use reliable keep-last
 * 10, which reliable and best-effort subscribers both accept.
 */
import type { PipelineEvent } from '../../pipeline/events.js';
import { timeFromNs } from '../../ros2/cdr.js';
import {
  CAPTION_TOKEN_TYPE,
  CAPTION_TYPE,
  DIAGNOSTIC_ARRAY_TYPE,
  MEMORY_EVENT_TYPE,
  STRING_TYPE,
  captionMessage,
  encodeCaption,
  encodeCaptionToken,
  encodeDiagnostics,
  encodeMemoryEvent,
  encodeString,
  wallClockNs,
  type DiagnosticStatusInput,
  type MemoryEventInput,
} from '../../ros2/messages.js';
import { qosProfile } from '../../ros2/qos.js';
import type { RclActionTypeClass, RclPublisher, RclServerGoalHandle } from '../../ros2/rclnodejs-api.js';
import type { Ros2Transport } from '../../ros2/transport.js';
import type { Caption, CaptionToken } from '../../types.js';

/** One episode as a memory query returns it. */
export interface MemoryEpisode {
  readonly slot: number;
  readonly caption: string;
  /** Stamp of the episode's source frame, ns since the epoch. */
  readonly stampNs: bigint;
  /** Cosine similarity to the query, -1..1. */
  readonly score: number;
  readonly hits: number;
}

/** What the memory services call; the node's memory store implements them. */
export interface Ros2MemoryHandlers {
  query(text: string, topK: number): Promise<readonly MemoryEpisode[]> | readonly MemoryEpisode[];
  /** Returns how many episodes were forgotten. */
  reset(): Promise<number> | number;
  /** '' = a default path; returns the file written and the episode count. */
  export(path: string): Promise<{ path: string; count: number }> | { path: string; count: number };
}

export interface DescribeRequest {
  /** '' = the node's current prompt. */
  readonly prompt: string;
  /** 0 = the node's default cap. */
  readonly maxTokens: number;
}

/**
 * Captions the newest frame now, calling `onToken` per token; must stop soon after `signal`
 * aborts and then resolve with the caption so far (`cancelled: true`).
 */
export type DescribeHandler = (request: DescribeRequest, onToken: (token: CaptionToken) => void, signal: AbortSignal) => Promise<Caption>;

export interface Ros2SinkOptions {
  readonly transport: Ros2Transport;
  /** Default `~/caption`. */
  readonly captionTopic?: string;
  /** Default `~/caption/partial`; '' = off. */
  readonly partialTopic?: string;
  /** Default `~/caption/text`; '' = off. */
  readonly textTopic?: string;
  /** Default `/diagnostics`. */
  readonly diagnosticsTopic?: string;
  /** Default `~/memory/events`; '' = off. */
  readonly memoryEventsTopic?: string;
  /** Memory services under `~/memory/`; none when absent. */
  readonly memory?: Ros2MemoryHandlers;
  /** The describe-now action `~/describe`; none when absent. */
  readonly describe?: DescribeHandler;
  /** Wall clock for stamps, ns since the epoch. */
  readonly clockNs?: () => bigint;
}

export interface Ros2Sink {
  captionToken(token: CaptionToken): void;
  caption(caption: Caption): void;
  diagnostics(statuses: readonly DiagnosticStatusInput[]): void;
  memoryEvent(event: MemoryEventInput): void;
  /** Dispatches a pipeline event to the methods above (drops are left to diagnostics). */
  observe(event: PipelineEvent): void;
  /** Stops publishing; the node destroys the entities when the transport closes. */
  close(): void;
}

const DESCRIBE_TYPE = 'bitmar_msgs/action/Describe';
const CANCEL_POLL_MS = 50;

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

function errorText(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/** Creates the publishers, services and action on `transport.node`. Throws what rclnodejs throws. */
export function createRos2Sink(opts: Ros2SinkOptions): Ros2Sink {
  const { transport } = opts;
  const { rcl, node } = transport;
  const clockNs = opts.clockNs ?? wallClockNs;
  let closed = false;

  // A fresh options object per entity: rclnodejs fills in defaults by mutating the one it gets.
  const publisher = (type: string, topic: string | undefined, fallback: string): RclPublisher | undefined => {
    const name = topic ?? fallback;
    return name === '' ? undefined : node.createPublisher(type, name, { qos: qosProfile(rcl, 'reliable') });
  };
  const captionPub = publisher(CAPTION_TYPE, opts.captionTopic, '~/caption');
  const partialPub = publisher(CAPTION_TOKEN_TYPE, opts.partialTopic, '~/caption/partial');
  const textPub = publisher(STRING_TYPE, opts.textTopic, '~/caption/text');
  const diagnosticsPub = publisher(DIAGNOSTIC_ARRAY_TYPE, opts.diagnosticsTopic, '/diagnostics');
  const memoryPub = publisher(MEMORY_EVENT_TYPE, opts.memoryEventsTopic, '~/memory/events');

  const send = (pub: RclPublisher | undefined, bytes: () => Uint8Array): void => {
    if (!pub || closed || !transport.isActive()) return;
    const cdr = bytes();
    pub.publish(Buffer.from(cdr.buffer, cdr.byteOffset, cdr.byteLength));
  };

  if (opts.memory) createMemoryServices(transport, opts.memory, (e) => send(memoryPub, () => encodeMemoryEvent(clockNs(), e)));
  if (opts.describe) createDescribeAction(transport, opts.describe);

  const sink: Ros2Sink = {
    captionToken: (t) => send(partialPub, () => encodeCaptionToken(t)),
    caption: (c) => {
      send(captionPub, () => encodeCaption(c));
      if (c.isFinal) send(textPub, () => encodeString(c.text));
    },
    diagnostics: (statuses) => send(diagnosticsPub, () => encodeDiagnostics(clockNs(), statuses)),
    memoryEvent: (e) => send(memoryPub, () => encodeMemoryEvent(clockNs(), e)),
    observe: (ev) => {
      if (ev.type === 'token') sink.captionToken(ev.token);
      else if (ev.type === 'caption') sink.caption(ev.caption);
      else if (ev.type === 'memory') sink.memoryEvent(ev.memory);
    },
    close: () => {
      closed = true;
    },
  };
  return sink;
}

/** ~/memory/query, ~/memory/reset, ~/memory/export: errors become `success: false` + message. */
function createMemoryServices(transport: Ros2Transport, memory: Ros2MemoryHandlers, onReset: (e: MemoryEventInput) => void): void {
  const { node, rcl } = transport;
  const options = (): { qos: string } => ({ qos: rcl.QoS.profileServicesDefault });
  node.createService('bitmar_msgs/srv/MemoryQuery', '~/memory/query', options(), async (request) => {
    const req = asRecord(request);
    const text = typeof req.text === 'string' ? req.text : '';
    const topK = typeof req.top_k === 'number' && req.top_k > 0 ? req.top_k : 5;
    try {
      const episodes = await memory.query(text, topK);
      return {
        success: true,
        message: '',
        episodes: episodes.map((e) => ({ slot: e.slot, caption: e.caption, stamp: timeFromNs(e.stampNs), score: e.score, hits: e.hits })),
      };
    } catch (e) {
      return { success: false, message: errorText(e), episodes: [] };
    }
  });
  node.createService('bitmar_msgs/srv/MemoryReset', '~/memory/reset', options(), async () => {
    try {
      const cleared = await memory.reset();
      onReset({ kind: 'reset', detail: `${cleared} episodes cleared by ~/memory/reset` });
      return { success: true, message: '', cleared };
    } catch (e) {
      return { success: false, message: errorText(e), cleared: 0 };
    }
  });
  node.createService('bitmar_msgs/srv/MemoryExport', '~/memory/export', options(), async (request) => {
    const req = asRecord(request);
    try {
      const out = await memory.export(typeof req.path === 'string' ? req.path : '');
      return { success: true, message: '', path: out.path, count: out.count };
    } catch (e) {
      return { success: false, message: errorText(e), path: '', count: 0 };
    }
  });
}

function isActionType(v: unknown): v is RclActionTypeClass {
  const r = asRecord(v);
  return typeof r.Goal === 'function' && typeof r.Feedback === 'function' && typeof r.Result === 'function';
}

/**
 * ~/describe: accepts every goal, streams each token as feedback, and accepts cancel requests —
 * the generation is aborted and the goal ends CANCELED with the caption so far as its result.
 */
function createDescribeAction(transport: Ros2Transport, describe: DescribeHandler): void {
  const { rcl, node } = transport;
  const actionType = rcl.require(DESCRIBE_TYPE);
  if (!isActionType(actionType)) throw new TypeError(`${DESCRIBE_TYPE} is not an action type`);
  const { Feedback, Result } = actionType;

  const execute = async (goal: RclServerGoalHandle): Promise<object> => {
    const req = asRecord(goal.request);
    const request: DescribeRequest = {
      prompt: typeof req.prompt === 'string' ? req.prompt : '',
      maxTokens: typeof req.max_tokens === 'number' ? req.max_tokens : 0,
    };
    const abort = new AbortController();
    const poll = setInterval(() => {
      if (goal.isCancelRequested) abort.abort();
    }, CANCEL_POLL_MS);
    try {
      const caption = await describe(
        request,
        (t) => {
          if (goal.isCancelRequested) abort.abort();
          else goal.publishFeedback(new Feedback({ index: t.index, token_id: t.tokenId, piece: t.piece, text: t.text }));
        },
        abort.signal,
      );
      if (abort.signal.aborted || goal.isCancelRequested) goal.canceled();
      else goal.succeed();
      return new Result({ caption: resultCaption(caption) });
    } catch (e) {
      transport.log(`describe goal failed: ${errorText(e)}`);
      goal.abort();
      return new Result({});
    } finally {
      clearInterval(poll);
    }
  };

  const server = new rcl.ActionServer(
    node,
    DESCRIBE_TYPE,
    '~/describe',
    execute,
    () => rcl.GoalResponse.ACCEPT,
    undefined,
    () => rcl.CancelResponse.ACCEPT,
  );
  transport.onClose(() => server.destroy());
}

/** The Caption as an rclnodejs message initializer: 64-bit arrays as plain bigint arrays. */
function resultCaption(c: Caption): Record<string, unknown> {
  const msg = captionMessage(c);
  return { ...msg, token_ids: Array.from(c.tokenIds), batch_frame_ids: c.batchFrameIds.map((id) => BigInt(id)) };
}
