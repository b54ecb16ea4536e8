/**
 * Prometheus metrics (prom-client) fed from pipeline events, served on /metrics.
 * Names follow Prometheus conventions: bitmar_<what>_<unit>_total / _seconds.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineEvent } from '../../pipeline/events.js';

/** The event-loop delay monitor's timer period, ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly framesIn = new Counter({ name: 'bitmar_frames_in_total', help: 'Frames received, by source', labelNames: ['source'], registers: [this.registry] });
  readonly framesEncoded = new Counter({ name: 'bitmar_frames_encoded_total', help: 'Frames through the vision encoder', registers: [this.registry] });
  readonly dropped = new Counter({ name: 'bitmar_inputs_dropped_total', help: 'Inputs dropped, by stage and reason', labelNames: ['stage', 'reason'], registers: [this.registry] });
  readonly captions = new Counter({ name: 'bitmar_captions_total', help: 'Captions finished, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly tokens = new Counter({ name: 'bitmar_tokens_total', help: 'Tokens generated', registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'bitmar_batch_frames', help: 'Frames per encoder batch', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  readonly encodeSeconds = new Histogram({ name: 'bitmar_encode_seconds', help: 'Vision encode time per batch', buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  readonly decodeSeconds = new Histogram({ name: 'bitmar_decode_seconds', help: 'Decode time per caption', buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  readonly firstTokenSeconds = new Histogram({ name: 'bitmar_frame_to_first_token_seconds', help: 'Frame arrival to first token', buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  readonly captionSeconds = new Histogram({ name: 'bitmar_frame_to_caption_seconds', help: 'Frame arrival to final caption', buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  readonly memoryEvents = new Counter({ name: 'bitmar_memory_events_total', help: 'Memory writes, merges, evictions and errors', labelNames: ['kind'], registers: [this.registry] });
  readonly memorySlotsUsed = new Gauge({ name: 'bitmar_memory_slots_used', help: 'Live memory slots', registers: [this.registry] });
  readonly memorySlots = new Gauge({ name: 'bitmar_memory_slots', help: 'Memory capacity in slots', registers: [this.registry] });
  readonly connection = new Gauge({ name: 'bitmar_connection_up', help: '1 when a transport is connected', labelNames: ['transport'], registers: [this.registry] });
  readonly eventLoopLagSeconds = new Gauge({ name: 'bitmar_event_loop_lag_p99_seconds', help: 'Event-loop delay p99 over the last scrape interval', registers: [this.registry] });
  readonly eventLoopLagMaxSeconds = new Gauge({ name: 'bitmar_event_loop_lag_max_seconds', help: 'Longest event-loop delay over the last scrape interval', registers: [this.registry] });
  readonly inputSilent = new Gauge({ name: 'bitmar_input_silent', help: '1 while no frame has arrived for pipeline.inputSilenceMs', registers: [this.registry] });
  readonly inputSilences = new Counter({ name: 'bitmar_input_silences_total', help: 'Times the frame input went silent', registers: [this.registry] });
  readonly workerRestarts = new Counter({ name: 'bitmar_worker_restarts_total', help: 'Worker threads restarted after they died, by worker', labelNames: ['worker'], registers: [this.registry] });
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'bitmar_' });
    this.loopDelay.enable();
  }

  observe(ev: PipelineEvent): void {
    switch (ev.type) {
      case 'token':
        this.tokens.inc();
        break;
      case 'caption': {
        const c = ev.caption;
        this.captions.inc({ outcome: c.cancelled ? 'cancelled' : 'final' });
        if (!c.cancelled) {
          this.decodeSeconds.observe(c.latency.decodeMs / 1000);
          if (c.latency.frameToFirstTokenMs >= 0) this.firstTokenSeconds.observe(c.latency.frameToFirstTokenMs / 1000);
          this.captionSeconds.observe(c.latency.frameToCaptionMs / 1000);
        }
        break;
      }
      case 'encoded':
        this.framesEncoded.inc(ev.frames);
        this.batchSize.observe(ev.frames);
        this.encodeSeconds.observe(ev.encodeMs / 1000);
        break;
      case 'drop':
        this.dropped.inc({ stage: ev.drop.stage, reason: ev.drop.reason });
        break;
      case 'memory':
        this.memoryEvents.inc({ kind: ev.memory.kind });
        break;
      case 'input':
        this.inputSilent.set(ev.input.state === 'silent' ? 1 : 0);
        if (ev.input.state === 'silent') this.inputSilences.inc();
        break;
      case 'worker':
        this.workerRestarts.inc({ worker: ev.worker.worker });
        break;
    }
  }

  /** Text exposition; also samples the event-loop delay. */
  async text(): Promise<string> {
    // The histogram holds whole timer intervals (≥ the resolution): the lag is what exceeds it.
    const lag = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS) / 1000;
    this.eventLoopLagSeconds.set(lag(this.loopDelay.percentile(99)));
    this.eventLoopLagMaxSeconds.set(lag(this.loopDelay.max));
    this.loopDelay.reset();
    return this.registry.metrics();
  }

  /** Serves /metrics on host:port; resolves with the bound port. */
  async serve(host: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
    const server: Server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    return {
      port: bound,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  dispose(): void {
    this.loopDelay.disable();
  }
}
