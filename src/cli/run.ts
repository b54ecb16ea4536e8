/**
 * `bitmar-node run`: the streaming node. Lifecycle (docs/pipeline.md draws a frame's path):
 *   starting: config → logger → model worker → memory → transports (ROS 2, MQTT) → sinks → source
 *   ready:    frames flow; READY=1 to systemd
 *   stopping: stop the source, cancel the running caption (published as cancelled), flush sinks,
 *             save memory, publish offline, close transports — in reverse order of creation.
 */
import { mkdirSync } from 'node:fs';
import { Command } from 'commander';
import { merge, take, tap, type Observable, type Subscription } from 'rxjs';
import { loadConfig, type ConfigOverrides } from '../config/load.js';
import type { BitmarConfig } from '../config/schema.js';
import { BitmarError, isBitmarError } from '../errors.js';
import { createLogger, RepeatLimiter, type Logger } from '../log.js';
import { defaultConfigFiles, defaultModelPath, resolveStateDir } from '../paths.js';
import type { Describer } from '../pipeline/describe-batch.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { createSampler } from '../pipeline/sample-frames.js';
import { createPipeline, type PipelineSettings } from '../pipeline/topology.js';
import { createFoxgloveSink, type FoxgloveSink } from '../sinks/foxglove/foxglove-sink.js';
import { createMcapRecorder } from '../sinks/recorder/mcap-recorder.js';
import { NodeMetrics } from '../sinks/metrics/metrics.js';
import { TerminalSink } from '../sinks/terminal/terminal-sink.js';
import { DecodePool } from '../sources/image/decode-pool.js';
import type { MqttRequestHandlers } from '../sources/mqtt/requests.js';
import type { Frame, Prompt } from '../types.js';
import { addConfigFlags, intArg, numArg, overridesFrom } from './options.js';
import { openMemory, type NodeMemory } from './wiring/memory.js';
import { startModel, type NodeModel } from './wiring/model.js';
import { startMqtt, type NodeMqtt } from './wiring/mqtt.js';
import { createNotifier, type Notifier } from './wiring/notify.js';
import { startRos2, type NodeRos2 } from './wiring/ros2.js';
import { openSource } from './wiring/source.js';

export interface RunOptions {
  config?: string;
  source?: string;
  duration?: number;
  frames?: number;
  record?: string;
  mqtt?: boolean;
  ros2?: boolean;
  [key: string]: unknown;
}

/** Disposers run in reverse order of creation. */
class Lifecycle {
  private readonly disposers: { name: string; fn: () => Promise<void> | void }[] = [];
  add(name: string, fn: () => Promise<void> | void): void {
    this.disposers.push({ name, fn });
  }
  async dispose(log: Logger): Promise<void> {
    for (const d of this.disposers.reverse()) {
      try {
        await d.fn();
      } catch (e) {
        log.warn({ err: e }, `error while stopping ${d.name}`);
      }
    }
    this.disposers.length = 0;
  }
}

function settingsFrom(cfg: BitmarConfig, prompt: string, modelName: string): PipelineSettings {
  return {
    everyN: cfg.pipeline.sampleEveryN,
    minIntervalMs: cfg.pipeline.minIntervalMs,
    batchSize: cfg.pipeline.batchSize,
    batchMaxWaitMs: cfg.pipeline.batchMaxWaitMs,
    queueLimit: cfg.pipeline.queueLimit,
    maxFrameAgeMs: cfg.pipeline.maxFrameAgeMs,
    cancelPolicy: cfg.pipeline.cancelPolicy,
    prompt,
    maxTokens: cfg.generation.maxTokens,
    temperature: cfg.generation.temperature,
    topP: cfg.generation.topP,
    seed: cfg.generation.seed,
    sinks: cfg.generation.sinks,
    window: cfg.generation.window,
    modelName,
  };
}

/** The worker seen by the pipeline, telling the systemd watchdog when inference runs and finishes. */
function watchedDescriber(model: NodeModel, notifier: Notifier): Describer {
  return {
    describe: async (req, onToken, signal) => {
      notifier.setIdle(false);
      try {
        return await model.worker.describe(req, (t) => {
          notifier.kick();
          onToken(t);
        }, signal);
      } finally {
        notifier.kick();
        notifier.setIdle(true);
      }
    },
  };
}

/** MQTT request/response: describe-now on a sent image, and memory recall by text. */
function requestHandlers(model: NodeModel, memory: NodeMemory | null, currentPrompt: () => string): MqttRequestHandlers {
  let seq = 0;
  return {
    describe: async (req) => {
      if (!req.frame) throw new BitmarError('BITMAR_ERR_IMAGE_DECODE', 'describe requests must carry an image (JPEG/PNG payload or raw pixels)');
      const f = req.frame;
      const promptText = req.prompt ?? currentPrompt();
      const t0 = performance.now();
      let first = -1;
      const res = await model.worker.describe({ images: [f], prompt: promptText }, () => {
        if (first < 0) first = performance.now();
      });
      const t1 = performance.now();
      return {
        seq: ++seq,
        text: res.text,
        tokenIds: res.tokenIds,
        prompt: promptText,
        frame: { id: f.id, source: f.source, stampNs: f.stampNs, frameId: f.frameId, replyTo: f.replyTo },
        batchFrameIds: [f.id],
        isFinal: true,
        cancelled: res.cancelled,
        latency: { encodeMs: res.encodeMs, frameToFirstTokenMs: first < 0 ? -1 : first - t0, frameToCaptionMs: t1 - t0, decodeMs: res.decodeMs },
        model: model.name,
      };
    },
    recall: async (req) => {
      if (!memory) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', 'memory is disabled on this node (memory.enabled: false)');
      const vec = await model.worker.encodeText(req.query);
      return memory.store
        .query(vec, req.k, { includeArchive: true })
        .map((h) => JSON.parse(JSON.stringify(h, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown);
    },
  };
}

/** Runs the node until a signal, --duration or --frames ends it. Returns the exit code. */
export async function runNode(opts: RunOptions, io: { stdout: NodeJS.WriteStream; argv: readonly string[] } = { stdout: process.stdout, argv: process.argv }): Promise<number> {
  const overrides: ConfigOverrides = overridesFrom(opts);
  if (opts.source) {
    const [kind, ...rest] = opts.source.split(':');
    overrides['source.kind'] = kind;
    if (kind === 'bag') overrides['source.bagPath'] = rest.join(':');
  }
  if (opts.mqtt === false) overrides['mqtt.enabled'] = false;
  if (opts.ros2 === true) overrides['ros2.enabled'] = 'on';
  // Run-time changes (ROS 2 parameters, SIGHUP) rebuild the config through the same validation.
  const runtime: ConfigOverrides = {};
  const reload = (): Readonly<BitmarConfig> => loadConfig({ file: opts.config, defaultFiles: defaultConfigFiles(), overrides: { ...overrides, ...runtime } });
  let cfg: Readonly<BitmarConfig>;
  try {
    cfg = reload();
  } catch (e) {
    process.stderr.write(`bitmar-node: ${(e as Error).message}\n`);
    return 2;
  }
  const log = createLogger(cfg.log.level);
  const life = new Lifecycle();
  const limiter = new RepeatLimiter(cfg.log.repeatIntervalMs);
  const say = (line: string): void => void io.stdout.write(line + '\n');
  const notifier = createNotifier(log);
  life.add('systemd notifier', () => notifier.dispose?.());
  let flow: Subscription | null = null;
  let stopping: Promise<number> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const stop = (code: number, why: string): Promise<number> => {
    if (stopping) return stopping;
    log.info(`stopping: ${why}`);
    notifier.stopping();
    stopping = (async () => {
      flow?.unsubscribe(); // cancels a running caption; its partial text is published as cancelled
      await life.dispose(log);
      log.debug({ handles: process.getActiveResourcesInfo() }, 'stopped');
      resolveDone(code);
      return code;
    })();
    return stopping;
  };

  try {
    const stateDir = resolveStateDir(cfg.stateDir);
    mkdirSync(stateDir, { recursive: true });

    // Model: runs in a worker thread, so the event loop (MQTT keep-alives, ROS callbacks) never blocks.
    const modelPath = cfg.model.path || defaultModelPath();
    const model = await startModel(modelPath, cfg, log);
    life.add('model', () => model.close());
    if (model.fallbackReason) say(`bitmar-node: ${model.fallbackReason}`);
    log.info({ model: model.name, kernels: model.kernels, path: modelPath }, 'model loaded');
    let prompt = cfg.generation.prompt;

    // Memory: SQLite under the state directory; the worker holds a copy of the live slots.
    let memory: NodeMemory | null = null;
    if (cfg.memory.enabled) {
      memory = openMemory(cfg, stateDir, model.episodeDim, model.worker, log);
      const m = memory;
      life.add('memory', () => m.close());
    }

    const metrics = new NodeMetrics();
    life.add('metrics', () => metrics.dispose());
    if (memory) metrics.memorySlots.set(cfg.memory.slots);
    if (cfg.metrics.port > 0) {
      try {
        const server = await metrics.serve(cfg.metrics.host, cfg.metrics.port);
        life.add('metrics server', server.close);
        log.info(`metrics on http://${cfg.metrics.host}:${server.port}/metrics`);
      } catch (e) {
        log.warn(`metrics server not started on ${cfg.metrics.host}:${cfg.metrics.port}: ${(e as Error).message} (use --metrics-port 0 to turn it off, or another port)`);
      }
    }

    // Foxglove live view: off unless a port is given.
    let foxglove: FoxgloveSink | null = null;
    if (cfg.foxglove.port > 0) {
      try {
        const fg = await createFoxgloveSink({ port: cfg.foxglove.port, host: cfg.foxglove.host, imageRateHz: cfg.foxglove.imageRateHz });
        foxglove = fg;
        life.add('foxglove', () => fg.close());
        say(`bitmar-node: Foxglove live view at ${fg.url}`);
      } catch (e) {
        log.warn(`Foxglove live view not started: ${(e as Error).message}`);
      }
    }

    // Camera images from MQTT and ROS 2 (JPEG/PNG, raw conversions) are decoded in a worker thread,
    // so the event loop never waits for a frame's pixels; it starts with the first image. With those
    // sources the sampling policy runs before decoding: a frame it drops is never decoded.
    const decodePool = new DecodePool({
      name: 'bitmar-image-decode',
      onRestart: (r) => {
        log.warn({ restarts: r.restarts, lost: r.lost }, `image decode worker stopped (${r.reason}); restarted`);
        // Straight to the metrics sink: the pool may restart before onEvent (below) exists.
        metrics.observe({ type: 'worker', worker: { worker: 'image-decode', state: 'restarted', restarts: r.restarts, reason: r.reason, lost: r.lost } });
      },
    });
    life.add('image decode worker', () => decodePool.close());
    const sampledAtSource = cfg.source.kind === 'mqtt' || cfg.source.kind === 'ros2';
    const sampler = createSampler(() => ({ everyN: cfg.pipeline.sampleEveryN, minIntervalMs: cfg.pipeline.minIntervalMs }));
    const shouldDecode = (): boolean => sampler(performance.now());
    if (sampledAtSource) decodePool.warm();

    // ROS 2: only behind the guard; its parameters may override the config.
    const ros2: NodeRos2 | null = await startRos2(cfg, {
      log,
      say,
      argv: io.argv,
      decodePool,
      ...(cfg.source.kind === 'ros2' ? { shouldDecode } : {}),
      onParameters: (changes) => {
        const next = { ...runtime };
        for (const c of changes) next[c.name] = c.value;
        try {
          Object.assign(runtime, next);
          cfg = reload();
          prompt = cfg.generation.prompt;
          memory?.setPolicy(cfg.memory.policy);
        } catch (e) {
          for (const c of changes) delete runtime[c.name];
          return (e as Error).message;
        }
      },
    });
    if (ros2) {
      life.add('ros2', () => ros2.close());
      for (const c of ros2.overridden) runtime[c.name] = c.value;
      if (ros2.overridden.length > 0) cfg = reload();
      metrics.connection.set({ transport: 'ros2' }, 1);
    }

    // MQTT: the embedded broker unless a URL is given.
    let mqtt: NodeMqtt | null = null;
    if (cfg.mqtt.enabled) {
      mqtt = await startMqtt(cfg, stateDir, model.name, requestHandlers(model, memory, () => prompt), log, say, {
        decodePool,
        ...(cfg.source.kind === 'mqtt' ? { shouldDecode } : {}),
      });
      const m = mqtt;
      life.add('mqtt', () => m.close());
      m.transport.on('connect', () => metrics.connection.set({ transport: 'mqtt' }, 1));
      m.transport.on('disconnect', () => metrics.connection.set({ transport: 'mqtt' }, 0));
      metrics.connection.set({ transport: 'mqtt' }, m.transport.stats().connected ? 1 : 0);
    }

    // Source: synthetic camera, MQTT, ROS 2 or a bag.
    const source = await openSource(cfg, { mqtt, ros2, log, say, decodePool });
    life.add('source', () => source.close());
    let frames$: Observable<Frame> = source.frames$;
    if (opts.frames !== undefined) frames$ = frames$.pipe(take(opts.frames));
    frames$ = frames$.pipe(
      tap((f) => {
        metrics.framesIn.inc({ source: f.source });
        foxglove?.frame(f);
      }),
    );
    const promptStreams: Observable<Prompt>[] = [];
    if (source.prompts$) promptStreams.push(source.prompts$);
    if (mqtt) promptStreams.push(mqtt.prompts$);
    if (ros2) promptStreams.push(ros2.prompts$);

    const pipeline = createPipeline({
      frames$,
      prompts$: merge(...promptStreams),
      describer: watchedDescriber(model, notifier),
      memory: memory?.sink ?? null,
      settings: () => settingsFrom(cfg, prompt, model.name),
      sampledAtSource,
      inputSilenceMs: cfg.pipeline.inputSilenceMs,
      // Images the source sampled out before decoding (or dropped while busy) count as input for the silence watch.
      ...(source.drops$ ? { sourceDrops$: source.drops$ } : {}),
      onPrompt: (p) => {
        prompt = p.text;
        log.info({ source: p.source }, `prompt set to "${p.text}"`);
      },
    });

    const recorder = opts.record ? await createMcapRecorder({ path: opts.record }) : null;
    if (recorder) {
      life.add('recorder', () => recorder.close());
      say(`bitmar-node: recording captions, memory events and diagnostics to ${opts.record}`);
    }
    const terminal = new TerminalSink(io.stdout, () => (memory ? memory.fill() : 'off'));
    life.add('terminal', () => terminal.close());
    let captionsDone = 0;
    const onEvent = (ev: PipelineEvent): void => {
      metrics.observe(ev);
      terminal.observe(ev);
      mqtt?.sink.observe(ev);
      ros2?.sink.observe(ev);
      recorder?.observe(ev);
      foxglove?.observe(ev);
      if (ev.type === 'caption') {
        captionsDone++;
        if (captionsDone % 10 === 1) {
          const s = terminal.status();
          notifier.status(`captions ${captionsDone}, ${s.fps.toFixed(1)} fps, p99 ${s.p99Ms.toFixed(0)} ms, drops ${s.drops}`);
        }
      }
      if (ev.type === 'memory' && memory) metrics.memorySlotsUsed.set(memory.used());
      if (ev.type === 'input') log[ev.input.state === 'silent' ? 'warn' : 'info']({ silentMs: Math.round(ev.input.silentMs) }, ev.input.message);
      if (ev.type === 'drop' && ev.drop.reason !== 'sampled_out') {
        const n = limiter.admit(`${ev.drop.stage}:${ev.drop.reason}`);
        if (n >= 0) log.warn({ stage: ev.drop.stage, reason: ev.drop.reason, suppressed: n }, ev.drop.detail ?? 'input dropped');
      }
    };
    pipeline.events$.subscribe({
      next: onEvent,
      error: (e: unknown) => {
        log.error({ err: e }, 'pipeline failed');
        void stop(1, 'pipeline error');
      },
      complete: () => void stop(0, 'source finished'),
    });
    // Inputs refused before the pipeline (decode errors, floods, bad UTF-8) are counted the same way.
    // (Each stream once: the MQTT and ROS 2 sources' drops$ are also `source.drops$` when they are the source.)
    const sourceDrops = merge(...new Set([source.drops$, mqtt?.drops$, ros2?.drops$].filter((d): d is NonNullable<typeof d> => d !== undefined))).subscribe((drop) =>
      onEvent({ type: 'drop', drop }),
    );
    life.add('drop counters', () => sourceDrops.unsubscribe());
    const periodic = setInterval(() => {
      mqtt?.sink.metrics({ captions: captionsDone, ...terminal.status() });
      foxglove?.metrics({ captions: captionsDone, ...terminal.status() });
      ros2?.publishDiagnostics();
    }, 5000);
    periodic.unref();
    life.add('periodic reports', () => clearInterval(periodic));

    flow = pipeline.start();
    notifier.setIdle(true);
    notifier.ready();
    log.info('ready');

    // First SIGINT/SIGTERM: clean stop. A second one while stopping: leave at once.
    const onSignal = (sig: string) => () => {
      if (stopping) {
        process.stderr.write(`bitmar-node: ${sig} again while stopping; exiting now\n`);
        process.exit(130);
      }
      void stop(0, sig);
    };
    process.on('SIGINT', onSignal('SIGINT'));
    process.on('SIGTERM', onSignal('SIGTERM'));
    process.on('SIGHUP', () => {
      notifier.reloading();
      try {
        cfg = reload();
        prompt = cfg.generation.prompt;
        memory?.setPolicy(cfg.memory.policy);
        log.info('configuration reloaded (model kept)');
      } catch (e) {
        log.error(`reload failed, keeping the old configuration: ${(e as Error).message}`);
      }
      notifier.ready();
    });
    if (opts.duration !== undefined) {
      const t = setTimeout(() => void stop(0, `--duration ${opts.duration}s reached`), opts.duration * 1000);
      t.unref();
      life.add('duration timer', () => clearTimeout(t));
    }
  } catch (e) {
    process.stderr.write(isBitmarError(e) ? `bitmar-node: ${e.message} [${e.code}]\n` : `bitmar-node: ${(e as Error).stack ?? String(e)}\n`);
    await stop(1, 'start failed');
    return 1;
  }
  return done;
}

export function registerRunCommand(program: Command): void {
  const cmd = new Command('run')
    .description('run the streaming node: sources → pipeline → model → memory → sinks (Ctrl-C stops cleanly)')
    .option('--source <kind>', 'frame source: synthetic, mqtt, ros2 or bag:FILE.mcap [source.kind]')
    .option('--duration <s>', 'stop after this many seconds (exit 0)', numArg('--duration'))
    .option('--frames <n>', 'stop after this many source frames (exit 0)', intArg('--frames'))
    .option('--record <file.mcap>', 'record captions, memory events and diagnostics as ROS 2 CDR in MCAP')
    .option('--no-mqtt', 'do not start MQTT (no embedded broker, no client) [mqtt.enabled]')
    .option('--ros2', 'force ROS 2 on (default: on when ROS 2 is sourced) [ros2.enabled]');
  addConfigFlags(cmd);
  cmd.action(async (opts: RunOptions) => {
    process.exitCode = await runNode(opts);
  });
  program.addCommand(cmd);
}

