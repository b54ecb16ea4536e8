/** MQTT for `run`: the embedded broker unless a URL is given, the transport, sink and source. */
import { join } from 'node:path';
import type { Observable } from 'rxjs';
import type { BitmarConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../sinks/mqtt/embedded-broker.js';
import type { MqttLogger } from '../../sinks/mqtt/logger.js';
import { createMqttSink, type MqttSink } from '../../sinks/mqtt/mqtt-sink.js';
import { MqttTransport } from '../../sinks/mqtt/transport.js';
import type { DecodePool } from '../../sources/image/decode-pool.js';
import { createMqttSource, type MqttSource } from '../../sources/mqtt/mqtt-source.js';
import type { MqttRequestHandlers } from '../../sources/mqtt/requests.js';
import type { DropEvent, Frame, Prompt } from '../../types.js';

export interface NodeMqtt {
  readonly url: string;
  readonly transport: MqttTransport;
  readonly sink: MqttSink;
  readonly frames$: Observable<Frame>;
  readonly prompts$: Observable<Prompt>;
  readonly drops$: Observable<DropEvent>;
  close(): Promise<void>;
}

/** How the MQTT source treats images. */
export interface MqttImageOptions {
  /** Where images are decoded (off the event loop); default: in the message handler. */
  readonly decodePool?: DecodePool;
  /** The sampler's decision, asked before decoding an image (sample-frames.ts createSampler). */
  readonly shouldDecode?: (topic: string) => boolean;
}

function mqttLogger(log: Logger): MqttLogger {
  return {
    info: (obj, msg) => log.info(obj, msg),
    warn: (obj, msg) => log.warn(obj, msg),
    error: (obj, msg) => log.error(obj, msg),
  };
}

export async function startMqtt(
  cfg: Readonly<BitmarConfig>,
  stateDir: string,
  modelName: string,
  handlers: MqttRequestHandlers,
  log: Logger,
  say: (line: string) => void,
  images: MqttImageOptions = {},
): Promise<NodeMqtt> {
  let broker: EmbeddedBroker | null = null;
  let url = cfg.mqtt.url;
  if (!url) {
    broker = await startEmbeddedBroker({ host: cfg.mqtt.embeddedHost, port: cfg.mqtt.embeddedPort, fallbackToFreePort: true });
    if (broker.portInUse) say(`bitmar-node: ${broker.message ?? `port ${cfg.mqtt.embeddedPort} is in use; using ${broker.port}`}`);
    url = broker.url;
    say(`bitmar-node: embedded MQTT broker at ${url} (try: mosquitto_sub -h ${broker.host} -p ${broker.port} -t 'bitmar/#' -v)`);
  }
  const transport = new MqttTransport({
    url,
    nodeId: cfg.mqtt.nodeId || undefined,
    clientId: cfg.mqtt.clientId || undefined,
    protocolVersion: cfg.mqtt.protocolVersion,
    username: cfg.mqtt.username || undefined,
    password: cfg.mqtt.password || undefined,
    tls: cfg.mqtt.caFile || cfg.mqtt.certFile ? { ca: cfg.mqtt.caFile || undefined, cert: cfg.mqtt.certFile || undefined, key: cfg.mqtt.keyFile || undefined } : undefined,
    maxPayloadBytes: cfg.pipeline.maxPayloadBytes,
    store: { dir: join(stateDir, 'mqtt-outgoing') },
    model: modelName,
    logger: mqttLogger(log),
  });
  transport.on('connectionError', (e) => log.warn(`MQTT: ${e.message}`));
  transport.start();
  try {
    await transport.whenConnected(broker ? 5000 : 2000);
  } catch {
    log.warn(`MQTT broker ${url} not reachable yet; captions are queued (bounded) and sent when it is`);
  }
  const sink = createMqttSink(transport);
  const source: MqttSource = createMqttSource(transport, {
    shareGroup: cfg.mqtt.shareGroup || undefined,
    handlers,
    ...(images.decodePool !== undefined ? { decodePool: images.decodePool } : {}),
    ...(images.shouldDecode !== undefined ? { shouldDecode: images.shouldDecode } : {}),
  });
  return {
    url,
    transport,
    sink,
    frames$: source.frames$,
    prompts$: source.prompts$,
    drops$: source.drops$,
    async close() {
      source.close();
      await sink.close(2000);
      await transport.close(2000);
      await broker?.close();
    },
  };
}
