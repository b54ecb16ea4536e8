import { Observable } from 'rxjs';
import type { Caption, Frame, FrameRef } from '../types.js';
import type { DescribeRequest, DescribeResult, WorkerToken } from '../model/inference-worker.js';
import type { PipelineEvent, MemoryEvent } from './events.js';

/** The part of the inference worker this stage uses (src/model/inference-worker.ts). */
export interface Describer {
  describe(req: DescribeRequest, onToken: (t: WorkerToken) => void, signal?: AbortSignal): Promise<DescribeResult>;
}

/** Where episodes go: the memory store, seen through what this stage needs. */
export interface EpisodeSink {
  /** Stores one episode; returns what happened (for sinks and metrics). */
  write(vector: Float32Array, meta: { caption: string; source: string; stampNs: bigint; frameId: string }): MemoryEvent;
}

export interface DescribeOptions {
  readonly prompt: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  readonly sinks: number;
  readonly window: number;
  readonly modelName: string;
}

export function frameRef(f: Frame): FrameRef {
  return { id: f.id, source: f.source, stampNs: f.stampNs, frameId: f.frameId, replyTo: f.replyTo, truth: f.truth };
}

/**
 * Encodes a batch, streams the caption of its newest frame token by token, then writes the
 * batch's episodes to memory. Events go to `emit` (not the returned stream) so that a caption
 * cut short by unsubscribing — a newer frame, a new prompt, shutdown — still reaches the sinks,
 * marked cancelled. Model errors come out as the stream's error, for the caller to count.
 */
export function describeBatch(
  batch: readonly Frame[],
  describer: Describer,
  memory: EpisodeSink | null,
  options: () => DescribeOptions,
  nextSeq: () => number,
  emit: (ev: PipelineEvent) => void,
  now: () => number = () => performance.now(),
): Observable<never> {
  return new Observable<never>((subscriber) => {
    const abort = new AbortController();
    const newest = batch[batch.length - 1]!;
    const ref = frameRef(newest);
    const opts = options();
    const seq = nextSeq();
    let firstTokenAt = -1;
    let lastText = '';
    const tokenIds: number[] = [];
    let done = false;

    const finish = (res: { text: string; tokenIds: number[]; cancelled: boolean; encodeMs: number; decodeMs: number }): void => {
      const t = now();
      const caption: Caption = {
        seq,
        text: res.text,
        tokenIds: res.tokenIds,
        prompt: opts.prompt,
        frame: ref,
        batchFrameIds: batch.map((f) => f.id),
        isFinal: true,
        cancelled: res.cancelled,
        latency: {
          encodeMs: res.encodeMs,
          frameToFirstTokenMs: firstTokenAt < 0 ? -1 : firstTokenAt - newest.receivedMs,
          frameToCaptionMs: t - newest.receivedMs,
          decodeMs: res.decodeMs,
        },
        model: opts.modelName,
      };
      emit({ type: 'caption', caption });
    };

    describer
      .describe(
        {
          images: batch.map((f) => ({ width: f.width, height: f.height, data: f.data })),
          prompt: opts.prompt,
          maxTokens: opts.maxTokens,
          temperature: opts.temperature,
          topP: opts.topP,
          seed: opts.seed,
          mode: 'caption',
          sinks: opts.sinks || undefined,
          window: opts.window || undefined,
        },
        (tok) => {
          if (done) return;
          if (firstTokenAt < 0) firstTokenAt = now();
          tokenIds.push(tok.tokenId);
          lastText = tok.text;
          emit({
            type: 'token',
            token: { seq, index: tok.index, tokenId: tok.tokenId, piece: tok.piece, text: tok.text, frame: ref },
          });
        },
        abort.signal,
      )
      .then(
        (res) => {
          if (done) return;
          emit({ type: 'encoded', frames: batch.length, encodeMs: res.encodeMs });
          finish(res);
          if (memory && !res.cancelled) {
            res.episodes.forEach((vec, i) => {
              const f = batch[i]!;
              const ev = memory.write(vec, { caption: res.text, source: f.source, stampNs: f.stampNs, frameId: f.frameId });
              emit({ type: 'memory', memory: ev });
            });
          }
          done = true;
          subscriber.complete();
        },
        (err: unknown) => {
          if (done) return;
          done = true;
          subscriber.error(err);
        },
      );

    return () => {
      if (!done) {
        // Cancelled from outside (newer frame, new prompt, shutdown): report what was said so far.
        done = true;
        abort.abort();
        finish({ text: lastText, tokenIds, cancelled: true, encodeMs: 0, decodeMs: 0 });
      }
    };
  });
}
