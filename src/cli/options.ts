/** CLI flags shared by commands, mapped onto dotted config keys. */
import { InvalidArgumentError, type Command } from 'commander';

export function intArg(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

export function numArg(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

/** Flags that set config keys: [flags, description, config key, parser]. */
export const CONFIG_FLAGS: [string, string, string, ((v: string) => unknown)?][] = [
  ['--model <file>', 'GGUF model file (default: the bundled model)', 'model.path'],
  ['--kernels <name>', 'kernel backend: auto, native or typescript', 'model.kernels'],
  ['--threads <n>', 'intra-op threads of the native kernels', 'model.threads', intArg('--threads')],
  ['--vision-onnx <file>', 'bitmar-r1 only: a DINOv2 ONNX file that turns frames into 768-d features (needs onnxruntime-node)', 'model.visionOnnx'],
  ['--width <px>', 'synthetic camera frame width (160–1280)', 'source.synthetic.width', intArg('--width')],
  ['--height <px>', 'synthetic camera frame height (120–720)', 'source.synthetic.height', intArg('--height')],
  ['--fps <hz>', 'synthetic camera frame rate', 'source.synthetic.fps', numArg('--fps')],
  ['--seed <n>', 'synthetic camera seed (same seed, same scenes)', 'source.synthetic.seed', intArg('--seed')],
  ['--rate <x>', 'bag replay rate (1 = log time, 0 = as fast as possible)', 'source.bagRate', numArg('--rate')],
  ['--sample-every <n>', 'keep every Nth frame', 'pipeline.sampleEveryN', intArg('--sample-every')],
  ['--min-interval-ms <ms>', 'minimum interval between kept frames', 'pipeline.minIntervalMs', numArg('--min-interval-ms')],
  ['--batch-size <n>', 'frames per vision-encoder batch', 'pipeline.batchSize', intArg('--batch-size')],
  ['--batch-wait-ms <ms>', 'longest wait to fill a batch', 'pipeline.batchMaxWaitMs', numArg('--batch-wait-ms')],
  ['--max-frame-age-ms <ms>', 'never caption a frame older than this', 'pipeline.maxFrameAgeMs', numArg('--max-frame-age-ms')],
  ['--cancel-policy <p>', 'what cancels a running caption: never, new-prompt, newer-frame', 'pipeline.cancelPolicy'],
  ['--prompt <text>', 'the task prompt (default "describe the scene")', 'generation.prompt'],
  ['--mode <mode>', 'caption (one per batch) or narration (one continuous stream)', 'generation.mode'],
  ['--max-tokens <n>', 'token cap per caption', 'generation.maxTokens', intArg('--max-tokens')],
  ['--temperature <t>', 'sampling temperature (0 = greedy)', 'generation.temperature', numArg('--temperature')],
  ['--top-p <p>', 'nucleus sampling threshold (0–1]', 'generation.topP', numArg('--top-p')],
  ['--memory-slots <k>', 'episodic memory slots', 'memory.slots', intArg('--memory-slots')],
  ['--memory-policy <p>', 'eviction: lru, lfu, fifo, r1-score, similarity-merge, reservoir, ttl', 'memory.policy'],
  ['--mqtt-url <url>', 'MQTT broker URL (default: start the embedded broker); env BITMAR_MQTT_URL', 'mqtt.url'],
  ['--mqtt-port <port>', 'embedded broker port', 'mqtt.embeddedPort', intArg('--mqtt-port')],
  ['--node-id <id>', 'MQTT topic id bitmar/<id>/… (default: host name); env BITMAR_NODE_ID', 'mqtt.nodeId'],
  ['--metrics-port <port>', 'Prometheus /metrics port on 127.0.0.1 (0 = off)', 'metrics.port', intArg('--metrics-port')],
  ['--foxglove-port <port>', 'Foxglove WebSocket live view on 127.0.0.1 (0 = off)', 'foxglove.port', intArg('--foxglove-port')],
  ['--state-dir <dir>', 'where memory and queued messages live; env BITMAR_STATE_DIR', 'stateDir'],
  ['--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'log.level'],
];

export function addConfigFlags(cmd: Command, only?: readonly string[]): Command {
  cmd.option('-c, --config <file>', 'YAML config file (replaces config/bitmar.yaml and /etc/bitmar-node/bitmar.yaml)');
  for (const [flags, desc, key, parse] of CONFIG_FLAGS) {
    if (only && !only.includes(key)) continue;
    if (parse) cmd.option(flags, `${desc} [${key}]`, parse);
    else cmd.option(flags, `${desc} [${key}]`);
  }
  return cmd;
}

/** The config overrides given on the command line. */
export function overridesFrom(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [flags, , key] of CONFIG_FLAGS) {
    const long = /--([a-z0-9-]+)/.exec(flags)![1]!;
    const prop = long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[prop] !== undefined) out[key] = opts[prop];
  }
  return out;
}
