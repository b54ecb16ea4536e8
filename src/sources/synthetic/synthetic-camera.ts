/**
 * The synthetic camera (../shared/docs/shapes-world.md "Motion"): renders the shapes world at a fixed
 * frame rate, moving objects smoothly (a few pixels a frame) and replacing the scene now and then.
 * Every frame obeys every rule of the contract: an object whose next step would break one bounces
 * (reverses the offending velocity component) or, failing that, waits a frame. The caption is
 * recomputed every frame. A seed makes the stream reproducible.
 *
 * Two forms: `syntheticScenes` (a plain generator of scenes, no pixels — the exporter uses it;
 * synthetic-scenes.ts) and `syntheticCamera` (an RxJS Observable<Frame>). In real time the frames
 * are rendered by a worker_thread (synthetic-worker.ts) and handed over without copying; on any other
 * scheduler (a TestScheduler's virtual time) they render in this thread. Both give the same frames.
 */
import type { Worker } from 'node:worker_threads';
import { Observable, type SchedulerLike, asyncScheduler, defer, map, take, timer } from 'rxjs';
import type { Frame } from '../../types.js';
import { createFrameProducer, resolveCameraOptions, type ResolvedCameraOptions, type SyntheticCameraOptions } from './synthetic-scenes.js';
import type { SyntheticWorkerInit, SyntheticWorkerMessage } from './synthetic-worker.js';
import { startModuleWorker } from '../../worker-start.js';

export {
  createFrameProducer,
  resolveCameraOptions,
  syntheticScenes,
  type ResolvedCameraOptions,
  type SyntheticCameraOptions,
  type SyntheticFrameData,
  type SyntheticStep,
} from './synthetic-scenes.js';

/** Frames the render worker may have posted that this thread has not taken yet. */
export const SYNTHETIC_MAX_IN_FLIGHT = 2;

/**
 * A synthetic camera stream: one Frame every 1/fps seconds on `scheduler` (default asyncScheduler;
 * pass a TestScheduler for virtual time), the first at subscription. Frames carry source
 * `synthetic`, frameId `synthetic_camera`, ids 0, 1, 2, …, stampNs = the tick's time in ns
 * (scheduler.now(); the wall clock in real time), receivedMs = when this thread got the finished
 * frame, and truth.caption. Cold: each subscriber gets the same seeded stream (its own worker).
 * Completes after maxFrames. Throws RangeError at call time for bad options.
 *
 * In real time (asyncScheduler, `renderInWorker` not false) the render worker keeps the clock; the
 * first frame comes once it has started (tens to hundreds of milliseconds). If this thread falls
 * more than two frames behind, the worker skips frames (ids then have gaps) and `onDrop` hears of
 * each. A worker that fails errors the stream.
 */
export function syntheticCamera(options: SyntheticCameraOptions = {}, scheduler: SchedulerLike = asyncScheduler): Observable<Frame> {
  const o = resolveCameraOptions(options);
  if (scheduler === asyncScheduler && options.renderInWorker !== false) return workerCamera(o, options.onDrop);
  return defer(() => {
    const producer = createFrameProducer(o);
    return timer(0, 1000 / o.fps, scheduler).pipe(
      take(o.maxFrames),
      map((): Frame => {
        const stampMs = scheduler.now();
        const f = producer.render();
        if (f === null) throw new Error('synthetic scene stream ended before maxFrames'); // unreachable
        return toFrame(o, f.index, stampMs, f.caption, f.data, performance.now());
      }),
    );
  });
}

function toFrame(o: ResolvedCameraOptions, index: number, stampMs: number, caption: string, data: Uint8Array, receivedMs: number): Frame {
  return {
    id: index,
    source: 'synthetic',
    stampNs: BigInt(Math.round(stampMs)) * 1_000_000n,
    frameId: 'synthetic_camera',
    receivedMs,
    width: o.width,
    height: o.height,
    data,
    truth: { caption },
  };
}

/** The real-time camera: frames rendered by synthetic-worker.ts, acknowledged once delivered. */
function workerCamera(o: ResolvedCameraOptions, onDrop: SyntheticCameraOptions['onDrop']): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    if (o.maxFrames <= 0) {
      subscriber.complete();
      return undefined;
    }
    const init: SyntheticWorkerInit = { options: o, maxInFlight: SYNTHETIC_MAX_IN_FLIGHT };
    let ended = false;
    const worker = startWorker(init);
    const end = (): void => {
      ended = true;
      void worker.terminate();
    };
    worker.on('message', (m: SyntheticWorkerMessage) => {
      if (ended) return;
      switch (m.type) {
        case 'frame':
          subscriber.next(toFrame(o, m.index, m.stampMs, m.caption, m.data, performance.now()));
          // Taken (the pipeline's synchronous stages ran): the worker may render one more.
          if (!ended) worker.postMessage('ack');
          break;
        case 'dropped':
          onDrop?.({ stage: 'synthetic', reason: 'queue_full', detail: `frame ${m.index} not rendered: ${m.inFlight} frames were still waiting for the pipeline` });
          break;
        case 'done':
          end();
          subscriber.complete();
          break;
        case 'error':
          end();
          subscriber.error(new Error(`synthetic camera worker: ${m.message}`));
          break;
      }
    });
    worker.on('error', (e) => {
      if (ended) return;
      end();
      subscriber.error(e);
    });
    worker.on('exit', (code) => {
      if (ended) return;
      ended = true;
      subscriber.error(new Error(`synthetic camera worker exited (code ${code}) before the stream ended`));
    });
    return end;
  });
}

/** The render worker thread (synthetic-worker; src/worker-start.ts handles .js and tsx). */
function startWorker(init: SyntheticWorkerInit): Worker {
  return startModuleWorker(import.meta.url, './synthetic-worker', { workerData: init, name: 'bitmar-synthetic-camera' });
}
