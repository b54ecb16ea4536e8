/**
 * The synthetic camera's render worker (a worker_thread started by synthetic-camera.ts): it owns the
 * frame clock and the world, renders each frame here and transfers its buffer to the main thread, so
 * the main event loop never spends the ~10 ms a 720p frame takes to draw.
 *
 * Bounded: at most `maxInFlight` frames are posted and not yet acknowledged (the main thread
 * acknowledges each frame after its subscriber took it). A tick that finds the window full steps the
 * world without rendering and reports the frame as dropped. Deterministic for the seed as long as
 * nothing is dropped: the frames are those of `createFrameProducer`, as in the main thread.
 *
 * Protocol: workerData is `SyntheticWorkerInit`; messages out are `SyntheticWorkerMessage`; in, `'ack'`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createFrameProducer, type ResolvedCameraOptions } from './synthetic-scenes.js';

export interface SyntheticWorkerInit {
  readonly options: ResolvedCameraOptions;
  readonly maxInFlight: number;
}

export type SyntheticWorkerMessage =
  | { readonly type: 'frame'; readonly index: number; readonly stampMs: number; readonly caption: string; readonly data: Uint8Array }
  | { readonly type: 'dropped'; readonly index: number; readonly inFlight: number }
  | { readonly type: 'done' }
  | { readonly type: 'error'; readonly message: string };

function main(): void {
  const port = parentPort;
  if (port === null) throw new Error('synthetic-worker.ts must run in a worker thread');
  const { options, maxInFlight } = workerData as SyntheticWorkerInit;
  const producer = createFrameProducer(options);
  const periodMs = 1000 / options.fps;
  let inFlight = 0;
  let ticks = 0;
  let t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;

  const post = (m: SyntheticWorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

  const tick = (): void => {
    timer = undefined;
    const stampMs = Date.now();
    if (inFlight >= maxInFlight) {
      const index = producer.skip();
      if (index === null) return finish();
      post({ type: 'dropped', index, inFlight });
    } else {
      const f = producer.render();
      if (f === null) return finish();
      inFlight++;
      post({ type: 'frame', index: f.index, stampMs, caption: f.caption, data: f.data }, [f.data.buffer as ArrayBuffer]);
    }
    ticks++;
    if (ticks >= options.maxFrames) return finish();
    // Drift-free: the next tick at t0 + ticks·period; when more than a period late (rendering slower
    // than the frame rate), restart the grid from now instead of bursting to catch up.
    const now = performance.now();
    let next = t0 + ticks * periodMs;
    if (now - next > periodMs) {
      t0 = now - ticks * periodMs;
      next = now;
    }
    timer = setTimeout(tick, Math.max(0, next - now));
  };

  const finish = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    post({ type: 'done' });
    port.close();
  };

  port.on('message', (m: unknown) => {
    if (m === 'ack' && inFlight > 0) inFlight--;
  });
  if (options.maxFrames <= 0) return finish();
  tick();
}

try {
  main();
} catch (e) {
  parentPort?.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies SyntheticWorkerMessage);
}
