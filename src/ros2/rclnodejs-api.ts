/**
 * The part of the rclnodejs 2.2 API this node uses, as structural types, so nothing here imports
 * rclnodejs (an optionalDependency whose import is only safe with ROS 2 sourced; see guard.ts).
 * Each member mirrors node_modules/rclnodejs/types/*.d.ts: index.d.ts (init, shutdown, require,
 * regenerateAll), node.d.ts (Node, Options), qos.d.ts, parameter.d.ts, lifecycle.d.ts,
 * action_server.d.ts, service.d.ts, publisher.d.ts. A test double must match these types too.
 */
import { BitmarError } from '../errors.js';

/** `QoS` instances are opaque to us; profiles are named by string refs (QoS.profileSensorData…). */
export type RclQoSProfile = string | object;

/** rclnodejs `Options` (node.d.ts): per publisher/subscription/service. */
export interface RclOptions {
  readonly qos?: RclQoSProfile;
  /** Subscriptions: deliver the serialized CDR as a Buffer instead of a message object. */
  readonly isRaw?: boolean;
  readonly enableTypedArray?: boolean;
}

export interface RclPublisher {
  readonly topic: string;
  /** A Buffer is published as an already serialized message (rclnodejs publishRawMessage). */
  publish(message: Buffer | object): void;
}

/** The second argument of a service callback (service.d.ts ServiceResponse). */
export interface RclServiceResponse {
  send(response: object): void;
}

export interface RclParameter {
  readonly name: string;
  readonly type: number;
  /** PARAMETER_INTEGER values are bigint. */
  value: unknown;
}

export interface RclParameterDescriptor {
  readonly name: string;
  readonly type: number;
  readonly description: string;
  readonly readOnly: boolean;
  additionalConstraints: string;
}

/** rcl_interfaces/msg/SetParametersResult. */
export interface RclSetParametersResult {
  successful: boolean;
  reason: string;
}

export interface RclLogger {
  debug(message: string): unknown;
  info(message: string): unknown;
  warn(message: string): unknown;
  error(message: string): unknown;
}

export interface RclNode {
  name(): string;
  namespace(): string;
  getLogger(): RclLogger;
  createSubscription(typeClass: string, topic: string, options: RclOptions, callback: (message: unknown) => void): object;
  createPublisher(typeClass: string, topic: string, options?: RclOptions): RclPublisher;
  createService(
    typeClass: string,
    serviceName: string,
    options: RclOptions,
    callback: (request: unknown, response: RclServiceResponse) => unknown,
  ): object;
  declareParameter(parameter: RclParameter, descriptor?: RclParameterDescriptor, ignoreOverride?: boolean): RclParameter;
  getParameter(name: string): RclParameter;
  hasParameter(name: string): boolean;
  addOnSetParametersCallback(callback: (parameters: RclParameter[]) => RclSetParametersResult): void;
  /** Non-blocking in rclnodejs 2.x: callbacks then run from the libuv loop. */
  spin(timeoutMs?: number): void;
  stop(): void;
  destroy(): void;
}

/** lifecycle.d.ts: transition callbacks return a CallbackReturnCode (SUCCESS = 97). */
export type RclTransitionCallback = (previousState: unknown) => number;

export interface RclLifecycleNode extends RclNode {
  registerOnConfigure(cb: RclTransitionCallback): void;
  registerOnActivate(cb: RclTransitionCallback): void;
  registerOnDeactivate(cb: RclTransitionCallback): void;
  registerOnCleanup(cb: RclTransitionCallback): void;
  registerOnShutdown(cb: RclTransitionCallback): void;
  configure(): unknown;
  activate(): unknown;
}

/** action_server.d.ts ServerGoalHandle. */
export interface RclServerGoalHandle {
  readonly request: unknown;
  readonly isActive: boolean;
  readonly isCancelRequested: boolean;
  publishFeedback(feedback: object): void;
  succeed(): void;
  abort(): void;
  canceled(): void;
}

export type RclMessageClass = new (init?: object) => object;

/** What `rclnodejs.require('pkg/action/Name')` returns. */
export interface RclActionTypeClass {
  readonly Goal: RclMessageClass;
  readonly Feedback: RclMessageClass;
  readonly Result: RclMessageClass;
}

export type RclActionServerClass = new (
  node: RclNode,
  typeClass: string,
  actionName: string,
  executeCallback: (goalHandle: RclServerGoalHandle) => Promise<object> | object,
  goalCallback?: (goal: unknown) => number,
  handleAcceptedCallback?: (goalHandle: RclServerGoalHandle) => void,
  cancelCallback?: (goalHandle?: RclServerGoalHandle) => number | Promise<number>,
) => { destroy(): void };

export interface RclQoSClass {
  new (history?: number, depth?: number, reliability?: number, durability?: number): object;
  readonly profileDefault: string;
  readonly profileSystemDefault: string;
  readonly profileSensorData: string;
  readonly profileServicesDefault: string;
  readonly HistoryPolicy: { readonly RMW_QOS_POLICY_HISTORY_KEEP_LAST: number };
  readonly ReliabilityPolicy: { readonly RMW_QOS_POLICY_RELIABILITY_RELIABLE: number; readonly RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT: number };
  readonly DurabilityPolicy: { readonly RMW_QOS_POLICY_DURABILITY_VOLATILE: number; readonly RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL: number };
}

/** The rclnodejs module object (the ESM default export, or the CJS module). */
export interface RclnodejsApi {
  /** index.d.ts: `init(context?, argv?)`; argv defaults to process.argv and carries `--ros-args`. */
  init(context?: undefined, argv?: string[]): Promise<void>;
  shutdown(): void;
  isShutdown(): boolean;
  /** Loads a generated interface class; throws when it was never generated. */
  require(name: string): unknown;
  /** Regenerates JS for every interface package on AMENT_PREFIX_PATH. */
  regenerateAll(): Promise<void>;
  /** Drops rclnodejs's own SIGINT handler (which shuts every node down behind the app's back). */
  removeSignalHandlers?(): void;
  readonly Node: new (nodeName: string, namespace?: string) => RclNode;
  readonly lifecycle: { readonly LifecycleNode: new (nodeName: string, namespace?: string) => RclLifecycleNode };
  readonly QoS: RclQoSClass;
  readonly Parameter: new (name: string, type: number, value?: unknown) => RclParameter;
  readonly ParameterDescriptor: new (name: string, type: number, description?: string, readOnly?: boolean, range?: object) => RclParameterDescriptor;
  readonly ParameterType: {
    readonly PARAMETER_NOT_SET: number;
    readonly PARAMETER_BOOL: number;
    readonly PARAMETER_INTEGER: number;
    readonly PARAMETER_DOUBLE: number;
    readonly PARAMETER_STRING: number;
  };
  readonly IntegerRange: new (from: bigint, to: bigint, step?: bigint) => object;
  /** Pass step 0 for a continuous range: the rclnodejs default step is 1. */
  readonly FloatingPointRange: new (from: number, to: number, step?: number, tolerance?: number) => object;
  readonly ActionServer: RclActionServerClass;
  readonly GoalResponse: { readonly ACCEPT: number; readonly REJECT: number };
  readonly CancelResponse: { readonly ACCEPT: number; readonly REJECT: number };
}

const REQUIRED_FUNCTIONS = ['init', 'shutdown', 'require', 'Node', 'QoS', 'Parameter', 'ParameterDescriptor', 'IntegerRange', 'FloatingPointRange', 'ActionServer'] as const;
const REQUIRED_OBJECTS = ['lifecycle', 'ParameterType', 'GoalResponse', 'CancelResponse'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

/**
 * Narrows a dynamically imported module (or a test double) to the API above, unwrapping an ESM
 * `default`. Throws BitmarError BITMAR_ERR_ROS2_UNAVAILABLE naming the first missing member.
 */
export function asRclnodejsApi(mod: unknown): RclnodejsApi {
  const candidate = isRecord(mod) && isRecord(mod.default) && typeof mod.init !== 'function' ? mod.default : mod;
  if (!isRecord(candidate)) throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', 'the rclnodejs module is not an object');
  for (const key of REQUIRED_FUNCTIONS) {
    if (typeof candidate[key] !== 'function') {
      throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', `the rclnodejs module has no ${key}(): rclnodejs ≥ 2.2 is required`);
    }
  }
  for (const key of REQUIRED_OBJECTS) {
    if (!isRecord(candidate[key])) throw new BitmarError('BITMAR_ERR_ROS2_UNAVAILABLE', `the rclnodejs module has no ${key}: rclnodejs ≥ 2.2 is required`);
  }
  // Checked member by member above; the remaining shape is rclnodejs's documented API.
  return candidate as unknown as RclnodejsApi;
}
