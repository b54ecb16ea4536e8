import type { Caption, CaptionToken, DropEvent } from '../types.js';
import type { InputStatus } from './input-watch.js';

export type { InputStatus } from './input-watch.js';

/** A memory write, as sinks report it. */
export interface MemoryEvent {
  readonly kind: 'write' | 'merge' | 'evict' | 'error';
  readonly slot?: number;
  readonly caption?: string;
  readonly source?: string;
  readonly detail?: string;
}

/**
 * A helper thread of the node restarted after it died (src/sources/image/decode-pool.ts `onRestart`;
 * `worker` names it, e.g. `image-decode`). Not from the pipeline's flow: run.ts hands it to the
 * metrics sink (`bitmar_worker_restarts_total{worker}`).
 */
export interface WorkerEvent {
  readonly worker: string;
  readonly state: 'restarted';
  /** Restarts of this worker (pool) so far, this one included. */
  readonly restarts: number;
  /** Why it stopped: its error message, or its exit code. */
  readonly reason: string;
  /** Jobs lost with it (each one failed, e.g. a `decode_error` drop). */
  readonly lost: number;
}

/** Everything the pipeline tells its sinks, in order. */
export type PipelineEvent =
  | { readonly type: 'token'; readonly token: CaptionToken }
  | { readonly type: 'caption'; readonly caption: Caption }
  | { readonly type: 'drop'; readonly drop: DropEvent }
  | { readonly type: 'memory'; readonly memory: MemoryEvent }
  | { readonly type: 'encoded'; readonly frames: number; readonly encodeMs: number }
  /** The frame input went silent for the pipeline's `inputSilenceMs`, or came back (input-watch.ts). */
  | { readonly type: 'input'; readonly input: InputStatus }
  /** A worker thread died and was restarted (WorkerEvent). */
  | { readonly type: 'worker'; readonly worker: WorkerEvent };
