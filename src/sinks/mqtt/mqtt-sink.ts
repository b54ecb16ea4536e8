/**
 * The MQTT sink: pipeline output → topics under `<prefix>/<node-id>/` (docs/mqtt.md).
 *
 * | call          | topic                    | QoS | retain | notes                                   |
 * |---------------|--------------------------|-----|--------|-----------------------------------------|
 * | captionToken  | caption/partial          | 0   | no     | message expiry partialExpirySec          |
 * | caption       | caption                  | 1   | no     | final: durable store; cancelled: queue  |
 * | memoryEvent   | memory/event             | 1   | no     |                                         |
 * | metrics       | metrics                  | 0   | no     | transport counters added under `mqtt`   |
 *
 * A frame with `replyTo` (a request's response topic, or a camera's own topic in worker mode)
 * gets its caption there instead, with the request's correlation data; its partial tokens go to
 * `<reply topic>/partial` for device topics and to the node's own `caption/partial` for requests.
 */
import type { MemoryEvent, PipelineEvent } from '../../pipeline/events.js';
import type { Caption, CaptionToken, FrameRef } from '../../types.js';
import { buildCaptionPayload, buildMemoryEventPayload, buildMetricsPayload, buildPartialPayload, type MemoryEventInput } from './payloads.js';
import { STREAMS } from './topics.js';
import type { MqttTransport } from './transport.js';

export interface MqttSink {
  /** One streamed token → `caption/partial` (QoS 0, expiring). Never throws. */
  captionToken(t: CaptionToken): void;
  /** A final caption → `caption` (QoS 1, durable); a cancelled one is sent QoS 1 but not stored. */
  caption(c: Caption): void;
  /** → `memory/event` (QoS 1). */
  memoryEvent(e: MemoryEventInput | MemoryEvent): void;
  /** Pipeline counters → `metrics` (QoS 0), with the transport's counters under `mqtt`. */
  metrics(pipeline: object): void;
  /** Routes a pipeline event (token, caption, memory) to the calls above; ignores the rest. */
  observe(ev: PipelineEvent): void;
  /** Stops accepting and waits up to `timeoutMs` (default 3000) for queued captions to be acknowledged. The transport stays open. */
  close(timeoutMs?: number): Promise<boolean>;
}

/** Reply topic for partial tokens of a frame, or undefined for the node's own topic. */
function partialTopic(frame: FrameRef): string | undefined {
  const r = frame.replyTo;
  return r !== undefined && r.correlationData === undefined ? `${r.topic}/partial` : undefined;
}

export function createMqttSink(transport: MqttTransport): MqttSink {
  let closed = false;
  const v5 = (): boolean => transport.protocolVersion === 5;

  const sink: MqttSink = {
    captionToken(t) {
      if (closed) return;
      const props = transport.jsonProperties({ messageExpiryInterval: transport.partialExpirySec });
      const payload = buildPartialPayload(t, transport.context, transport.modelName);
      transport.publish(partialTopic(t.frame) ?? transport.topic(STREAMS.captionPartial), payload, {
        qos: 0,
        ...(props !== undefined ? { properties: props } : {}),
      });
    },

    caption(c) {
      if (closed) return;
      const reply = c.frame.replyTo;
      // MQTT 3.1.1 has no correlation data property: echo it in the JSON (the source put the
      // request's correlationId there as UTF-8).
      const correlationId = reply?.correlationData !== undefined && !v5() ? reply.correlationData.toString('utf8') : undefined;
      const payload = buildCaptionPayload(c, transport.context, correlationId);
      const props = transport.jsonProperties(
        {
          ...(reply?.correlationData !== undefined ? { correlationData: reply.correlationData } : {}),
          userProperties: { seq: String(c.seq), runId: transport.runId },
        },
        c.model,
      );
      const topic = reply?.topic ?? transport.topic(STREAMS.caption);
      if (c.isFinal && !c.cancelled) {
        transport.publishDurable(topic, payload, props);
      } else {
        transport.publish(topic, payload, { qos: 1, ...(props !== undefined ? { properties: props } : {}) });
      }
    },

    memoryEvent(e) {
      if (closed) return;
      const props = transport.jsonProperties();
      transport.publish(transport.topic(STREAMS.memoryEvent), buildMemoryEventPayload(e, transport.context, new Date()), {
        qos: 1,
        ...(props !== undefined ? { properties: props } : {}),
      });
    },

    metrics(pipeline) {
      if (closed) return;
      const props = transport.jsonProperties();
      transport.publish(transport.topic(STREAMS.metrics), buildMetricsPayload(pipeline, transport.stats(), transport.context, new Date()), {
        qos: 0,
        ...(props !== undefined ? { properties: props } : {}),
      });
    },

    observe(ev) {
      switch (ev.type) {
        case 'token':
          sink.captionToken(ev.token);
          break;
        case 'caption':
          sink.caption(ev.caption);
          break;
        case 'memory':
          sink.memoryEvent(ev.memory);
          break;
        default:
          break;
      }
    },

    async close(timeoutMs = 3000) {
      closed = true;
      return transport.drain(timeoutMs);
    },
  };
  return sink;
}
