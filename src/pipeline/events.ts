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

/** Everything the pipeline tells its sinks, in order. */
export type PipelineEvent =
  | { readonly type: 'token'; readonly token: CaptionToken }
  | { readonly type: 'caption'; readonly caption: Caption }
  | { readonly type: 'drop'; readonly drop: DropEvent }
  | { readonly type: 'memory'; readonly memory: MemoryEvent }
  | { readonly type: 'encoded'; readonly frames: number; readonly encodeMs: number }
  /** The frame input went silent for the pipeline's `inputSilenceMs`, or came back (input-watch.ts). */
  | { readonly type: 'input'; readonly input: InputStatus };
