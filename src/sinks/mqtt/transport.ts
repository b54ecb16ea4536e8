/**
 * One MQTT connection of the node, shared by the MQTT sink and source (mqtt.js 5).
 *
 * Lifecycle: `start()` → connecting ⇄ connected → `close()` (clean stop) or `destroy()` (as if killed).
 * Each connection attempt is a fresh mqtt.js client with `reconnectPeriod: 0`; this class owns
 * reconnection (jittered exponential backoff), queuing and resending:
 *  - QoS 0 (partial tokens, metrics): sent when connected and the socket is not backed up, else at
 *    most `offlineQueue.maxQoS0` kept while offline (mqtt.js would keep them all: queueQoSZero).
 *  - QoS 1 (status, memory events, responses): bounded offline queue, put back on a lost PUBACK.
 *  - Durable QoS 1 (final captions): outgoing store first, removed on PUBACK (outgoing-store.ts).
 *    The store writes its files off the event loop (an fsync can take 250 ms, which stalled the
 *    camera): a caption is sent once its file has landed (the store's `ready`), and a caption the
 *    disk refused is sent plain QoS 1 (`store_error`). `close()` waits for the store's file work.
 * On every connect: retained birth on `status` (the last will, set in CONNECT, is the retained
 * `offline`), then subscriptions, then the store, then the queue. Everything dropped is counted
 * by reason (`stats().dropped`) and announced on the `drop` event.
 *
 * MQTT 5 is the default. A broker that refuses it (aedes 1.x, the embedded broker, speaks 3.1.1
 * only) gets 3.1.1 on the next attempt unless `protocolFallback` is false; 3.1.1 has no properties,
 * so no message expiry, user properties, response topics, or shared subscriptions there.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { BitmarError } from '../../errors.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { JsonObject } from './json-schema.js';
import { redactingLogger, stderrLogger, type MqttLogger } from './logger.js';
import { OfflineQueue, type OfflineQueueOptions, type OutboundMessage, type PublishProperties } from './offline-queue.js';
import { FileOutgoingStore, MemoryOutgoingStore, type OutgoingStore, type OutgoingStoreOptions } from './outgoing-store.js';
import { buildStatusPayload, type MqttStats, type PayloadContext } from './payloads.js';
import { redactUrl, scrub } from './redact.js';
import { TOPIC_SCHEMA_VERSION } from './schemas.js';
import { nodeTopic, sanitizeNodeId, STREAMS, topicMatches } from './topics.js';

export interface MqttTlsOptions {
  /** CA certificate file (PEM) that signed the broker's certificate. */
  readonly ca?: string;
  /** Client certificate file (PEM), for brokers that require one. */
  readonly cert?: string;
  /** Client private key file (PEM). Never logged. */
  readonly key?: string;
  /** Verify the broker's certificate. Default true. */
  readonly rejectUnauthorized?: boolean;
}

export interface MqttTransportOptions {
  /** Broker URL: mqtt://host:1883, mqtts://host:8883, ws://, wss://. */
  readonly url: string;
  /** Topic level after the prefix; sanitized (topics.ts). Default: the host name. */
  readonly nodeId?: string;
  /** Default `bitmar-<nodeId>-<6 hex>`. */
  readonly clientId?: string;
  /** 5 (default) or 4 (3.1.1). */
  readonly protocolVersion?: 4 | 5;
  /** Retry with 3.1.1 when the broker refuses MQTT 5. Default true. */
  readonly protocolFallback?: boolean;
  readonly tls?: MqttTlsOptions;
  readonly username?: string;
  /** Never logged; scrubbed from error messages. */
  readonly password?: string;
  /** First topic level. Default `bitmar`. */
  readonly prefix?: string;
  /** Largest payload sent or accepted, bytes; larger is dropped as `too_large`. Default 10 MiB. */
  readonly maxPayloadBytes?: number;
  /**
   * MQTT 5: tell the broker our Maximum Packet Size (maxPayloadBytes + 64 KiB) so it never sends us
   * more (MQTT 5.0 §3.1.2.11.4); the broker then drops oversize messages itself. Default true.
   */
  readonly advertiseMaxPacketSize?: boolean;
  /** Keep-alive, seconds. Default 30. */
  readonly keepaliveSec?: number;
  /** CONNECT → CONNACK limit, milliseconds. Default 10 000. */
  readonly connectTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  readonly offlineQueue?: OfflineQueueOptions;
  /** Durable store of final captions; with `dir` it survives node restarts. Default: in memory. */
  readonly store?: OutgoingStoreOptions & { readonly dir?: string };
  /** Durable messages awaiting PUBACK at once. Default 32. */
  readonly maxInflight?: number;
  /** QoS 0 is dropped (`backpressure`) while the socket holds more than this many bytes. Default 1 MiB. */
  readonly socketHighWaterBytes?: number;
  /** Message expiry of partial tokens, seconds (MQTT 5 only). Default 10. */
  readonly partialExpirySec?: number;
  /** Model name for birth and user properties; `setModel` updates it. Default ''. */
  readonly model?: string;
  /** Version in the birth message. Default: package.json version. */
  readonly version?: string;
  /** Default: warnings and errors to stderr. Objects are redacted before logging. */
  readonly logger?: MqttLogger;
  /** [0, 1) source for backoff jitter (tests). */
  readonly random?: () => number;
}

/** A message as the source's handlers see it. */
export interface InboundMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
  readonly retain: boolean;
  /** MQTT 5 properties; empty on 3.1.1. User properties keep the last value of repeated keys. */
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly userProperties: Readonly<Record<string, string>>;
  /** Arrival, `performance.now()` milliseconds. */
  readonly receivedMs: number;
}

export type InboundHandler = (msg: InboundMessage) => void;

export interface DropNotice {
  readonly reason: string;
  /** `in`: a received message (image, prompt, request); `out`: one the node tried to publish. */
  readonly direction: 'in' | 'out';
  readonly topic?: string;
  readonly detail?: string;
}

export interface MqttTransportEvents {
  connect: [{ readonly protocolVersion: 4 | 5 }];
  disconnect: [];
  /** Connection problems (BITMAR_ERR_MQTT_CONNECT / BITMAR_ERR_MQTT_AUTH); the transport keeps retrying. */
  connectionError: [BitmarError];
  drop: [DropNotice];
  /** The broker acknowledged these topic filters (after each connect and each subscribe). */
  subscribed: [readonly string[]];
}

interface Subscription {
  readonly filter: string;
  readonly qos: 0 | 1;
  readonly handler: InboundHandler;
  readonly label: string;
}

const AUTH_CODES_V4 = new Set([4, 5]);
const AUTH_CODES_V5 = new Set([134, 135, 140]);
const KIB64 = 64 * 1024;

/** Version from package.json, or 0.0.0 when it cannot be read. */
function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    if (pkg !== null && typeof pkg === 'object' && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // fall through
  }
  return '0.0.0';
}

function readTlsFile(kind: string, path: string | undefined): Buffer | undefined {
  if (path === undefined || path === '') return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_MQTT_CONNECT', `Cannot read the MQTT TLS ${kind} file ${path}: ${(e as Error).message}. Fix mqtt.${kind}File.`, { cause: e });
  }
}

function openStore(options: MqttTransportOptions['store']): OutgoingStore {
  const dir = options?.dir;
  if (dir === undefined || dir === '') return new MemoryOutgoingStore(options ?? {});
  try {
    return new FileOutgoingStore(dir, options);
  } catch (e) {
    if (e instanceof RangeError) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `mqtt ${e.message}`, { cause: e });
    throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `The MQTT outgoing store directory ${dir} cannot be used: ${(e as Error).message}. Check the state directory and its permissions.`, { cause: e });
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `mqtt ${name} must be an integer >= 1, got ${v}`);
  return v;
}

export class MqttTransport extends EventEmitter<MqttTransportEvents> {
  readonly nodeId: string;
  readonly clientId: string;
  readonly prefix: string;
  readonly runId: string;
  readonly startedAt: string;
  readonly maxPayloadBytes: number;
  readonly partialExpirySec: number;
  private model: string;
  private readonly version: string;
  private readonly log: MqttLogger;
  private readonly backoff: Backoff;
  private readonly queue: OfflineQueue;
  private readonly store: OutgoingStore;
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private readonly subs = new Set<Subscription>();
  private readonly inflight = new Set<number>();
  private readonly published: Record<string, number> = { qos0: 0, qos1: 0, durable: 0 };
  private readonly received: Record<string, number> = {};
  private readonly dropped: Record<string, number> = {};
  private readonly lastDropLogMs = new Map<string, number>();
  private protocol: 4 | 5;
  private client: MqttClient | null = null;
  private connected = false;
  private started = false;
  private stopping = false;
  private retryNow = false;
  private connects = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private lastErrorText = '';
  private lastError: BitmarError | null = null;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  /** Validates the options and reads the TLS files; throws BitmarError (CONFIG_INVALID, MQTT_CONNECT). Connects on `start()`. */
  constructor(private readonly options: MqttTransportOptions) {
    super();
    if (typeof options.url !== 'string' || !/^(mqtts?|tcp|ssl|wss?):\/\//.test(options.url)) {
      throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `mqtt.url must start with mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://, got "${redactUrl(String(options.url))}"`);
    }
    this.nodeId = sanitizeNodeId(options.nodeId === undefined || options.nodeId === '' ? undefined : options.nodeId);
    this.prefix = options.prefix ?? 'bitmar';
    if (this.prefix.length === 0 || /[/+#]/.test(this.prefix)) {
      throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `mqtt prefix must be one topic level (no '/', '+', '#'), got "${this.prefix}"`);
    }
    this.clientId = options.clientId !== undefined && options.clientId !== '' ? options.clientId : `bitmar-${this.nodeId}-${randomBytes(3).toString('hex')}`;
    this.protocol = options.protocolVersion ?? 5;
    if (this.protocol !== 4 && this.protocol !== 5) {
      throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `mqtt.protocolVersion must be 4 (3.1.1) or 5, got ${String(this.protocol)}`);
    }
    this.maxPayloadBytes = positiveInt('maxPayloadBytes', options.maxPayloadBytes ?? 10 * 1024 * 1024);
    this.partialExpirySec = positiveInt('partialExpirySec', options.partialExpirySec ?? 10);
    positiveInt('maxInflight', options.maxInflight ?? 32);
    this.model = options.model ?? '';
    this.version = options.version ?? packageVersion();
    this.log = redactingLogger(options.logger ?? stderrLogger);
    this.backoff = new Backoff(options.backoff, options.random);
    this.queue = new OfflineQueue(options.offlineQueue);
    this.store = openStore(options.store);
    this.store.listener = {
      ready: () => this.pump(),
      writeFailed: (_id, msg, error) => this.sendUnstored(msg, error),
      corrupt: (id) => {
        this.countDrop({ reason: 'store_corrupt', direction: 'out', detail: `stored message ${id} unreadable` });
        this.pump();
      },
    };
    if (this.store.corrupt > 0) this.countDrop({ reason: 'store_corrupt', direction: 'out', detail: `${this.store.corrupt} unreadable stored message(s) removed` }, this.store.corrupt);
    this.tlsFiles = {
      ca: readTlsFile('ca', options.tls?.ca),
      cert: readTlsFile('cert', options.tls?.cert),
      key: readTlsFile('key', options.tls?.key),
    };
    this.startedAt = new Date().toISOString();
    this.runId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  }

  /** Who publishes, for payload builders. */
  get context(): PayloadContext {
    return { nodeId: this.nodeId, runId: this.runId };
  }

  /** `<prefix>/<nodeId>/<stream>`. */
  topic(stream: string): string {
    return nodeTopic(this.prefix, this.nodeId, stream);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The protocol of the current (or next) connection: 5, or 4 after a fallback. */
  get protocolVersion(): 4 | 5 {
    return this.protocol;
  }

  get modelName(): string {
    return this.model;
  }

  /** Sets the model named in birth and user properties; republishes the birth when connected. */
  setModel(model: string): void {
    if (model === this.model) return;
    this.model = model;
    if (this.connected) this.publishBirth();
  }

  /** Starts connecting in the background; messages published before the first connect are queued. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.connectNow();
  }

  /**
   * Resolves once connected. Rejects with BITMAR_ERR_MQTT_AUTH as soon as the broker refuses the
   * credentials, or with the last BITMAR_ERR_MQTT_CONNECT after `timeoutMs` (default 10 000).
   */
  whenConnected(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(this.lastError ?? new BitmarError('BITMAR_ERR_MQTT_CONNECT', `Not connected to the MQTT broker at ${redactUrl(this.options.url)} after ${timeoutMs} ms.`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** MQTT 5 properties of a JSON publish; none on 3.1.1. */
  jsonProperties(extra: PublishProperties = {}, model = this.model): PublishProperties | undefined {
    if (this.protocol !== 5) return undefined;
    return {
      contentType: 'application/json',
      payloadFormatIndicator: true,
      ...extra,
      userProperties: { schema: TOPIC_SCHEMA_VERSION, model, ...(extra.userProperties ?? {}) },
    };
  }

  /**
   * Sends (or queues) one message. Returns false when it was dropped (counted): too large, QoS 0
   * on a backed-up socket, or no room offline.
   */
  publish(topic: string, payload: Buffer | string | JsonObject, opts: { qos: 0 | 1; retain?: boolean; properties?: PublishProperties }): boolean {
    const msg = this.message(topic, payload, opts.qos, opts.retain ?? false, opts.properties);
    if (msg === undefined) return false;
    if (this.connected && this.client !== null) {
      if (msg.qos === 0 && this.socketBacklog() > (this.options.socketHighWaterBytes ?? 1024 * 1024)) {
        this.countDrop({ reason: 'backpressure', direction: 'out', topic });
        return false;
      }
      this.send(this.client, msg);
      return true;
    }
    const { accepted, dropped } = this.queue.push(msg);
    for (const reason of dropped) this.countDrop({ reason, direction: 'out', topic });
    return accepted;
  }

  /**
   * Stores a QoS 1 message durably, then sends it; it is resent after reconnects and restarts until
   * its PUBACK arrives. Returns false when it was too large (counted).
   */
  publishDurable(topic: string, payload: Buffer | string | JsonObject, properties?: PublishProperties): boolean {
    const msg = this.message(topic, payload, 1, false, properties);
    if (msg === undefined) return false;
    let evicted: number;
    try {
      ({ evicted } = this.store.append(msg));
    } catch (e) {
      // Larger than the store: still try to send it, not durably.
      return this.sendUnstored(msg, e as Error);
    }
    if (evicted > 0) this.countDrop({ reason: 'store_full', direction: 'out', topic, detail: 'oldest stored captions dropped' }, evicted);
    this.pump(); // sends it now from an in-memory store; a file store calls pump again once written
    return true;
  }

  /** Resolves when the durable store's file work is done: every caption accepted so far is on disk, or was refused by the disk and sent (or queued) plain. */
  settled(): Promise<void> {
    return this.store.settled();
  }

  /** A durable message the store could not keep (too large; the disk refused its file: full, read-only): counted, then sent plain QoS 1. */
  private sendUnstored(msg: OutboundMessage, error: Error): boolean {
    const detail = `not stored (${error.message}); sent without the durable store`;
    this.countDrop({ reason: 'store_error', direction: 'out', topic: msg.topic, detail });
    return this.publish(msg.topic, msg.payload, { qos: 1, ...(msg.properties !== undefined ? { properties: msg.properties } : {}) });
  }

  /** Messages still to deliver: durable ones (stored or in flight) and the offline queue. */
  get pending(): number {
    return this.store.size + this.queue.length;
  }

  /** Resolves when nothing is pending or after `timeoutMs`; true when everything was delivered. */
  async drain(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.pending === 0;
  }

  /**
   * Subscribes now (when connected) and after every reconnect. `label` names the input in
   * `stats().received` (image, prompt, request). Returns the unsubscribe function.
   */
  subscribe(filter: string, qos: 0 | 1, handler: InboundHandler, label = 'other'): () => void {
    const sub: Subscription = { filter, qos, handler, label };
    this.subs.add(sub);
    if (this.connected && this.client !== null) this.subscribeAll(this.client, [sub]);
    return () => {
      if (!this.subs.delete(sub)) return;
      const stillUsed = [...this.subs].some((s) => s.filter === filter);
      if (!stillUsed && this.connected && this.client !== null) this.client.unsubscribe(filter);
    };
  }

  /** Topic filters subscribed. */
  get subscriptions(): string[] {
    return [...new Set([...this.subs].map((s) => s.filter))];
  }

  /** Counts a dropped input or output by reason (also used by the MQTT source) and emits `drop`. */
  countDrop(notice: DropNotice, n = 1): void {
    const { reason, topic, detail } = notice;
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
    this.emit('drop', notice);
    const now = Date.now();
    if (now - (this.lastDropLogMs.get(reason) ?? 0) >= 10_000) {
      this.lastDropLogMs.set(reason, now);
      this.log.warn({ reason, topic, detail, total: this.dropped[reason] }, `MQTT message dropped (${reason}); further drops of this kind are counted in metrics, logged at most every 10 s`);
    }
  }

  stats(): MqttStats {
    return {
      connected: this.connected,
      protocolVersion: this.protocol,
      connects: this.connects,
      published: { ...this.published },
      received: { ...this.received },
      dropped: { ...this.dropped },
      queued: { offline: this.queue.length, offlineBytes: this.queue.bytes, durable: this.store.size, durableBytes: this.store.bytes },
    };
  }

  /**
   * Clean stop: waits for the store's file work (captions accepted so far reach the disk, and are
   * sent as they land while connected), publishes the retained `offline` status and waits up to
   * `timeoutMs` (default 3000) for it, waits for in-flight captions (the file work and this share
   * one `timeoutMs`), then disconnects normally (the broker discards the last will). Undelivered captions stay in the
   * store directory for the next start; the offline queue is dropped (counted as `lost_on_close`).
   */
  async close(timeoutMs = 3000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.clearReconnect();
    const deadline = Date.now() + timeoutMs;
    await this.settleStore(timeoutMs);
    const client = this.client;
    if (client !== null && this.connected) {
      const offline = this.statusPayload('offline', 'stopped');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        client.publish(this.topic(STREAMS.status), offline, { qos: 1, retain: true, properties: this.jsonProperties() }, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await this.drainInflight(Math.max(0, deadline - Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.end(true);
          resolve();
        }, timeoutMs);
        client.end(false, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } else {
      client?.end(true);
    }
    this.finishStop();
  }

  /**
   * Drops the connection without DISCONNECT, as a crash would: the broker publishes the last will.
   * Stored captions stay for the next start. For fatal errors and tests.
   */
  destroy(): void {
    this.stopping = true;
    this.clearReconnect();
    this.client?.end(true);
    this.finishStop();
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  private connectNow(): void {
    this.reconnectTimer = null;
    if (this.stopping) return;
    const v5 = this.protocol === 5;
    const will = {
      topic: this.topic(STREAMS.status),
      payload: this.statusPayload('offline', 'connection lost'),
      qos: 1 as const,
      retain: true,
      ...(v5 ? { properties: this.jsonProperties() } : {}),
    };
    const opts: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: this.protocol,
      clean: true,
      keepalive: this.options.keepaliveSec ?? 30,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      reconnectPeriod: 0,
      queueQoSZero: false,
      resubscribe: false,
      will,
      ...(this.options.username !== undefined && this.options.username !== '' ? { username: this.options.username } : {}),
      ...(this.options.password !== undefined && this.options.password !== '' ? { password: this.options.password } : {}),
      ...(v5 && (this.options.advertiseMaxPacketSize ?? true) ? { properties: { maximumPacketSize: this.maxPayloadBytes + KIB64 } } : {}),
      ...(this.tlsFiles.ca !== undefined ? { ca: this.tlsFiles.ca } : {}),
      ...(this.tlsFiles.cert !== undefined ? { cert: this.tlsFiles.cert } : {}),
      ...(this.tlsFiles.key !== undefined ? { key: this.tlsFiles.key } : {}),
      rejectUnauthorized: this.options.tls?.rejectUnauthorized ?? true,
      log: () => {},
    };
    let client: MqttClient;
    try {
      client = mqtt.connect(this.options.url, opts);
    } catch (e) {
      this.onConnectionError(e as Error);
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('error', (err) => {
      if (this.client === client) this.onConnectionError(err);
    });
    client.on('close', () => this.onClose(client));
  }

  private onConnect(client: MqttClient, _connack: IConnackPacket): void {
    if (this.client !== client || this.stopping) return;
    const wasError = this.lastErrorText !== '';
    this.connected = true;
    this.connects++;
    this.backoff.reset();
    this.lastErrorText = '';
    this.lastError = null;
    this.inflight.clear();
    (wasError ? this.log.warn : this.log.info)({ url: this.options.url, clientId: this.clientId, protocolVersion: this.protocol }, 'MQTT connected');
    this.publishBirth();
    this.subscribeAll(client, [...this.subs]);
    this.pump();
    this.flushQueue(client);
    this.emit('connect', { protocolVersion: this.protocol });
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private onClose(client: MqttClient): void {
    if (this.client !== client) return;
    this.client = null;
    const wasConnected = this.connected;
    this.connected = false;
    this.inflight.clear(); // stored captions are resent after the next connect
    client.end(true); // fails the callbacks of QoS 1 publishes still in flight: they are re-queued
    if (wasConnected) {
      // our own close() ends the connection too: that is a stop, not a loss
      if (!this.stopping) this.log.warn({ url: this.options.url }, 'MQTT connection lost; reconnecting with backoff');
      this.emit('disconnect');
    }
    if (!this.stopping) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== null) return;
    const delayMs = this.retryNow ? 0 : this.backoff.next();
    this.retryNow = false;
    this.reconnectTimer = setTimeout(() => this.connectNow(), delayMs);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private finishStop(): void {
    if (this.queue.length > 0) this.countDrop({ reason: 'lost_on_close', direction: 'out', detail: 'offline queue not delivered at stop' }, this.queue.length);
    this.queue.clear();
    this.client = null;
    this.connected = false;
    const err = new BitmarError('BITMAR_ERR_MQTT_CONNECT', 'The MQTT transport was stopped.');
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
  }

  /** Classifies a connection error, logs it once per distinct message, and emits `connectionError`. */
  private onConnectionError(err: Error): void {
    const code = (err as Error & { code?: unknown }).code;
    const rc = typeof code === 'number' ? code : undefined;
    const url = redactUrl(this.options.url);
    const raw = scrub(err.message, [this.options.password]);
    if (rc !== undefined && this.protocol === 5 && (rc === 1 || rc === 132) && (this.options.protocolFallback ?? true)) {
      this.protocol = 4;
      this.retryNow = true;
      this.log.warn({ url }, 'The MQTT broker refused MQTT 5 (aedes 1.x, the embedded broker, speaks 3.1.1 only); using MQTT 3.1.1: no message expiry, user properties, response topics or shared subscriptions');
      return;
    }
    let error: BitmarError;
    if (rc !== undefined && (this.protocol === 5 ? AUTH_CODES_V5 : AUTH_CODES_V4).has(rc)) {
      const who = this.options.username ? `user "${this.options.username}"` : 'an anonymous client (no username set)';
      error = new BitmarError(
        'BITMAR_ERR_MQTT_AUTH',
        `The MQTT broker at ${url} rejected ${who}: ${raw} (reason code ${rc}). Check mqtt.username and mqtt.password (or BITMAR_MQTT_USERNAME / BITMAR_MQTT_PASSWORD) and the broker's password file and ACL.`,
        { cause: err },
      );
    } else {
      error = new BitmarError('BITMAR_ERR_MQTT_CONNECT', `Cannot connect to the MQTT broker at ${url}: ${raw}. Retrying with backoff; check mqtt.url, that the broker runs, and TLS settings.`, { cause: err });
    }
    this.lastError = error;
    if (error.message !== this.lastErrorText) {
      this.lastErrorText = error.message;
      this.log.error({ code: error.code, url }, error.message);
    }
    this.emit('connectionError', error);
    if (error.code === 'BITMAR_ERR_MQTT_AUTH') {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(error);
    }
  }

  // ---- outgoing ------------------------------------------------------------------------------

  private message(topic: string, payload: Buffer | string | JsonObject, qos: 0 | 1, retain: boolean, properties?: PublishProperties): OutboundMessage | undefined {
    const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    if (bytes.length > this.maxPayloadBytes) {
      this.countDrop({ reason: 'too_large', direction: 'out', topic, detail: `${bytes.length} bytes > maxPayloadBytes ${this.maxPayloadBytes}` });
      return undefined;
    }
    return { topic, payload: bytes, qos, retain, ...(properties !== undefined ? { properties } : {}) };
  }

  private socketBacklog(): number {
    const stream: unknown = this.client?.stream;
    if (stream !== null && typeof stream === 'object' && 'writableLength' in stream && typeof stream.writableLength === 'number') {
      return stream.writableLength;
    }
    return 0;
  }

  /** Writes one message; a QoS 1 message whose connection drops before PUBACK goes back to the queue. */
  private send(client: MqttClient, msg: OutboundMessage): void {
    const props = this.protocol === 5 ? msg.properties : undefined;
    client.publish(msg.topic, msg.payload, { qos: msg.qos, retain: msg.retain, ...(props !== undefined ? { properties: props } : {}) }, (err) => {
      if (err === undefined || err === null) {
        this.published[msg.qos === 0 ? 'qos0' : 'qos1']++;
        return;
      }
      if (msg.qos === 1 && !this.stopping) {
        for (const reason of this.queue.unshift(msg)) this.countDrop({ reason, direction: 'out', topic: msg.topic });
      } else if (msg.qos === 1) {
        this.countDrop({ reason: 'lost_on_close', direction: 'out', topic: msg.topic });
      }
    });
  }

  private flushQueue(client: MqttClient): void {
    for (let msg = this.queue.shift(); msg !== undefined; msg = this.queue.shift()) this.send(client, msg);
  }

  /**
   * Sends stored messages, oldest first, keeping at most maxInflight awaiting PUBACK. Stops at the
   * first one not sendable yet (its file not written, or being read back from disk): the store's
   * `ready` calls pump again, so the order holds.
   */
  private pump(): void {
    const client = this.client;
    if (!this.connected || client === null) return;
    const maxInflight = this.options.maxInflight ?? 32;
    // Acknowledged ids leave the store, so the head of ids() is the in-flight set: this loop is O(maxInflight).
    for (const id of this.store.ids()) {
      if (this.inflight.size >= maxInflight) break;
      if (this.inflight.has(id)) continue;
      if (!this.store.persisted(id)) break; // written in id order: the later ones are not yet either
      const msg = this.store.read(id);
      if (msg === undefined) break; // being read back from disk: `ready` follows
      this.inflight.add(id);
      const props = this.protocol === 5 ? msg.properties : undefined;
      client.publish(msg.topic, msg.payload, { qos: 1, retain: msg.retain, ...(props !== undefined ? { properties: props } : {}) }, (err) => {
        if (this.client !== client) return; // an older connection: the id is resent by the current one
        this.inflight.delete(id);
        if (err === undefined || err === null) {
          this.store.remove(id);
          this.published.durable++;
          this.pump();
        }
      });
    }
  }

  /** Waits for the store's file work, at most `timeoutMs`. */
  private async settleStore(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.store.settled(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async drainInflight(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inflight.size > 0 && this.connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private statusPayload(state: 'online' | 'offline', reason: 'connected' | 'stopped' | 'connection lost'): string {
    return JSON.stringify(
      buildStatusPayload(
        {
          state,
          reason,
          version: this.version,
          model: this.model,
          startedAt: this.startedAt,
          ...(state === 'online' ? { protocolVersion: this.protocol, topics: { subscribed: this.subscriptions } } : {}),
        },
        this.context,
      ),
    );
  }

  private publishBirth(): void {
    if (this.client === null) return;
    this.send(this.client, {
      topic: this.topic(STREAMS.status),
      payload: Buffer.from(this.statusPayload('online', 'connected')),
      qos: 1,
      retain: true,
      ...(this.protocol === 5 ? { properties: this.jsonProperties() } : {}),
    });
  }

  // ---- incoming ------------------------------------------------------------------------------

  private subscribeAll(client: MqttClient, subs: readonly Subscription[]): void {
    if (subs.length === 0) return;
    const map: Record<string, { qos: 0 | 1 }> = {};
    for (const s of subs) map[s.filter] = { qos: Math.max(map[s.filter]?.qos ?? 0, s.qos) as 0 | 1 };
    client.subscribe(map, (err, granted) => {
      if (err) {
        this.log.error({ filters: Object.keys(map), error: scrub(err.message, [this.options.password]) }, 'MQTT subscribe failed');
        return;
      }
      const ok = (granted ?? []).filter((g) => g.qos !== 128).map((g) => g.topic);
      if (ok.length > 0) this.emit('subscribed', ok);
      for (const g of granted ?? []) {
        if (g.qos === 128) {
          const hint = g.topic.startsWith('$share/') && this.protocol === 4 ? ' (shared subscriptions need an MQTT 5 broker such as Mosquitto 2)' : '';
          this.log.error({ filter: g.topic }, `The MQTT broker refused the subscription to ${g.topic}${hint}; check the broker ACL`);
          this.emit('connectionError', new BitmarError('BITMAR_ERR_MQTT_CONNECT', `The MQTT broker refused the subscription to ${g.topic}${hint}.`));
        }
      }
    });
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const matching = [...this.subs].filter((s) => topicMatches(s.filter, topic));
    const label = matching[0]?.label ?? 'unknown';
    this.received[label] = (this.received[label] ?? 0) + 1;
    if (payload.length > this.maxPayloadBytes) {
      this.countDrop({ reason: 'too_large', direction: 'in', topic, detail: `${payload.length} bytes > maxPayloadBytes ${this.maxPayloadBytes}` });
      return;
    }
    if (matching.length === 0) {
      this.countDrop({ reason: 'unknown_topic', direction: 'in', topic });
      return;
    }
    const p = packet.properties;
    const userProperties: Record<string, string> = {};
    for (const [k, v] of Object.entries(p?.userProperties ?? {})) {
      const last = Array.isArray(v) ? v[v.length - 1] : v;
      if (typeof last === 'string') userProperties[k] = last;
    }
    const msg: InboundMessage = {
      topic,
      payload,
      qos: packet.qos,
      retain: packet.retain,
      userProperties,
      receivedMs: performance.now(),
      ...(p?.contentType !== undefined ? { contentType: p.contentType } : {}),
      ...(p?.responseTopic !== undefined ? { responseTopic: p.responseTopic } : {}),
      ...(p?.correlationData !== undefined ? { correlationData: p.correlationData } : {}),
    };
    // Overlapping filters of one handler (a filter and its $share twin) deliver once.
    const seen = new Set<InboundHandler>();
    for (const s of matching) {
      if (seen.has(s.handler)) continue;
      seen.add(s.handler);
      try {
        s.handler(msg);
      } catch (e) {
        this.countDrop({ reason: 'handler_error', direction: 'in', topic, detail: (e as Error).message });
      }
    }
  }
}
