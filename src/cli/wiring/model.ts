/** Starts the inference worker for `run` and `caption` (either architecture: docs/bitmar-r1.md §7). */
import { existsSync } from 'node:fs';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BitmarConfig } from '../../config/schema.js';
import { InferenceWorker, type WorkerModelInfo } from '../../model/inference-worker.js';

export interface NodeModel {
  readonly worker: InferenceWorker<WorkerModelInfo>;
  readonly arch: WorkerModelInfo['arch'];
  readonly name: string;
  readonly kernels: string;
  readonly episodeDim: number;
  /** One line saying why the TypeScript kernels are in use, when they are. */
  readonly fallbackReason?: string;
  close(): Promise<void>;
}

export async function startModel(path: string, cfg: Pick<BitmarConfig, 'model'>, log?: Logger): Promise<NodeModel> {
  if (!existsSync(path)) {
    throw new BitmarError('BITMAR_ERR_MODEL_NOT_FOUND', `model file ${path} does not exist; pass --model FILE or reinstall the package to restore models/`);
  }
  const worker = await InferenceWorker.start({
    modelPath: path,
    kernels: cfg.model.kernels,
    threads: cfg.model.threads,
    visionOnnx: cfg.model.visionOnnx,
    r1Memory: cfg.model.r1Memory,
  });
  const info = worker.info;
  log?.debug({ info }, 'model info');
  if (cfg.model.threads > 1) {
    if (info.kernels === 'typescript') log?.info(`model.threads ${cfg.model.threads} ignored: the TypeScript kernels are single-threaded (the native kernels use it)`);
    else log?.info(`${info.kernels} kernels: ${cfg.model.threads} intra-op threads`);
  }
  if (info.arch === 'bitmar-r1') {
    const vision = info.vision === null ? 'feature vectors only (set model.visionOnnx for images)' : `images through ${info.vision.path} (${info.vision.output}${info.vision.pooling === 'cls' ? ' CLS token' : ''}, ${info.vision.size}×${info.vision.size})`;
    log?.info(`bitmar-r1: exact generation, memory reads "${info.memoryMode}"; frames: ${vision}`);
    log?.info(
      `bitmar-r1: the episodic memory stores R1's own episode vectors (normalised e, ${info.episodeDim}-d, docs/bitmar-r1.md §7); they do not feed back into R1, which reads the memory slots stored in its GGUF`,
    );
  } else if (cfg.model.visionOnnx) {
    log?.warn(`model.visionOnnx (${cfg.model.visionOnnx}) is for bitmar-r1 models; ${info.name} is bitmar-stream and encodes images itself: ignored`);
  }
  return {
    worker,
    arch: info.arch,
    name: info.name,
    kernels: info.kernels,
    episodeDim: info.episodeDim,
    fallbackReason: info.fallbackReason,
    close: () => worker.close(),
  };
}
