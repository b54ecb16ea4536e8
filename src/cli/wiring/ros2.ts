/**
 * ROS 2 for `run`: behind the guard (rclnodejs is imported only with ROS 2 sourced, or when asked
 * for), one node that subscribes to the camera and prompt topics, publishes captions, diagnostics
 * and memory events, serves the memory services and the describe-now action, and declares every
 * config key as a parameter (the run-time safe ones settable with `ros2 param set`).
 */
import { EMPTY, type Observable } from 'rxjs';
import type { BitmarConfig } from '../../config/schema.js';
import { parameterDescriptors } from '../../config/schema.js';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createInputHealth } from '../../ros2/diagnostics.js';
import { loadRclnodejs } from '../../ros2/guard.js';
import { declareParameters, ROS2_TRANSPORT_PARAMETERS, withValues, type ParameterChange } from '../../ros2/parameters.js';
import { openRos2Transport, type Ros2Transport } from '../../ros2/transport.js';
import { createRos2Sink, type DescribeHandler, type Ros2MemoryHandlers, type Ros2Sink } from '../../sinks/ros2/ros2-sink.js';
import type { DecodePool } from '../../sources/image/decode-pool.js';
import { createRos2Source, type Ros2Source } from '../../sources/ros2/ros2-source.js';
import type { DropEvent, Frame, Prompt } from '../../types.js';

export interface NodeRos2 {
  readonly sink: Ros2Sink;
  readonly frames$: Observable<Frame>;
  readonly prompts$: Observable<Prompt>;
  readonly drops$: Observable<DropEvent>;
  /** Values set by the params file or `-p` at start: merge into the config. */
  readonly overridden: readonly ParameterChange[];
  /** Publishes input health on /diagnostics (call on a timer). */
  publishDiagnostics(): void;
  close(): Promise<void>;
}

export interface Ros2Deps {
  readonly log: Logger;
  readonly say: (line: string) => void;
  readonly memory?: Ros2MemoryHandlers;
  readonly describe?: DescribeHandler;
  /** Run-time parameter changes; return a string to refuse them. */
  readonly onParameters: (changes: readonly ParameterChange[]) => string | void;
  readonly argv: readonly string[];
  /** Where camera images are decoded (off the event loop); default: in the subscription callback. */
  readonly decodePool?: DecodePool;
  /** The sampler's decision, asked before decoding a camera image (sample-frames.ts createSampler). */
  readonly shouldDecode?: (topic: string) => boolean;
}

/** Returns null (after one line saying why) when ROS 2 is off; throws when it was required but cannot start. */
export async function startRos2(cfg: Readonly<BitmarConfig>, deps: Ros2Deps): Promise<NodeRos2 | null> {
  const mode = cfg.source.kind === 'ros2' && cfg.ros2.enabled === 'auto' ? 'on' : cfg.ros2.enabled;
  const loaded = await loadRclnodejs(process.env, deps.argv, { mode });
  if (!loaded.ok) {
    if (loaded.required) throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', loaded.reason);
    deps.say(`bitmar-node: ${loaded.reason}`);
    return null;
  }
  const transport: Ros2Transport = await openRos2Transport({
    rclnodejs: loaded.rclnodejs,
    argv: deps.argv,
    lifecycle: cfg.ros2.lifecycle,
    lifecycleAutostart: cfg.ros2.lifecycleAutostart,
    log: (l) => deps.log.info(l),
  });
  try {
    const declared = declareParameters(transport, [...withValues(parameterDescriptors(), cfg), ...ROS2_TRANSPORT_PARAMETERS], deps.onParameters);
    let source: Ros2Source | null = null;
    if (cfg.source.kind === 'ros2') {
      source = createRos2Source({
        transport,
        imageTopic: cfg.ros2.imageTopic,
        compressedTopic: cfg.ros2.compressedTopic,
        promptTopic: cfg.ros2.promptTopic,
        ...(deps.decodePool !== undefined ? { decodePool: deps.decodePool } : {}),
        ...(deps.shouldDecode !== undefined ? { shouldDecode: deps.shouldDecode } : {}),
      });
    }
    const sink = createRos2Sink({ transport, captionTopic: cfg.ros2.captionTopic, memory: deps.memory, describe: deps.describe });
    transport.spin();
    deps.say(`bitmar-node: ROS 2 on (${loaded.reason})`);
    const health = createInputHealth('bitmar_node: inputs');
    return {
      sink,
      frames$: source?.frames$ ?? EMPTY,
      prompts$: source?.prompts$ ?? EMPTY,
      drops$: source?.drops$ ?? EMPTY,
      overridden: declared.overridden,
      publishDiagnostics: () => {
        if (source) sink.diagnostics([health(source.counts())]);
      },
      async close() {
        source?.close();
        sink.close();
        await transport.close();
      },
    };
  } catch (e) {
    await transport.close();
    throw e;
  }
}
