/** Starts the inference worker for `run` and `caption`. */
import { existsSync } from 'node:fs';
import { BitmarError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BitmarConfig } from '../../config/schema.js';
import { InferenceWorker } from '../../model/inference-worker.js';

export interface NodeModel {
  readonly worker: InferenceWorker;
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
  const worker = await InferenceWorker.start({ modelPath: path, kernels: cfg.model.kernels, threads: cfg.model.threads });
  const info = worker.info;
  log?.debug({ info }, 'model info');
  return {
    worker,
    name: info.name,
    kernels: info.kernels,
    episodeDim: info.episodeDim,
    fallbackReason: info.fallbackReason,
    close: () => worker.close(),
  };
}
