/**
 * The worker_threads side of InferenceWorker (inference-worker.ts): loads the model named by the
 * GGUF's general.architecture — a bitmar-stream StreamEngine, or a bitmar-r1 R1NodeSession (with the
 * DINOv2 ONNX extractor when `visionOnnx` is set) — then serves one request at a time, in order (a
 * promise chain: R1's feature extraction is async). A describe runs a synchronous token loop;
 * cancellation is polled between tokens from the shared cancel slots, and each token is posted as
 * soon as it is sampled. Errors become messages; nothing here throws past the message handler.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { isBitmarError } from '../errors.js';
import { StreamEngine } from './engine/engine.js';
import { modelInfo } from './engine/model-info.js';
import { GgufReader } from './gguf/reader.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit, WorkerModelInfo } from './inference-worker.js';
import { loadKernels } from './kernels.js';
import { createBufferReleaser } from './kernels-native.js';
import { R1_ARCH } from './r1/config.js';
import { R1Engine } from './r1/engine.js';
import { r1Model } from './r1/index.js';
import { R1NodeSession } from './r1/node-session.js';

function serialize(e: unknown): SerializedError {
  if (isBitmarError(e)) return { name: e.name, code: e.code, message: e.message };
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

type Served = { readonly arch: 'bitmar-stream'; readonly engine: StreamEngine } | { readonly arch: 'bitmar-r1'; readonly session: R1NodeSession };

async function load(init: WorkerInit): Promise<{ served: Served; info: WorkerModelInfo }> {
  const loaded = loadKernels(init.kernels, init.threads);
  const reader = GgufReader.open(init.modelPath);
  const arch = reader.get('general.architecture');
  if (arch?.type === 'string' && arch.value === R1_ARCH) {
    const engine = R1Engine.fromReader(reader, loaded.kernels);
    const session = await R1NodeSession.open(engine, { visionOnnx: init.visionOnnx, threads: init.threads, memory: init.r1Memory });
    const info = { ...r1Model(engine, init.modelPath, loaded.fallbackReason).info, vision: session.visionInfo, memoryMode: session.memory };
    return { served: { arch: 'bitmar-r1', session }, info };
  }
  const engine = StreamEngine.fromReader(reader, loaded.kernels);
  return { served: { arch: 'bitmar-stream', engine }, info: { ...modelInfo(engine, init.modelPath, loaded.fallbackReason), arch: 'bitmar-stream' } };
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('inference-worker-main.ts must run in a worker thread');
  const init = workerData as WorkerInit;
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  const cancel = new Int32Array(init.cancel);
  const slots = cancel.length;

  let served: Served;
  try {
    const r = await load(init);
    served = r.served;
    post({ type: 'ready', info: r.info });
  } catch (e) {
    post({ type: 'startError', error: serialize(e) });
    return;
  }

  // Frames arrive transferred and are dead once described: their pixels are freed at once, not at
  // this isolate's next GC (kernels-native.ts createBufferReleaser).
  const release = createBufferReleaser();
  const vector = (id: number, v: Float32Array): void => post({ type: 'vector', id, vector: v }, [v.buffer as ArrayBuffer]);

  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.type) {
      case 'describe': {
        const isCancelled = (): boolean => Atomics.load(cancel, m.id % slots) === m.id;
        const onToken = (t: { index: number; tokenId: number; piece: string; text: string; atMs: number }): void =>
          post({ type: 'token', id: m.id, token: { index: t.index, tokenId: t.tokenId, piece: t.piece, text: t.text, atEpochMs: performance.timeOrigin + t.atMs } });
        try {
          const r =
            served.arch === 'bitmar-r1'
              ? await served.session.describe({ images: m.images, features: m.features, prompt: m.prompt, options: m.options }, onToken, isCancelled)
              : served.engine.describe({ images: m.images, prompt: m.prompt, ...m.options }, onToken, isCancelled);
          post({ type: 'describeResult', id: m.id, result: r }, r.episodes.map((e) => e.buffer as ArrayBuffer));
        } finally {
          release(m.images.map((img) => img.data.buffer));
        }
        break;
      }
      case 'encodeText':
        vector(m.id, served.arch === 'bitmar-r1' ? served.session.encodeText(m.text) : served.engine.encodeText(m.text).u);
        break;
      case 'encodeImage':
        if (served.arch === 'bitmar-r1') vector(m.id, await served.session.encodeFrame(m.image, m.features, m.prompt));
        else if (m.image === null) throw new Error('bitmar-stream encodes images, not feature vectors');
        else {
          try {
            vector(m.id, served.engine.encodeImage(m.image).e);
          } finally {
            release([m.image.data.buffer]);
          }
        }
        break;
      case 'setMemory':
        if (served.arch === 'bitmar-stream') served.engine.setMemory(m.slots, m.count);
        break;
      case 'close':
        if (served.arch === 'bitmar-r1') await served.session.close();
        post({ type: 'closed', id: m.id });
        port.close();
        break;
    }
  };

  let queue: Promise<void> = Promise.resolve();
  port.on('message', (m: ToWorker) => {
    queue = queue.then(async () => {
      try {
        await handle(m);
      } catch (e) {
        if (m.type !== 'setMemory') post({ type: 'error', id: m.id, error: serialize(e) });
        else post({ type: 'error', id: -1, error: serialize(e) });
      }
    });
  });
}

void main();
