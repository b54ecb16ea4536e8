/**
 * The only place the pipeline stages are wired:
 *   frames → (input watch) → validate → sample → batch → (latest wins) describe: encode, fuse,
 *   memory read, decode tokens, memory write → events → sinks.
 * The input watch also hears the source's drops that mean an image arrived (`sourceDrops$`).
 * Every buffer is bounded and every drop is reported as a `drop` event with stage and reason.
 */
import { Subject, asyncScheduler, catchError, EMPTY, filter, takeUntil, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import type { DropEvent, DropReason, Frame, Prompt } from '../types.js';
import { batchFrames } from './batch-frames.js';
import { describeBatch, type Describer, type DescribeOptions, type EpisodeSink } from './describe-batch.js';
import type { PipelineEvent } from './events.js';
import { processLatest } from './process-latest.js';
import { sampleFrames, type SampleOptions } from './sample-frames.js';
import { frameProblem, type FrameLimits } from './validate-frame.js';
import { watchInput } from './input-watch.js';

/** Default `inputSilenceMs`: a source quiet this long is reported (an `input` event). */
export const DEFAULT_INPUT_SILENCE_MS = 5000;

/** Source drop reasons that mean an image arrived (the source is not silent): see `sourceDrops$`. */
const ARRIVAL_DROP_REASONS: ReadonlySet<DropReason> = new Set<DropReason>(['sampled_out', 'queue_full', 'superseded']);

/** Pipeline settings; read on every use, so runtime parameter changes apply at once. */
export interface PipelineSettings extends SampleOptions, DescribeOptions {
  readonly batchSize: number;
  readonly batchMaxWaitMs: number;
  readonly queueLimit: number;
  readonly maxFrameAgeMs: number;
  readonly cancelPolicy: 'never' | 'new-prompt' | 'newer-frame';
}

export interface PipelineDeps {
  readonly frames$: Observable<Frame>;
  readonly prompts$?: Observable<Prompt>;
  readonly describer: Describer;
  readonly memory: EpisodeSink | null;
  readonly settings: () => PipelineSettings;
  /** Called when a prompt arrives; the topology owner stores it so settings().prompt returns it. */
  readonly onPrompt?: (p: Prompt) => void;
  readonly limits?: FrameLimits;
  readonly scheduler?: SchedulerLike;
  readonly now?: () => number;
  /**
   * No frame for this long (ms) → an `input` event `silent`, and `resumed` when frames come back
   * (input-watch.ts). Default DEFAULT_INPUT_SILENCE_MS; 0 turns it off.
   */
  readonly inputSilenceMs?: number;
  /**
   * The frame source's own drops (`<source>/…`, what run.ts also counts). Those that mean an image
   * arrived and was let go on purpose — `sampled_out` (the policy applied before decoding, see
   * `sampledAtSource`), `queue_full` and `superseded` (decoder or renderer busy) — count as input
   * for the silence watch, so a heavily sampled camera is not reported silent. Other drops (bad
   * bytes, rate limits, prompts) do not. Optional.
   */
  readonly sourceDrops$?: Observable<DropEvent>;
  /**
   * The source already applied the sampling policy before decoding (sample-frames.ts
   * `createSampler` as its `shouldDecode`, counting `<source>/sampled_out`): the sample stage then
   * passes every frame instead of sampling twice. Default false.
   */
  readonly sampledAtSource?: boolean;
}

export interface Pipeline {
  readonly events$: Observable<PipelineEvent>;
  /** Starts the flow; the returned subscription stops it (a running caption ends as cancelled). */
  start(): Subscription;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const events = new Subject<PipelineEvent>();
  const emit = (ev: PipelineEvent): void => events.next(ev);
  const drop = (d: DropEvent): void => emit({ type: 'drop', drop: d });
  const now = deps.now ?? (() => performance.now());
  const limits = deps.limits ?? { maxWidth: 8192, maxHeight: 8192 };
  const scheduler = deps.scheduler ?? asyncScheduler;
  const promptChanged = new Subject<void>();
  let seq = 0;

  const start = (): Subscription => {
    const s = deps.settings;
    const promptSub = deps.prompts$?.subscribe((p) => {
      deps.onPrompt?.(p);
      if (s().cancelPolicy !== 'never') promptChanged.next();
    });
    const flow = deps.frames$
      .pipe(
        watchInput<Frame>(
          deps.inputSilenceMs ?? DEFAULT_INPUT_SILENCE_MS,
          (input) => emit({ type: 'input', input }),
          scheduler,
          deps.sourceDrops$?.pipe(filter((d) => ARRIVAL_DROP_REASONS.has(d.reason))),
        ),
        filter((f) => {
          const problem = frameProblem(f, limits);
          if (problem) drop({ stage: 'validate', reason: 'invalid_input', detail: problem });
          return problem === null;
        }),
        deps.sampledAtSource === true ? (f$: Observable<Frame>) => f$ : sampleFrames<Frame>(s, () => drop({ stage: 'sample', reason: 'sampled_out' })),
        batchFrames<Frame>(s().batchSize, s().batchMaxWaitMs, scheduler),
        processLatest<Frame[], never>(
          (batch) => {
            return describeBatch(batch, deps.describer, deps.memory, s, () => ++seq, emit, now).pipe(
              catchError((err: unknown) => {
                drop({ stage: 'describe', reason: 'invalid_input', detail: err instanceof Error ? err.message : String(err) });
                return EMPTY;
              }),
              // A prompt that arrives mid-caption cancels it (new-prompt and newer-frame policies).
              takeUntil(promptChanged),
            );
          },
          {
            limit: s().queueLimit,
            onDrop: (batch, reason) => {
              for (let i = 0; i < batch.length; i++) drop({ stage: 'queue', reason });
            },
            cancelRunningOnNewer: () => s().cancelPolicy === 'newer-frame',
            isStale: (batch) => now() - batch[batch.length - 1]!.receivedMs > s().maxFrameAgeMs,
          },
        ),
      )
      .subscribe({ error: (e: unknown) => events.error(e), complete: () => events.complete() });
    if (promptSub) flow.add(promptSub);
    return flow;
  };

  return { events$: events.asObservable(), start };
}
