/**
 * The bounded in-memory queue of messages published while the broker is unreachable (mqtt.js's own
 * queue is unbounded and keeps every QoS 0 message: ecosystem-conventions.md, MQTT). Oldest first
 * out; when a cap is hit the oldest message goes, and the caller counts the reason.
 */
import type { IClientPublishOptions } from 'mqtt';

export type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

/** One message on its way to the broker. */
export interface OutboundMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  readonly retain: boolean;
  readonly properties?: PublishProperties;
}

export interface OfflineQueueOptions {
  /** Most messages held. Default 1000. */
  readonly maxMessages?: number;
  /** Most payload bytes held. Default 8 MiB. */
  readonly maxBytes?: number;
  /** Most QoS 0 messages held (partial tokens and metrics go stale fast). Default 16; 0 = none. */
  readonly maxQoS0?: number;
}

export type OfflineDropReason = 'offline_qos0_cap' | 'offline_queue_full';

export class OfflineQueue {
  private items: OutboundMessage[] = [];
  private totalBytes = 0;
  private qos0 = 0;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly maxQoS0: number;

  /** Throws a RangeError for a negative or non-integer cap. */
  constructor(options: OfflineQueueOptions = {}) {
    this.maxMessages = options.maxMessages ?? 1000;
    this.maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
    this.maxQoS0 = options.maxQoS0 ?? 16;
    for (const [k, v] of Object.entries({ maxMessages: this.maxMessages, maxBytes: this.maxBytes, maxQoS0: this.maxQoS0 })) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`offlineQueue.${k} must be an integer >= 0, got ${v}`);
    }
  }

  get length(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Appends `msg`, dropping the oldest messages to make room. `accepted` is false when `msg`
   * itself could not be kept; `dropped` lists the reason of every message dropped (`msg` included).
   */
  push(msg: OutboundMessage): { accepted: boolean; dropped: OfflineDropReason[] } {
    const dropped: OfflineDropReason[] = [];
    if (msg.qos === 0) {
      if (this.maxQoS0 === 0) return { accepted: false, dropped: ['offline_qos0_cap'] };
      while (this.qos0 >= this.maxQoS0) {
        const oldest = this.items.findIndex((m) => m.qos === 0);
        if (oldest < 0) break;
        this.removeAt(oldest);
        dropped.push('offline_qos0_cap');
      }
    }
    const size = msg.payload.length;
    if (size > this.maxBytes || this.maxMessages === 0) return { accepted: false, dropped: [...dropped, 'offline_queue_full'] };
    while (this.items.length > 0 && (this.items.length >= this.maxMessages || this.totalBytes + size > this.maxBytes)) {
      this.removeAt(0);
      dropped.push('offline_queue_full');
    }
    this.items.push(msg);
    this.account(msg, +1);
    return { accepted: true, dropped };
  }

  /** Puts a message back at the head (a QoS 1 publish whose connection closed before its PUBACK). */
  unshift(msg: OutboundMessage): OfflineDropReason[] {
    if (this.items.length >= this.maxMessages || this.totalBytes + msg.payload.length > this.maxBytes) {
      return ['offline_queue_full'];
    }
    this.items.unshift(msg);
    this.account(msg, +1);
    return [];
  }

  shift(): OutboundMessage | undefined {
    const msg = this.items.shift();
    if (msg !== undefined) this.account(msg, -1);
    return msg;
  }

  clear(): void {
    this.items = [];
    this.totalBytes = 0;
    this.qos0 = 0;
  }

  private removeAt(i: number): void {
    if (i < 0) return;
    const [msg] = this.items.splice(i, 1);
    if (msg !== undefined) this.account(msg, -1);
  }

  private account(msg: OutboundMessage, sign: 1 | -1): void {
    this.totalBytes += sign * msg.payload.length;
    if (msg.qos === 0) this.qos0 += sign;
  }
}
