/**
 * The image worker of decode-pool.ts (a worker_thread): it runs the node's one implementation of
 * each job — `decodeImage` (decode.ts) for JPEG/PNG/PPM, `convertToRgb8` (src/ros2/image-decode.ts)
 * for raw camera encodings, `jpegFrame` (the Foxglove preview) — and posts the result back with its
 * pixel buffer transferred, not copied. Errors are posted as `{name, code, message}` so the pool
 * can rebuild the same BitmarError the main thread would have thrown.
 *
 * One job at a time, in the order posted: the thread is single-threaded, so answers come back in
 * order too.
 */
import { parentPort } from 'node:worker_threads';
import { isBitmarError } from '../../errors.js';
import { convertToRgb8 } from '../../ros2/image-decode.js';
import { jpegFrame } from '../../sinks/foxglove/jpeg-frame.js';
import { decodeImage } from './decode.js';
import type { WorkerAnswer, WorkerJob } from './decode-pool.js';

/** `data` as a buffer that can be transferred whole (copied only when it is a view into a larger one). */
function own(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data : data.slice();
}

function run(job: WorkerJob): WorkerAnswer & { ok: true } {
  switch (job.kind) {
    case 'decode': {
      const img = decodeImage(job.bytes, job.hint, job.limits);
      return { id: job.id, ok: true, width: img.width, height: img.height, data: own(img.data), format: img.format };
    }
    case 'convert': {
      const img = convertToRgb8({ ...job.view, stampNs: 0n, frameId: '' }, job.limits);
      return { id: job.id, ok: true, width: img.width, height: img.height, data: own(img.data) };
    }
    case 'preview': {
      const jpeg = jpegFrame({ width: job.width, height: job.height, data: job.data }, job.maxWidth, job.quality);
      return { id: job.id, ok: true, width: job.width, height: job.height, data: own(jpeg) };
    }
  }
}

const port = parentPort;
if (port === null) throw new Error('decode-worker.ts must run in a worker thread (src/sources/image/decode-pool.ts starts it)');
port.on('message', (job: WorkerJob) => {
  let answer: WorkerAnswer & { ok: true };
  try {
    answer = run(job);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const failed: WorkerAnswer = { id: job.id, ok: false, error: { name: err.name, message: err.message, ...(isBitmarError(err) ? { code: err.code } : {}) } };
    port.postMessage(failed);
    return;
  }
  port.postMessage(answer, [answer.data.buffer as ArrayBuffer]);
});
