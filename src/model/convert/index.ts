/**
 * `convertCheckpointFile`: an R1 checkpoint file (pytorch_model.bin, a training .pt holding
 * model_state_dict, or .safetensors) plus its config.json / training_metadata.json → a bitmar-r1 GGUF
 * file (docs/convert.md).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { BitmarError } from '../../errors.js';
import { readCheckpoint, type Checkpoint } from './checkpoint.js';
import { findGpt2Vocab, fitVocab } from './gpt2-vocab.js';
import { checkR1Keys, convertR1, type ConvertR1Result } from './r1-convert.js';

export { readCheckpoint, TORCH_TO_SAFETENSORS, type Checkpoint, type ReadCheckpointOptions } from './checkpoint.js';
export { parseSafetensors, writeSafetensors, tensorToFloat32, type StTensor, type StTensorInput, type Safetensors } from './safetensors.js';
export { checkR1Keys, checkpointFlavour, convertR1, ternarize, type ConvertR1Options, type ConvertR1Result, type CheckpointFlavour } from './r1-convert.js';
export { findGpt2Vocab, fitVocab, type Gpt2Vocab } from './gpt2-vocab.js';

export interface ConvertFileOptions {
  /** Output path (default: the checkpoint's path with the extension .gguf). */
  readonly out?: string;
  /** config.json or training_metadata.json (default: both, when next to the checkpoint). */
  readonly config?: string;
  /** Hugging Face tokenizer.json, or a directory with vocab.json + merges.txt. */
  readonly tokenizer?: string;
  /** general.name (default: the checkpoint's directory name for pytorch_model.bin, else its file stem). */
  readonly name?: string;
  /** Head count for the encoder, decoder and fusion (overrides every config). */
  readonly heads?: number;
  /** Python with PyTorch for pickle files (default $BITMAR_PYTHON or /usr/bin/python3). */
  readonly python?: string;
  readonly unsafePickle?: boolean;
}

export interface ConvertFileResult extends ConvertR1Result {
  readonly out: string;
  readonly checkpoint: Checkpoint;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_CONFIG_FILE', `${path}: cannot read JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Convert one checkpoint file and write the GGUF. */
export async function convertCheckpointFile(path: string, opts: ConvertFileOptions = {}): Promise<ConvertFileResult> {
  const ck = readCheckpoint(path, { ...(opts.python === undefined ? {} : { python: opts.python }), ...(opts.unsafePickle === undefined ? {} : { unsafePickle: opts.unsafePickle }) });
  checkR1Keys([...ck.tensors.keys()], path);
  const dir = dirname(path);
  let hfConfig: unknown;
  let trainingConfig: unknown = ck.trainingConfig;
  if (opts.config !== undefined) {
    const c = readJson(opts.config);
    hfConfig = c;
    trainingConfig ??= c;
  } else {
    if (existsSync(join(dir, 'config.json'))) hfConfig = readJson(join(dir, 'config.json'));
    if (trainingConfig === undefined && existsSync(join(dir, 'training_metadata.json'))) trainingConfig = readJson(join(dir, 'training_metadata.json'));
  }
  const lmHead = ck.tensors.get('text_decoder.lm_head.weight')!;
  const found = await findGpt2Vocab(opts.tokenizer, dir);
  const fitted = fitVocab(found, lmHead.shape[0]!);
  const stem = basename(path, extname(path));
  const name = opts.name ?? (stem === 'pytorch_model' || stem === 'model' ? basename(dir) : stem);
  const heads = opts.heads;
  if (heads !== undefined && !(Number.isInteger(heads) && heads >= 1)) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `--heads ${heads} must be a positive integer`);
  const res = convertR1(
    ck.tensors,
    {
      vocab: fitted.vocab,
      name,
      ...(heads === undefined ? {} : { heads: { encoder: heads, decoder: heads, fusion: heads } }),
      trainingConfig,
      hfConfig,
    },
    path,
  );
  const out = opts.out ?? join(dir, `${stem}.gguf`);
  writeFileSync(out, res.gguf);
  return { ...res, notes: fitted.note ? [fitted.note, ...res.notes] : res.notes, out, checkpoint: ck };
}
