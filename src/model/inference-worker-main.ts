/**
 * The worker_threads side of InferenceWorker (inference-worker.ts): loads the engine, then
 * serves one request at a time. A describe runs a synchronous token loop; cancellation is polled
 * between tokens from the shared cancel slots, and each token is posted as soon as it is sampled.
 * Errors become messages; nothing here throws past the message handler.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { isBitmarError } from '../errors.js';
import { StreamEngine } from './engine/engine.js';
import { modelInfo } from './engine/model-info.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './inference-worker.js';
import { loadKernels } from './kernels.js';

function serialize(e: unknown): SerializedError {
  if (isBitmarError(e)) return { name: e.name, code: e.code, message: e.message };
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

function main(): void {
  const port = parentPort;
  if (port === null) throw new Error('inference-worker-main.ts must run in a worker thread');
  const init = workerData as WorkerInit;
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  const cancel = new Int32Array(init.cancel);
  const slots = cancel.length;

  let engine: StreamEngine;
  try {
    const loaded = loadKernels(init.kernels);
    engine = StreamEngine.load(init.modelPath, loaded.kernels);
    post({ type: 'ready', info: modelInfo(engine, init.modelPath, loaded.fallbackReason) });
  } catch (e) {
    post({ type: 'startError', error: serialize(e) });
    return;
  }

  port.on('message', (m: ToWorker) => {
    try {
      switch (m.type) {
        case 'describe': {
          const isCancelled = (): boolean => Atomics.load(cancel, m.id % slots) === m.id;
          const r = engine.describe(
            { images: m.images, prompt: m.prompt, ...m.options },
            (t) => post({ type: 'token', id: m.id, token: { index: t.index, tokenId: t.tokenId, piece: t.piece, text: t.text, atEpochMs: performance.timeOrigin + t.atMs } }),
            isCancelled,
          );
          post({ type: 'describeResult', id: m.id, result: r }, r.episodes.map((e) => e.buffer as ArrayBuffer));
          break;
        }
        case 'encodeText': {
          const u = engine.encodeText(m.text).u;
          post({ type: 'vector', id: m.id, vector: u }, [u.buffer as ArrayBuffer]);
          break;
        }
        case 'encodeImage': {
          const e = engine.encodeImage(m.image).e;
          post({ type: 'vector', id: m.id, vector: e }, [e.buffer as ArrayBuffer]);
          break;
        }
        case 'setMemory':
          engine.setMemory(m.slots, m.count);
          break;
        case 'close':
          post({ type: 'closed', id: m.id });
          port.close();
          break;
      }
    } catch (e) {
      if (m.type !== 'setMemory') post({ type: 'error', id: m.id, error: serialize(e) });
      else post({ type: 'error', id: -1, error: serialize(e) });
    }
  });
}

main();
