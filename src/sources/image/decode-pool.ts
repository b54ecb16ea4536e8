/**
 * A small, bounded pool of image worker threads (decode-worker.ts), so that the main event loop —
 * MQTT keep-alives, ROS callbacks, token streaming — never spends the tens of milliseconds a 720p
 * JPEG takes to decode. Jobs: `decode` (JPEG/PNG/PPM through decode.ts `decodeImage`), `convert`
 * (raw camera encodings through src/ros2/image-decode.ts `convertToRgb8`) and `preview` (the Foxglove
 * live view's downscaled JPEG, src/sinks/foxglove/jpeg-frame.ts). The worker runs those same
 * functions, so results and error messages are the ones the main thread would have produced;
 * errors come back as the same BitmarError (code and message).
 *
 * Bounds: at most `maxInFlight` jobs posted to the workers (default one per worker) and at most
 * `maxQueued` waiting (default 4). Latest wins: a new job replaces a waiting one with the same key
 * (the same camera) — the old one is rejected with DecodeSkipped `superseded` — and beyond
 * `maxQueued` the oldest waiting job is rejected with DecodeSkipped `queue_full`. Callers count
 * those as drops.
 *
 * Buffers: the input is copied once into a buffer of its own (sources hand out views into transport
 * buffers, which must not be detached; a JPEG is a few hundred kB) and transferred; the result's
 * pixels are created in the worker and transferred back — the decoded frame is never copied.
 *
 * A worker that dies (crash, out of memory, terminated) is restarted at once, or after a growing
 * delay (100 ms doubling to 5 s) when it died before answering anything; its jobs in flight fail with
 * BITMAR_ERR_IMAGE_DECODE, queued jobs wait for the new worker, and `stats().restarts` counts it.
 * Workers start on the first job (or `warm()`), and hold the process open only while they work.
 */
import type { Worker } from 'node:worker_threads';
import { BitmarError, ERROR_CODES, type ErrorCode } from '../../errors.js';
import type { ImageLimits as RawImageLimits } from '../../ros2/image-decode.js';
import type { DropReason } from '../../types.js';
import type { DecodedImage, ImageFormat, ImageLimits } from './decode.js';
import { startModuleWorker } from '../../worker-start.js';

/** Raw camera pixels with their layout (sensor_msgs/Image fields). */
export interface RawPixels {
  readonly width: number;
  readonly height: number;
  readonly step: number;
  readonly encoding: string;
  readonly isBigEndian: boolean;
  readonly data: Uint8Array;
}

/** A message to the worker. */
export type WorkerJob =
  | { readonly id: number; readonly kind: 'decode'; readonly bytes: Uint8Array; readonly hint?: ImageFormat; readonly limits?: ImageLimits }
  | { readonly id: number; readonly kind: 'convert'; readonly view: RawPixels; readonly limits: RawImageLimits }
  | { readonly id: number; readonly kind: 'preview'; readonly width: number; readonly height: number; readonly data: Uint8Array; readonly maxWidth: number; readonly quality: number };

/** A message from the worker. */
export type WorkerAnswer =
  | { readonly id: number; readonly ok: true; readonly width: number; readonly height: number; readonly data: Uint8Array; readonly format?: ImageFormat }
  | { readonly id: number; readonly ok: false; readonly error: { readonly name: string; readonly message: string; readonly code?: string } };

type Done = Extract<WorkerAnswer, { ok: true }>;

/** Why the pool let a job go without running it. */
export type SkipReason = Extract<DropReason, 'queue_full' | 'superseded' | 'cancelled'>;

/** A job the pool dropped (bounded queue, latest wins) or cancelled (closed): a drop, not a bad image. */
export class DecodeSkipped extends Error {
  readonly reason: SkipReason;
  constructor(reason: SkipReason, message: string) {
    super(message);
    this.name = 'DecodeSkipped';
    this.reason = reason;
  }
}

export function isDecodeSkipped(e: unknown): e is DecodeSkipped {
  return e instanceof DecodeSkipped;
}

export interface DecodePoolOptions {
  /** Worker threads. Default 1 (a small board has few cores, and inference has its own thread). */
  readonly workers?: number;
  /** Jobs posted to the workers and not answered yet, all together. Default: one per worker. */
  readonly maxInFlight?: number;
  /** Jobs waiting for a worker; beyond this the oldest is dropped (`queue_full`). Default 4. */
  readonly maxQueued?: number;
  /** Thread name. Default `bitmar-image`. */
  readonly name?: string;
  /** First delay before restarting a worker that died before answering anything, ms (doubles, ≤ 5 s). Default 100. */
  readonly restartDelayMs?: number;
  /** Told after a worker died and a restart was scheduled (for a log line). */
  readonly onRestart?: (info: { readonly restarts: number; readonly reason: string; readonly lost: number }) => void;
}

export interface DecodePoolStats {
  readonly workers: number;
  readonly inFlight: number;
  readonly queued: number;
  /** Jobs answered with a result. */
  readonly done: number;
  /** Jobs answered with an error, or lost with a worker. */
  readonly failed: number;
  /** Jobs dropped: the queue was full (oldest first) / a newer job with the same key replaced them. */
  readonly queueFull: number;
  readonly superseded: number;
  /** Workers restarted after they died. */
  readonly restarts: number;
}

interface Job {
  readonly key: string;
  readonly msg: WorkerJob;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (a: Done) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker | null;
  readonly jobs: Map<number, Job>;
  /** Answers since this worker started. */
  answered: number;
  /** Deaths in a row without an answer. */
  failures: number;
  lastError?: string;
  timer?: NodeJS.Timeout;
}

const MAX_RESTART_DELAY_MS = 5000;

/** Rebuilds the worker's error as the main thread would have thrown it. */
function rebuildError(e: { name: string; message: string; code?: string }): Error {
  if (e.code !== undefined && e.code in ERROR_CODES) return new BitmarError(e.code as ErrorCode, e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** A copy of `bytes` in an ArrayBuffer of its own (exactly its length), safe to transfer. */
function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

export class DecodePool {
  private readonly slots: Slot[];
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly perWorker: number;
  private readonly queue: Job[] = [];
  private inFlight = 0;
  private nextId = 1;
  private started = false;
  private closed = false;
  private readonly counts = { done: 0, failed: 0, queueFull: 0, superseded: 0, restarts: 0 };

  constructor(private readonly opts: DecodePoolOptions = {}) {
    const workers = opts.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new RangeError(`workers must be an integer 1..64, got ${workers}`);
    this.maxInFlight = opts.maxInFlight ?? workers;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw new RangeError(`maxInFlight must be an integer ≥ 1, got ${this.maxInFlight}`);
    this.maxQueued = opts.maxQueued ?? 4;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) throw new RangeError(`maxQueued must be an integer ≥ 0, got ${this.maxQueued}`);
    this.perWorker = Math.ceil(this.maxInFlight / workers);
    this.slots = Array.from({ length: workers }, () => ({ worker: null, jobs: new Map(), answered: 0, failures: 0 }));
  }

  /** Starts the workers now instead of on the first job (they take tens to hundreds of ms). */
  warm(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (const s of this.slots) this.start(s);
  }

  /**
   * JPEG, PNG or PPM bytes → RGB8, as decode.ts `decodeImage(bytes, hint, limits)` would return or
   * throw. `key` names the camera for latest-wins (default ''). Rejects with DecodeSkipped when dropped.
   */
  decode(bytes: Uint8Array, opts: { readonly key?: string; readonly hint?: ImageFormat; readonly limits?: ImageLimits } = {}): Promise<DecodedImage> {
    const copy = ownCopy(bytes);
    const msg: WorkerJob = { id: this.nextId++, kind: 'decode', bytes: copy, ...(opts.hint !== undefined ? { hint: opts.hint } : {}), ...(opts.limits !== undefined ? { limits: opts.limits } : {}) };
    return this.submit(opts.key ?? '', msg, [copy.buffer]).then((a) => ({ width: a.width, height: a.height, data: a.data, format: a.format ?? 'jpeg' }));
  }

  /**
   * Raw pixels → RGB8 as src/ros2/image-decode.ts `convertToRgb8` (check the layout on the calling
   * thread first: `checkRawImage`, so size errors keep their drop reason). Rejects like `decode`.
   */
  convert(view: RawPixels, limits: RawImageLimits, key = ''): Promise<{ width: number; height: number; data: Uint8Array }> {
    const data = ownCopy(view.data.subarray(0, view.step * view.height));
    const msg: WorkerJob = { id: this.nextId++, kind: 'convert', view: { width: view.width, height: view.height, step: view.step, encoding: view.encoding, isBigEndian: view.isBigEndian, data }, limits };
    return this.submit(key, msg, [data.buffer]).then((a) => ({ width: a.width, height: a.height, data: a.data }));
  }

  /** RGB8 → the live view's downscaled JPEG (jpeg-frame.ts `jpegFrame`). The pixels are copied, not taken. */
  preview(img: { readonly width: number; readonly height: number; readonly data: Uint8Array }, maxWidth = 320, quality = 70, key = 'preview'): Promise<Uint8Array> {
    const data = ownCopy(img.data);
    const msg: WorkerJob = { id: this.nextId++, kind: 'preview', width: img.width, height: img.height, data, maxWidth, quality };
    return this.submit(key, msg, [data.buffer]).then((a) => a.data);
  }

  /** Jobs in flight plus waiting. */
  pending(): number {
    return this.inFlight + this.queue.length;
  }

  stats(): DecodePoolStats {
    return { workers: this.slots.filter((s) => s.worker !== null).length, inFlight: this.inFlight, queued: this.queue.length, ...this.counts };
  }

  /** The live worker threads (tests use this to kill one). */
  threads(): readonly Worker[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  /** Cancels every job (DecodeSkipped `cancelled`) and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cancelled = new DecodeSkipped('cancelled', 'the image pool was closed');
    for (const j of this.queue.splice(0)) j.reject(cancelled);
    const stops: Promise<number>[] = [];
    for (const s of this.slots) {
      if (s.timer) clearTimeout(s.timer);
      for (const j of s.jobs.values()) j.reject(cancelled);
      s.jobs.clear();
      if (s.worker) stops.push(s.worker.terminate());
      s.worker = null;
    }
    this.inFlight = 0;
    await Promise.all(stops);
  }

  private submit(key: string, msg: WorkerJob, transfer: ArrayBuffer[]): Promise<Done> {
    if (this.closed) return Promise.reject(new DecodeSkipped('cancelled', 'the image pool is closed'));
    this.warm();
    return new Promise<Done>((resolve, reject) => {
      // Latest wins per key: a camera's waiting image is replaced by its newer one.
      const same = this.queue.findIndex((j) => j.key === key);
      if (same >= 0) {
        const [old] = this.queue.splice(same, 1);
        this.counts.superseded++;
        old!.reject(new DecodeSkipped('superseded', 'a newer image from the same camera arrived while this one waited for the image worker'));
      }
      this.queue.push({ key, msg, transfer, resolve, reject });
      this.pump();
      while (this.queue.length > this.maxQueued) {
        const old = this.queue.shift()!;
        this.counts.queueFull++;
        old.reject(new DecodeSkipped('queue_full', `image worker busy (${this.inFlight} in progress, ${this.maxQueued} waiting); dropped the oldest waiting image`));
      }
    });
  }

  /** Posts waiting jobs to the least busy live workers, within the bounds. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (s.worker !== null && s.jobs.size < this.perWorker && (slot === undefined || s.jobs.size < slot.jobs.size)) slot = s;
      if (slot === undefined) return;
      const job = this.queue.shift()!;
      slot.jobs.set(job.msg.id, job);
      this.inFlight++;
      if (slot.jobs.size === 1) slot.worker!.ref();
      slot.worker!.postMessage(job.msg, job.transfer);
    }
  }

  private start(slot: Slot): void {
    slot.timer = undefined;
    if (this.closed) return;
    const w = startWorker(this.opts.name ?? 'bitmar-image');
    slot.worker = w;
    slot.answered = 0;
    slot.lastError = undefined;
    w.on('message', (a: WorkerAnswer) => this.onAnswer(slot, w, a));
    w.on('error', (e: Error) => {
      if (slot.worker === w) slot.lastError = e.message;
    });
    w.on('exit', (code: number) => this.onExit(slot, w, code));
    // After the listeners: adding a 'message' listener refs the worker again.
    w.unref();
  }

  private onAnswer(slot: Slot, w: Worker, a: WorkerAnswer): void {
    if (slot.worker !== w) return;
    const job = slot.jobs.get(a.id);
    if (job === undefined) return;
    slot.jobs.delete(a.id);
    this.inFlight--;
    slot.answered++;
    slot.failures = 0;
    if (slot.jobs.size === 0) w.unref();
    if (a.ok) {
      this.counts.done++;
      job.resolve(a);
    } else {
      this.counts.failed++;
      job.reject(rebuildError(a.error));
    }
    this.pump();
  }

  private onExit(slot: Slot, w: Worker, code: number): void {
    if (slot.worker !== w) return;
    slot.worker = null;
    if (this.closed) return;
    this.counts.restarts++;
    const why = slot.lastError ?? `exit code ${code}`;
    const lost = [...slot.jobs.values()];
    slot.jobs.clear();
    this.inFlight -= lost.length;
    for (const j of lost) {
      this.counts.failed++;
      j.reject(new BitmarError('BITMAR_ERR_IMAGE_DECODE', `the image worker stopped while working on this image (${why}); it is restarted`));
    }
    slot.failures = slot.answered > 0 ? 0 : slot.failures + 1;
    const delay = slot.failures === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, (this.opts.restartDelayMs ?? 100) * 2 ** (slot.failures - 1));
    this.opts.onRestart?.({ restarts: this.counts.restarts, reason: why, lost: lost.length });
    if (delay === 0) {
      this.start(slot);
      this.pump();
    } else {
      slot.timer = setTimeout(() => {
        this.start(slot);
        this.pump();
      }, delay);
      slot.timer.unref();
    }
  }
}

/**
 * Per-key arrival tickets, for sources that deliver some frames at once and others after a worker
 * decoded them: a frame is delivered only when no later one of the same key (camera) was, so a
 * newer frame is never followed by an older one; the caller drops the older one (`superseded`).
 */
export class ArrivalOrder {
  private last = 0;
  private readonly delivered = new Map<string, number>();

  /** A ticket for an input arriving now (increasing). */
  ticket(): number {
    return ++this.last;
  }

  /** True, and recorded, when no later ticket of `key` was delivered yet. */
  admit(key: string, ticket: number): boolean {
    const prev = this.delivered.get(key) ?? 0;
    if (ticket < prev) return false;
    this.delivered.delete(key);
    this.delivered.set(key, ticket);
    if (this.delivered.size > 4096) this.delivered.delete(this.delivered.keys().next().value!);
    return true;
  }
}

/** The image worker thread (decode-worker; src/worker-start.ts handles .js and tsx). */
function startWorker(name: string): Worker {
  return startModuleWorker(import.meta.url, './decode-worker', { name });
}
