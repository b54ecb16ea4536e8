/** Test-side MQTT clients (mqtt.js directly) and small waiting helpers. */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly packet: IPublishPacket;
}

/** A connected client that records every message. */
export interface Recorder {
  readonly client: MqttClient;
  readonly messages: Received[];
  /** Resolves with the first message (from now or already recorded) satisfying `pred`. */
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number, what?: string): Promise<Received>;
  /** Resolves once `n` messages satisfy `pred`. */
  waitForCount(pred: (m: Received) => boolean, n: number, timeoutMs?: number): Promise<Received[]>;
  end(): Promise<void>;
}

export async function connectRecorder(url: string, topics: string[], opts: IClientOptions = {}): Promise<Recorder> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, connectTimeout: 5000, ...opts });
  const messages: Received[] = [];
  const listeners = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, packet });
    for (const l of listeners) l();
  });
  client.on('error', () => {});
  if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
  const waitForCount = (pred: (m: Received) => boolean, n: number, timeoutMs = 5000): Promise<Received[]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const got = messages.filter(pred);
        if (got.length >= n) {
          listeners.delete(listener);
          clearTimeout(timer);
          resolve(got);
          return true;
        }
        return false;
      };
      const listener = (): void => {
        check();
      };
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`timed out waiting for ${n} messages (got ${messages.filter(pred).length}; all topics: ${[...new Set(messages.map((m) => m.topic))].join(', ')})`));
      }, timeoutMs);
      if (!check()) listeners.add(listener);
    });
  return {
    client,
    messages,
    waitForCount,
    waitFor: async (pred, timeoutMs = 5000) => (await waitForCount(pred, 1, timeoutMs))[0]!,
    end: () => client.endAsync(true),
  };
}

export function json(m: Received): Record<string, unknown> {
  return JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>;
}

/** Polls `cond` every 10 ms until true; rejects after timeoutMs with `what`. */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
