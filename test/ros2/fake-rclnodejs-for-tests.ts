/**
 * FakeRclnodejsForTests — a TEST DOUBLE of the rclnodejs 2.2 module, not rclnodejs. It records what
 * the node creates (subscriptions with their QoS, publishers and what they publish, services,
 * action servers, init argv) and lets a test deliver messages and call services.
 *
 * Parameters use rclnodejs's own pure-JS classes (rclnodejs/lib/parameter.js, lib/qos.js: no
 * native addon behind them) and follow lib/node.js's order — overrides replace the declared value,
 * the descriptor validates type, range and read-only, then the set-parameters callbacks may veto —
 * so range checks are rclnodejs's real ones.
 */
import type * as ParameterModule from 'rclnodejs/lib/parameter.js';
import type QoSType from 'rclnodejs/lib/qos.js';

// rclnodejs is an optionalDependency: npm drops it when its install script fails (no ROS 2 here).
// The double needs only its pure-JS classes; without them the ROS 2 plumbing tests skip with this reason.
let loaded: { param: typeof ParameterModule; qos: typeof QoSType } | null = null;
export let RCLNODEJS_JS_MISSING: string | null = null;
try {
  const param = (await import('rclnodejs/lib/parameter.js')) as typeof ParameterModule;
  const qos = ((await import('rclnodejs/lib/qos.js')) as { default: typeof QoSType }).default;
  loaded = { param, qos };
} catch (e) {
  RCLNODEJS_JS_MISSING = `rclnodejs (optional) is not installed, so its pure-JS parameter/QoS classes are missing: ${(e as Error).message.split('\n')[0]}. Install it without building: npm install --no-save --ignore-scripts rclnodejs@2`;
}
const P = (loaded?.param ?? {}) as typeof ParameterModule;
const { FloatingPointRange, IntegerRange, Parameter, ParameterDescriptor, ParameterType } = P;
const QoS = loaded?.qos as typeof QoSType;
import type {
  RclLogger,
  RclParameter,
  RclParameterDescriptor,
  RclPublisher,
  RclServerGoalHandle,
  RclServiceResponse,
  RclSetParametersResult,
  RclTransitionCallback,
} from '../../src/ros2/rclnodejs-api.js';

export interface FakeSubscription {
  readonly type: string;
  readonly topic: string;
  readonly options: { qos?: unknown; isRaw?: boolean };
  readonly callback: (message: unknown) => void;
}

export class FakePublisher implements RclPublisher {
  readonly published: (Buffer | object)[] = [];
  constructor(
    readonly type: string,
    readonly topic: string,
    readonly options: unknown,
  ) {}
  publish(message: Buffer | object): void {
    this.published.push(message);
  }
}

export interface FakeService {
  readonly type: string;
  readonly name: string;
  readonly callback: (request: unknown, response: RclServiceResponse) => unknown;
}

/** A generated-message class stand-in: keeps the plain initializer. */
class FakeMessage {
  constructor(readonly init: object = {}) {}
}

export class FakeGoalHandle implements RclServerGoalHandle {
  readonly feedback: object[] = [];
  status: 'executing' | 'succeeded' | 'canceled' | 'aborted' = 'executing';
  isCancelRequested = false;
  constructor(readonly request: unknown) {}
  get isActive(): boolean {
    return this.status === 'executing';
  }
  publishFeedback(feedback: object): void {
    this.feedback.push(feedback);
  }
  succeed(): void {
    this.status = 'succeeded';
  }
  abort(): void {
    this.status = 'aborted';
  }
  canceled(): void {
    this.status = 'canceled';
  }
}

export class FakeActionServer {
  destroyed = false;
  constructor(
    readonly node: unknown,
    readonly type: string,
    readonly name: string,
    readonly execute: (goal: RclServerGoalHandle) => Promise<object> | object,
    readonly goalCallback?: (goal: unknown) => number,
    readonly handleAccepted?: unknown,
    readonly cancelCallback?: (goal?: RclServerGoalHandle) => number | Promise<number>,
  ) {
    FakeRclnodejsForTests.current?.actionServers.push(this);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

export class FakeNode {
  readonly subscriptions: FakeSubscription[] = [];
  readonly publishers: FakePublisher[] = [];
  readonly services: FakeService[] = [];
  readonly logLines: string[] = [];
  readonly parameters = new Map<string, RclParameter>();
  readonly descriptors = new Map<string, RclParameterDescriptor>();
  private readonly setCallbacks: ((p: RclParameter[]) => RclSetParametersResult)[] = [];
  spinning = false;
  destroyed = false;

  constructor(
    private readonly nodeName: string,
    private readonly ns: string,
    private readonly overrides: ReadonlyMap<string, RclParameter>,
  ) {}

  name(): string {
    return this.nodeName;
  }
  namespace(): string {
    return this.ns;
  }
  getLogger(): RclLogger {
    const push = (level: string) => (m: string) => void this.logLines.push(`${level}: ${m}`);
    return { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
  }
  createSubscription(type: string, topic: string, options: FakeSubscription['options'], callback: (message: unknown) => void): object {
    const sub = { type, topic, options, callback };
    this.subscriptions.push(sub);
    return sub;
  }
  createPublisher(type: string, topic: string, options?: unknown): FakePublisher {
    const pub = new FakePublisher(type, topic, options);
    this.publishers.push(pub);
    return pub;
  }
  createService(type: string, name: string, _options: unknown, callback: FakeService['callback']): object {
    const svc = { type, name, callback };
    this.services.push(svc);
    return svc;
  }

  /** rclnodejs lib/node.js declareParameters: override, validate, callbacks, store. */
  declareParameter(parameter: RclParameter, descriptor?: RclParameterDescriptor): RclParameter {
    if (this.parameters.has(parameter.name)) throw new Error(`Parameter(${parameter.name}) already declared.`);
    const p = this.overrides.get(parameter.name) ?? parameter;
    const d = descriptor ?? ParameterDescriptor.fromParameter(p);
    this.descriptors.set(d.name, d);
    const result = this.setAtomically([p], true);
    if (!result.successful) {
      this.descriptors.delete(d.name);
      throw new Error(result.reason);
    }
    return this.getParameter(p.name);
  }
  getParameter(name: string): RclParameter {
    return this.parameters.get(name) ?? new Parameter(name, ParameterType.PARAMETER_NOT_SET);
  }
  hasParameter(name: string): boolean {
    return this.parameters.has(name);
  }
  addOnSetParametersCallback(callback: (p: RclParameter[]) => RclSetParametersResult): void {
    this.setCallbacks.unshift(callback);
  }
  /** What `ros2 param set` ends in. */
  setParameter(parameter: RclParameter): RclSetParametersResult {
    return this.setAtomically([parameter], false);
  }

  private setAtomically(parameters: RclParameter[], declaring: boolean): RclSetParametersResult {
    for (const p of parameters) {
      const d = this.descriptors.get(p.name) as ParameterDescriptor | undefined;
      if (!d) return { successful: false, reason: `Parameter ${p.name} has not been declared` };
      if (!declaring && d.readOnly) return { successful: false, reason: `Parameter ${p.name} is readonly` };
      try {
        d.validateParameter(p);
      } catch (e) {
        return { successful: false, reason: `Parameter ${p.name}: ${(e as Error).message}` };
      }
    }
    for (const cb of this.setCallbacks) {
      const r = cb(parameters);
      if (!r.successful) return r;
    }
    for (const p of parameters) this.parameters.set(p.name, p);
    return { successful: true, reason: '' };
  }

  spin(): void {
    this.spinning = true;
  }
  stop(): void {
    this.spinning = false;
  }
  destroy(): void {
    this.destroyed = true;
  }

  // Test helpers -----------------------------------------------------------------------------
  subscription(topic: string): FakeSubscription {
    const s = this.subscriptions.find((x) => x.topic === topic);
    if (!s) throw new Error(`no subscription on ${topic}; have ${this.subscriptions.map((x) => x.topic).join(', ')}`);
    return s;
  }
  publisher(topic: string): FakePublisher {
    const p = this.publishers.find((x) => x.topic === topic);
    if (!p) throw new Error(`no publisher on ${topic}; have ${this.publishers.map((x) => x.topic).join(', ')}`);
    return p;
  }
  service(name: string): FakeService {
    const s = this.services.find((x) => x.name === name);
    if (!s) throw new Error(`no service ${name}`);
    return s;
  }
}

export class FakeLifecycleNode extends FakeNode {
  private readonly transitions = new Map<string, RclTransitionCallback>();
  registerOnConfigure(cb: RclTransitionCallback): void {
    this.transitions.set('configure', cb);
  }
  registerOnActivate(cb: RclTransitionCallback): void {
    this.transitions.set('activate', cb);
  }
  registerOnDeactivate(cb: RclTransitionCallback): void {
    this.transitions.set('deactivate', cb);
  }
  registerOnCleanup(cb: RclTransitionCallback): void {
    this.transitions.set('cleanup', cb);
  }
  registerOnShutdown(cb: RclTransitionCallback): void {
    this.transitions.set('shutdown', cb);
  }
  private run(name: string): number {
    return this.transitions.get(name)?.(undefined) ?? 97;
  }
  configure(): number {
    return this.run('configure');
  }
  activate(): number {
    return this.run('activate');
  }
  deactivate(): number {
    return this.run('deactivate');
  }
}

export interface FakeRclnodejsOptions {
  /** Parameter overrides as a params file or `-p` would give them (integers as bigint). */
  readonly parameterOverrides?: Readonly<Record<string, boolean | bigint | number | string>>;
  /** Interfaces `require` can load; default: bitmar_msgs is generated. */
  readonly generated?: readonly string[];
  /** Whether regenerateAll makes bitmar_msgs loadable. */
  readonly regenerateWorks?: boolean;
}

/** The module double. Pass an instance where the rclnodejs module is expected. */
export class FakeRclnodejsForTests {
  static current: FakeRclnodejsForTests | undefined;

  readonly initCalls: { context: unknown; argv: string[] | undefined }[] = [];
  readonly nodes: FakeNode[] = [];
  readonly actionServers: FakeActionServer[] = [];
  regenerateCalls = 0;
  private shut = false;
  private readonly overrides = new Map<string, RclParameter>();
  private readonly generated: Set<string>;

  readonly QoS = QoS;
  readonly Parameter = Parameter;
  readonly ParameterDescriptor = ParameterDescriptor;
  readonly ParameterType = ParameterType;
  readonly IntegerRange = IntegerRange;
  readonly FloatingPointRange = FloatingPointRange;
  readonly ActionServer = FakeActionServer;
  readonly GoalResponse = { REJECT: 1, ACCEPT: 2 };
  readonly CancelResponse = { REJECT: 1, ACCEPT: 2 };
  readonly Node: new (name: string, ns?: string) => FakeNode;
  readonly lifecycle: { LifecycleNode: new (name: string, ns?: string) => FakeLifecycleNode };

  constructor(private readonly options: FakeRclnodejsOptions = {}) {
    FakeRclnodejsForTests.current = this;
    for (const [name, value] of Object.entries(options.parameterOverrides ?? {})) {
      const type =
        typeof value === 'boolean'
          ? ParameterType.PARAMETER_BOOL
          : typeof value === 'bigint'
            ? ParameterType.PARAMETER_INTEGER
            : typeof value === 'number'
              ? ParameterType.PARAMETER_DOUBLE
              : ParameterType.PARAMETER_STRING;
      this.overrides.set(name, new Parameter(name, type, value));
    }
    this.generated = new Set(options.generated ?? ['bitmar_msgs/msg/Caption', 'bitmar_msgs/action/Describe']);
    const self = this;
    this.Node = class extends FakeNode {
      constructor(name: string, ns = '') {
        super(name, ns, self.overrides);
        self.nodes.push(this);
      }
    };
    this.lifecycle = {
      LifecycleNode: class extends FakeLifecycleNode {
        constructor(name: string, ns = '') {
          super(name, ns, self.overrides);
          self.nodes.push(this);
        }
      },
    };
  }

  async init(context?: unknown, argv?: string[]): Promise<void> {
    this.initCalls.push({ context, argv });
  }
  signalHandlersRemoved = false;
  removeSignalHandlers(): void {
    this.signalHandlersRemoved = true;
  }
  shutdown(): void {
    this.shut = true;
  }
  isShutdown(): boolean {
    return this.shut;
  }
  require(name: string): unknown {
    if (!this.generated.has(name)) throw new Error(`The message required does not exist: ${name}`);
    if (name.includes('/action/')) return { Goal: FakeMessage, Feedback: FakeMessage, Result: FakeMessage };
    return FakeMessage;
  }
  async regenerateAll(): Promise<void> {
    this.regenerateCalls++;
    if (this.options.regenerateWorks === true) {
      this.generated.add('bitmar_msgs/msg/Caption');
      this.generated.add('bitmar_msgs/action/Describe');
    }
  }

  get node(): FakeNode {
    const n = this.nodes[this.nodes.length - 1];
    if (!n) throw new Error('no node created');
    return n;
  }
}

export { FakeMessage };
