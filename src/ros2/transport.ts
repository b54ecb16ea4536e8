/**
 * The ROS 2 node the source and the sink share: `rclnodejs.init(argv)` (so the `--ros-args` that
 * `ros2 run`/`ros2 launch` append — remaps, `__node`, `__ns`, `--params-file` — reach rcl), a plain
 * or lifecycle node, spinning, and an orderly close.
 *
 * Stages: opening (init, node) → spinning → closing (node.destroy, rclnodejs.shutdown). For a
 * lifecycle node the source and the sink only pass data while the node is active
 * (`ros2 lifecycle set /bitmar_node configure|activate`).
 */
import { BitmarError } from '../errors.js';
import { asRclnodejsApi, type RclLifecycleNode, type RclnodejsApi, type RclNode } from './rclnodejs-api.js';

/** rclnodejs lifecycle CallbackReturnCode.SUCCESS (lifecycle.d.ts). */
const TRANSITION_SUCCESS = 97;

export interface Ros2TransportOptions {
  /** The rclnodejs module from `loadRclnodejs` (or a test double). */
  readonly rclnodejs: unknown;
  /** The full command line (process.argv): rcl reads the `--ros-args` part. */
  readonly argv: readonly string[];
  /** Default `bitmar_node`; `--ros-args -r __node:=…` overrides it. */
  readonly nodeName?: string;
  /** Default '' (root); `--ros-args -r __ns:=…` overrides it. */
  readonly namespace?: string;
  /** A managed node (lifecycle_msgs services; data flows only while active). Default false. */
  readonly lifecycle?: boolean;
  /** Lifecycle only: configure and activate at once instead of waiting for a manager. Default false. */
  readonly lifecycleAutostart?: boolean;
  /**
   * When bitmar_msgs has no generated JavaScript yet (first run after `colcon build`), run
   * rclnodejs's generator once. Default true.
   */
  readonly generateMessages?: boolean;
  /** One line per notable event. Default: the node's ROS logger. */
  readonly log?: (line: string) => void;
}

export interface Ros2Transport {
  readonly rcl: RclnodejsApi;
  readonly node: RclNode;
  /** False for a lifecycle node that is not active; always true for a plain node. */
  isActive(): boolean;
  /** Starts delivering callbacks (non-blocking). Idempotent. */
  spin(): void;
  /** A line for the log. */
  log(line: string): void;
  /** Registers work to undo on close (publishers, services), run in reverse order. */
  onClose(fn: () => void): void;
  /** Destroys the node and shuts rclnodejs down. Idempotent. */
  close(): Promise<void>;
}

function isLifecycleNode(node: RclNode, lifecycle: boolean): node is RclLifecycleNode {
  return lifecycle && typeof (node as Partial<RclLifecycleNode>).registerOnActivate === 'function';
}

/**
 * Initialises rclnodejs with `argv`, creates the node, and makes sure bitmar_msgs can be loaded.
 * Throws BitmarError BITMAR_ERR_ROS2_UNAVAILABLE when init or node creation fails.
 */
export async function openRos2Transport(opts: Ros2TransportOptions): Promise<Ros2Transport> {
  const rcl = asRclnodejsApi(opts.rclnodejs);
  const lifecycle = opts.lifecycle ?? false;
  try {
    await rcl.init(undefined, [...opts.argv]);
    // The node's own stop sequence (docs/lifecycle.md) closes the transport on SIGINT/SIGTERM.
    rcl.removeSignalHandlers?.();
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', `rclnodejs.init failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  let node: RclNode;
  try {
    const name = opts.nodeName ?? 'bitmar_node';
    node = lifecycle ? new rcl.lifecycle.LifecycleNode(name, opts.namespace ?? '') : new rcl.Node(name, opts.namespace ?? '');
  } catch (e) {
    rcl.shutdown();
    throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', `cannot create the ROS 2 node: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  const logger = node.getLogger();
  const log = opts.log ?? ((line: string) => void logger.info(line));
  await ensureInterfaces(rcl, opts.generateMessages ?? true, log);

  let active = !lifecycle;
  const closers: (() => void)[] = [];
  let spinning = false;
  let closed = false;

  if (isLifecycleNode(node, lifecycle)) {
    const set = (value: boolean, what: string) => (): number => {
      active = value;
      log(`lifecycle: ${what}`);
      return TRANSITION_SUCCESS;
    };
    node.registerOnConfigure(set(false, 'configured'));
    node.registerOnActivate(set(true, 'active'));
    node.registerOnDeactivate(set(false, 'inactive'));
    node.registerOnCleanup(set(false, 'cleaned up'));
    node.registerOnShutdown(set(false, 'shut down'));
    if (opts.lifecycleAutostart === true) {
      node.configure();
      node.activate();
    }
  }

  return {
    rcl,
    node,
    isActive: () => active && !closed,
    spin: () => {
      if (spinning || closed) return;
      spinning = true;
      node.spin();
    },
    log,
    onClose: (fn) => void closers.push(fn),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const fn of closers.reverse()) {
        try {
          fn();
        } catch (e) {
          log(`error while closing: ${(e as Error)?.message ?? String(e)}`);
        }
      }
      try {
        if (spinning) node.stop();
        node.destroy();
      } catch (e) {
        log(`error while destroying the node: ${(e as Error)?.message ?? String(e)}`);
      } finally {
        if (!rcl.isShutdown()) rcl.shutdown();
      }
    },
  };
}

/** Loads bitmar_msgs once, generating rclnodejs's JavaScript for it when missing. */
async function ensureInterfaces(rcl: RclnodejsApi, generate: boolean, log: (line: string) => void): Promise<void> {
  const probe = (): boolean => {
    try {
      rcl.require('bitmar_msgs/msg/Caption');
      return true;
    } catch {
      return false;
    }
  };
  if (probe()) return;
  if (generate) {
    log('bitmar_msgs has no rclnodejs JavaScript yet: generating messages for every package on AMENT_PREFIX_PATH (once)');
    try {
      await rcl.regenerateAll();
    } catch (e) {
      log(`message generation failed: ${(e as Error)?.message ?? String(e)}`);
    }
    if (probe()) return;
  }
  throw new BitmarError(
    'BITMAR_ERR_ROS2_UNAVAILABLE',
    'bitmar_msgs is not available to rclnodejs: build it (colcon build --paths <repo>/msg), source install/setup.bash, then run `npx generate-ros-messages`',
  );
}
