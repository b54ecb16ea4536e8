/**
 * The one typed configuration schema of the node. Precedence (lowest first): the defaults below,
 * a YAML file (config/bitmar.yaml or --config), environment variables (BITMAR_*), CLI flags.
 * The same descriptors feed the ROS 2 parameters (see `parameterDescriptors`).
 */
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

export const configSchema = z
  .object({
    model: z
      .object({
        /** Path to a GGUF model file; empty = the bundled default model. */
        path: z.string().default(''),
        /** Kernel backend: auto = native addon when built, else TypeScript. */
        kernels: z.enum(['auto', 'native', 'typescript']).default('auto'),
        /** Intra-op threads for the native kernels (1 is best on a 2-core machine). */
        threads: z.number().int().min(1).max(64).default(1),
        /** bitmar-r1 only: a DINOv2 ONNX file (needs onnxruntime-node) that turns images into its 768-d vision input; empty = feature vectors only. */
        visionOnnx: z.string().default(''),
        /** bitmar-r1 only: its stateful memory reads per caption: reset to the file's state (exact), carry over, or frozen. */
        r1Memory: z.enum(['reset', 'carry', 'frozen']).default('reset'),
      })
      .strict()
      .default({}),
    source: z
      .object({
        /** Where frames come from: synthetic camera, MQTT, ROS 2 or an MCAP bag (bag:FILE). */
        kind: z.enum(['synthetic', 'mqtt', 'ros2', 'bag']).default('synthetic'),
        bagPath: z.string().default(''),
        /** Bag replay rate: 1 = log time, 0 = as fast as possible. */
        bagRate: z.number().min(0).max(1000).default(1),
        synthetic: z
          .object({
            width: z.number().int().min(160).max(1280).default(320),
            height: z.number().int().min(120).max(720).default(240),
            fps: z.number().min(0.1).max(240).default(10),
            seed: z.number().int().min(0).default(1),
            sceneChangeEverySec: z.number().min(0.1).max(3600).default(3),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    pipeline: z
      .object({
        /** Keep every Nth frame (1 = all). */
        sampleEveryN: z.number().int().min(1).max(10000).default(1),
        /** Minimum interval between kept frames, ms (0 = no limit). */
        minIntervalMs: z.number().min(0).max(3_600_000).default(0),
        /** Frames per batch into the vision encoder. */
        batchSize: z.number().int().min(1).max(64).default(4),
        /** Longest wait to fill a batch, ms. */
        batchMaxWaitMs: z.number().min(0).max(60_000).default(250),
        /** Batches waiting for the encoder beyond this are dropped, oldest first (latest wins anyway). */
        queueLimit: z.number().int().min(1).max(64).default(2),
        /** A caption never describes a frame older than this, ms. */
        maxFrameAgeMs: z.number().min(10).max(3_600_000).default(5000),
        /** What cancels a running generation: nothing, a new prompt, or a newer batch too. */
        cancelPolicy: z.enum(['never', 'new-prompt', 'newer-frame']).default('new-prompt'),
        /** A frame source quiet this long is reported (log line, bitmar_input_silent), ms; 0 = off. */
        inputSilenceMs: z.number().int().min(0).max(3_600_000).default(5000),
        /** Largest accepted input payload, bytes. */
        maxPayloadBytes: z.number().int().min(1024).max(512 * 1024 * 1024).default(16 * 1024 * 1024),
      })
      .strict()
      .default({}),
    generation: z
      .object({
        /** The prompt that selects the task (shapes-world.md); empty = describe the scene. */
        prompt: z.string().max(1024).default('describe the scene'),
        mode: z.enum(['caption', 'narration']).default('caption'),
        maxTokens: z.number().int().min(1).max(4096).default(24),
        /** 0 = greedy. */
        temperature: z.number().min(0).max(5).default(0),
        topP: z.number().gt(0).max(1).default(1),
        seed: z.number().int().min(0).default(0),
        /** Attention sinks and window of the decoder KV cache (0 = model defaults). */
        sinks: z.number().int().min(0).max(64).default(0),
        window: z.number().int().min(0).max(65536).default(0),
      })
      .strict()
      .default({}),
    memory: z
      .object({
        enabled: z.boolean().default(true),
        slots: z.number().int().min(1).max(1_000_000).default(512),
        policy: z
          .enum(['lru', 'lfu', 'fifo', 'r1-score', 'similarity-merge', 'reservoir', 'ttl'])
          .default('similarity-merge'),
        /** Cosine threshold for similarity-merge. */
        mergeThreshold: z.number().min(-1).max(1).default(0.95),
        ttlSec: z.number().min(1).default(3600),
        /** Crash-loss bound: dirty slots are flushed to SQLite at least this often, ms. */
        syncIntervalMs: z.number().int().min(10).max(600_000).default(1000),
        archiveLimit: z.number().int().min(0).max(100_000_000).default(100_000),
        /** Empty = <stateDir>/memory.sqlite. */
        dbPath: z.string().default(''),
      })
      .strict()
      .default({}),
    mqtt: z
      .object({
        enabled: z.boolean().default(true),
        /** Broker URL; empty = start the embedded broker. */
        url: z.string().default(''),
        embeddedHost: z.string().default('127.0.0.1'),
        embeddedPort: port.default(1883),
        /** Topic prefix segment after bitmar/; empty = host name. */
        nodeId: z.string().default(''),
        clientId: z.string().default(''),
        protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
        username: z.string().default(''),
        password: z.string().default(''),
        caFile: z.string().default(''),
        certFile: z.string().default(''),
        keyFile: z.string().default(''),
        /** Worker mode: share image input through $share/<group>/… when set. */
        shareGroup: z.string().default(''),
      })
      .strict()
      .default({}),
    ros2: z
      .object({
        /** auto = on when ROS 2 is sourced (ROS_DISTRO and AMENT_PREFIX_PATH set). */
        enabled: z.enum(['auto', 'on', 'off']).default('auto'),
        imageTopic: z.string().default('/image_raw'),
        compressedTopic: z.string().default(''),
        promptTopic: z.string().default('~/prompt'),
        captionTopic: z.string().default('~/caption'),
        /** Run as a managed lifecycle node (data flows only while active). */
        lifecycle: z.boolean().default(false),
        /** Lifecycle only: configure and activate at once instead of waiting for a manager. */
        lifecycleAutostart: z.boolean().default(false),
      })
      .strict()
      .default({}),
    metrics: z
      .object({
        /** Prometheus /metrics port; 0 turns it off. */
        port: port.default(9464),
        host: z.string().default('127.0.0.1'),
      })
      .strict()
      .default({}),
    foxglove: z
      .object({
        /** Foxglove WebSocket live view port (frames, captions, memory, metrics); 0 = off. */
        port: port.default(0),
        host: z.string().default('127.0.0.1'),
        /** Frames sent to Foxglove per second (downscaled JPEG). */
        imageRateHz: z.number().min(0.1).max(30).default(2),
      })
      .strict()
      .default({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** Repeated errors of one kind are logged at most once per interval, ms. */
        repeatIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
      })
      .strict()
      .default({}),
    /** Where memory and the persistent MQTT store live. Empty = $STATE_DIRECTORY, else ./.state. */
    stateDir: z.string().default(''),
  })
  .strict();

export type BitmarConfig = z.infer<typeof configSchema>;
export type BitmarConfigInput = z.input<typeof configSchema>;

/** The defaults, as one object. */
export const DEFAULT_CONFIG: BitmarConfig = configSchema.parse({});

/** A flat, dotted view of the schema for ROS 2 parameters and env variables. */
export interface ParameterDescriptor {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'double' | 'bool';
  readonly description: string;
  readonly min?: number;
  readonly max?: number;
  readonly allowed?: readonly (string | number)[];
  /** Safe to change while running (cadence, batch size, policy, prompt, temperature). */
  readonly runtime: boolean;
}

const RUNTIME_KEYS = new Set([
  'pipeline.sampleEveryN',
  'pipeline.minIntervalMs',
  'pipeline.batchSize',
  'pipeline.batchMaxWaitMs',
  'pipeline.maxFrameAgeMs',
  'pipeline.cancelPolicy',
  'generation.prompt',
  'generation.temperature',
  'generation.topP',
  'generation.maxTokens',
  'memory.policy',
  'memory.mergeThreshold',
  'log.level',
]);

function unwrap(t: z.ZodTypeAny): z.ZodTypeAny {
  let cur = t;
  for (;;) {
    if (cur instanceof z.ZodDefault) cur = cur._def.innerType;
    else if (cur instanceof z.ZodOptional) cur = cur._def.innerType;
    else if (cur instanceof z.ZodEffects) cur = cur._def.schema;
    else return cur;
  }
}

/** Every leaf option with its type and range (feeds ROS 2 parameters, env names, --help). */
export function parameterDescriptors(): ParameterDescriptor[] {
  const out: ParameterDescriptor[] = [];
  const walk = (shape: z.ZodRawShape, prefix: string): void => {
    for (const [key, value] of Object.entries(shape)) {
      const name = prefix ? `${prefix}.${key}` : key;
      const inner = unwrap(value as z.ZodTypeAny);
      const description = (value as z.ZodTypeAny).description ?? inner.description ?? name;
      const runtime = RUNTIME_KEYS.has(name);
      if (inner instanceof z.ZodObject) {
        walk(inner.shape as z.ZodRawShape, name);
      } else if (inner instanceof z.ZodEnum) {
        out.push({ name, type: 'string', description, allowed: inner.options as string[], runtime });
      } else if (inner instanceof z.ZodUnion) {
        const opts = (inner.options as z.ZodTypeAny[]).map((o) => (o instanceof z.ZodLiteral ? (o.value as number) : NaN));
        out.push({ name, type: 'integer', description, allowed: opts, runtime });
      } else if (inner instanceof z.ZodNumber) {
        const isInt = inner.isInt;
        out.push({
          name,
          type: isInt ? 'integer' : 'double',
          description,
          min: inner.minValue ?? undefined,
          max: inner.maxValue ?? undefined,
          runtime,
        });
      } else if (inner instanceof z.ZodBoolean) {
        out.push({ name, type: 'bool', description, runtime });
      } else {
        out.push({ name, type: 'string', description, runtime });
      }
    }
  };
  walk(configSchema.shape, '');
  return out;
}
