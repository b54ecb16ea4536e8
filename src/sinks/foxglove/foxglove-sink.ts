/**
 * A Foxglove WebSocket server (protocol v1, protocol.ts) showing the node live: frames, captions as
 * they stream, memory events, drops and periodic metrics (channels.ts). Off by default; the node
 * starts it when `foxglove.port` is set. Open Foxglove → "Open connection" → Foxglove WebSocket →
 * ws://<host>:<port>.
 *
 * Lifecycle: `await createFoxgloveSink()` (listening) → observe/frame/metrics → `await close()`.
 * Nothing is serialized for a channel nobody subscribed to, frames are encoded at most
 * `imageRateHz` times per second, and a client whose socket backs up past `maxBufferedBytes` misses
 * messages (counted in `stats().dropped`) rather than growing the node's memory.
 *
 * The preview JPEG (tens of ms for a 720p frame) is encoded in a worker thread
 * (src/sources/image/decode-pool.ts, started when the first image is due): the event loop only
 * copies the frame's pixels. One encode at a time: a frame that comes due while one is still
 * encoding is skipped (`stats().imagesSkipped`).
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { PipelineEvent } from '../../pipeline/events.js';
import { DecodePool } from '../../sources/image/decode-pool.js';
import type { Frame } from '../../types.js';
import { CHANNELS, captionMessage, dropMessage, imageMessage, memoryMessage, tokenMessage, type ChannelName, type Json } from './channels.js';
import { jpegFrame } from './jpeg-frame.js';
import { advertise, messageData, parseClientRequest, serverInfo, status, STATUS_LEVEL, SUBPROTOCOL, type AdvertisedChannel } from './protocol.js';

export interface FoxgloveSinkOptions {
  /** TCP port; 0 picks a free one (see `port`). */
  readonly port: number;
  /** Interface to bind. Default 127.0.0.1 (the live view shows camera frames: keep it local unless asked). */
  readonly host?: string;
  /** Server name shown by Foxglove. Default `bitmar-node`. */
  readonly name?: string;
  /** Most frames sent per second on the image channel. Default 2. */
  readonly imageRateHz?: number;
  /** Width frames are downscaled to, at most, pixels. Default 320. */
  readonly imageMaxWidth?: number;
  /** JPEG quality 1–100. Default 70. */
  readonly jpegQuality?: number;
  /** A client whose socket holds more than this many bytes misses messages. Default 8 MiB. */
  readonly maxBufferedBytes?: number;
  /** Wall clock for message timestamps, ns since the epoch. Default Date.now. */
  readonly nowNs?: () => bigint;
  /** Encode the preview JPEG in a worker thread (default true); false encodes it on the event loop. */
  readonly encodeInWorker?: boolean;
}

export interface FoxgloveSink {
  /** The bound port. */
  readonly port: number;
  /** ws://host:port. */
  readonly url: string;
  /** Routes a pipeline event (token, caption, memory, drop) to its channel. Never throws. */
  observe(ev: PipelineEvent): void;
  /** Offers a frame to the image channel (encoded only when subscribed and due). Never throws. */
  frame(f: Frame): void;
  /** Publishes a metrics snapshot (e.g. the terminal status line's numbers). Never throws. */
  metrics(snapshot: Readonly<Record<string, unknown>>): void;
  /**
   * Clients connected, messages sent and dropped (socket backed up, or a preview that failed to
   * encode), client requests refused, due frames skipped because the previous one was still encoding.
   */
  stats(): { clients: number; sent: number; dropped: number; refused: number; imagesSkipped: number };
  /** Closes every connection (1001 going away) and the server. */
  close(): Promise<void>;
}

const NAMES = Object.keys(CHANNELS) as ChannelName[];

/** Per-connection state: its subscriptions, by subscription id and by channel. */
interface Client {
  readonly ws: WebSocket;
  readonly subs: Map<number, ChannelName>;
}

/** Starts the server; resolves once it listens. Rejects when the port cannot be bound. */
export async function createFoxgloveSink(opts: FoxgloveSinkOptions): Promise<FoxgloveSink> {
  const host = opts.host ?? '127.0.0.1';
  const imageIntervalMs = 1000 / (opts.imageRateHz ?? 2);
  const maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
  const nowNs = opts.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
  const channels: AdvertisedChannel[] = NAMES.map((name, i) => ({
    id: i + 1,
    topic: CHANNELS[name].topic,
    encoding: 'json',
    schemaName: CHANNELS[name].schemaName,
    schema: JSON.stringify(CHANNELS[name].schema),
    schemaEncoding: 'jsonschema',
  }));
  const channelOf = new Map<number, ChannelName>(NAMES.map((name, i) => [i + 1, name]));
  const clients = new Set<Client>();
  const counts = { sent: 0, dropped: 0, refused: 0, imagesSkipped: 0 };
  const sessionId = Date.now().toString(36);
  let lastImageMs = -Infinity;
  const inWorker = opts.encodeInWorker ?? true;
  let encoder: DecodePool | null = null;
  let closed = false;

  const wss = new WebSocketServer({
    host,
    port: opts.port,
    maxPayload: 64 * 1024, // clients only send small JSON requests
    handleProtocols: (protocols: Set<string>) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  wss.on('error', () => undefined); // after listening, errors belong to connections

  const refuse = (c: Client, message: string): void => {
    counts.refused++;
    c.ws.send(status(STATUS_LEVEL.error, message));
  };

  const onRequest = (c: Client, data: RawData, isBinary: boolean): void => {
    if (isBinary) return refuse(c, 'binary client messages are not supported (no clientPublish/services capability)');
    const req = parseClientRequest(data.toString());
    switch (req.op) {
      case 'subscribe':
        for (const s of req.subscriptions) {
          const name = channelOf.get(s.channelId);
          if (name === undefined) refuse(c, `subscribe: unknown channel ${s.channelId}`);
          else if (c.subs.has(s.id)) refuse(c, `subscribe: subscription id ${s.id} is in use`);
          else c.subs.set(s.id, name);
        }
        break;
      case 'unsubscribe':
        for (const id of req.subscriptionIds) c.subs.delete(id);
        break;
      case 'invalid':
        refuse(c, req.reason);
        break;
    }
  };

  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    if (ws.protocol !== SUBPROTOCOL) {
      ws.close(1002, `subprotocol ${SUBPROTOCOL} required`);
      return;
    }
    const c: Client = { ws, subs: new Map() };
    clients.add(c);
    ws.on('message', (data, isBinary) => onRequest(c, data, isBinary));
    ws.on('close', () => clients.delete(c));
    ws.on('error', () => clients.delete(c));
    ws.send(serverInfo(opts.name ?? 'bitmar-node', sessionId, { node: 'bitmar-node' }));
    ws.send(advertise(channels));
  });

  const isSubscribed = (name: ChannelName): boolean => {
    for (const c of clients) for (const n of c.subs.values()) if (n === name) return true;
    return false;
  };

  /** Serializes once and sends to every subscription of the channel. */
  const publish = (name: ChannelName, message: () => Json): void => {
    if (!isSubscribed(name)) return;
    let payload: Buffer;
    try {
      payload = Buffer.from(JSON.stringify(message()));
    } catch {
      counts.dropped++;
      return;
    }
    const t = nowNs();
    for (const c of clients) {
      for (const [id, n] of c.subs) {
        if (n !== name) continue;
        if (c.ws.readyState !== c.ws.OPEN || c.ws.bufferedAmount > maxBuffered) {
          counts.dropped++;
          continue;
        }
        c.ws.send(messageData(id, t, payload));
        counts.sent++;
      }
    }
  };

  const address = wss.address() as AddressInfo;
  return {
    port: address.port,
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    observe(ev) {
      switch (ev.type) {
        case 'token':
          publish('partial', () => tokenMessage(ev.token));
          break;
        case 'caption':
          publish('caption', () => captionMessage(ev.caption));
          break;
        case 'memory':
          publish('memory', () => memoryMessage(ev.memory));
          break;
        case 'drop':
          publish('drops', () => dropMessage(ev.drop));
          break;
        default:
          break;
      }
    },
    frame(f) {
      const now = performance.now();
      if (closed || now - lastImageMs < imageIntervalMs || !isSubscribed('image')) return;
      if (!inWorker) {
        lastImageMs = now;
        publish('image', () => imageMessage(jpegFrame(f, opts.imageMaxWidth, opts.jpegQuality), f.stampNs, f.frameId));
        return;
      }
      encoder ??= new DecodePool({ name: 'bitmar-foxglove-preview', maxInFlight: 1, maxQueued: 0 });
      if (encoder.pending() > 0) {
        counts.imagesSkipped++;
        return;
      }
      lastImageMs = now;
      encoder.preview(f, opts.imageMaxWidth, opts.jpegQuality).then(
        (jpeg) => {
          if (!closed) publish('image', () => imageMessage(jpeg, f.stampNs, f.frameId));
        },
        () => {
          if (!closed) counts.dropped++;
        },
      );
    },
    metrics(snapshot) {
      publish('metrics', () => JSON.parse(JSON.stringify(snapshot, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Json);
    },
    stats: () => ({ clients: clients.size, ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        const stopEncoder = encoder?.close() ?? Promise.resolve();
        for (const c of clients) c.ws.close(1001, 'bitmar-node stopping');
        const t = setTimeout(() => {
          for (const c of clients) c.ws.terminate();
        }, 1000);
        t.unref();
        wss.close(() => {
          clearTimeout(t);
          void stopEncoder.then(resolve);
        });
      }),
  };
}
