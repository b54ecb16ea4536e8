/**
 * Read a checkpoint to convert: safetensors is parsed here; PyTorch pickles (pytorch_model.bin,
 * training .pt files) are re-saved as safetensors by tools/convert/torch_to_safetensors.py under a
 * Python that has PyTorch (Debian's python3-torch: /usr/bin/python3 by default), so this process
 * never unpickles anything itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitmarError } from '../../errors.js';
import { PACKAGE_ROOT } from '../../paths.js';
import { parseSafetensors, type StTensor } from './safetensors.js';

export interface Checkpoint {
  readonly source: string;
  /** 'safetensors' or 'pickle'. */
  readonly format: 'safetensors' | 'pickle';
  readonly tensors: ReadonlyMap<string, StTensor>;
  readonly metadata: Readonly<Record<string, string>>;
  /** A training checkpoint's `config` (parsed JSON), when the file had one. */
  readonly trainingConfig?: unknown;
}

export interface ReadCheckpointOptions {
  /** Python with PyTorch (default: $BITMAR_PYTHON, else /usr/bin/python3). */
  readonly python?: string;
  /** Let torch.load run arbitrary pickle code (only for files you trust). */
  readonly unsafePickle?: boolean;
}

/** Where the pickle helper lives (in a checkout, or an installed package that ships tools/convert/). */
export const TORCH_TO_SAFETENSORS = join(PACKAGE_ROOT, 'tools', 'convert', 'torch_to_safetensors.py');

function formatError(message: string, cause?: unknown): BitmarError {
  return new BitmarError('BITMAR_ERR_MODEL_FORMAT', message, cause === undefined ? undefined : { cause });
}

function isSafetensors(path: string, head: Uint8Array): boolean {
  if (path.endsWith('.safetensors')) return true;
  // an 8-byte length followed by '{'
  return head.byteLength > 9 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0;
}

/** Read a checkpoint file of any supported format. */
export function readCheckpoint(path: string, opts: ReadCheckpointOptions = {}): Checkpoint {
  let bytes: Uint8Array;
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    bytes = readFileSync(path);
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_MODEL_NOT_FOUND', `checkpoint ${path} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (isSafetensors(path, bytes)) {
    const st = parseSafetensors(bytes, path);
    return { source: path, format: 'safetensors', ...st, ...trainingConfigOf(st.metadata, path) };
  }
  const zip = bytes[0] === 0x50 && bytes[1] === 0x4b; // torch.save's zip container
  const legacy = bytes[0] === 0x80; // a bare pickle (pickle protocol 2+)
  if (!zip && !legacy) {
    throw formatError(`${path}: not a safetensors file and not a PyTorch checkpoint (expected a zip or pickle from torch.save, or .safetensors)`);
  }
  return readPickle(path, opts);
}

function trainingConfigOf(metadata: Readonly<Record<string, string>>, source: string): { trainingConfig?: unknown } {
  const raw = metadata['bitmar.training_config'];
  if (raw === undefined) return {};
  try {
    return { trainingConfig: JSON.parse(raw) as unknown };
  } catch {
    throw formatError(`${source}: metadata bitmar.training_config is not JSON`);
  }
}

function readPickle(path: string, opts: ReadCheckpointOptions): Checkpoint {
  const python = opts.python ?? process.env.BITMAR_PYTHON ?? '/usr/bin/python3';
  const fix = 'install Debian\'s python3-torch (sudo apt-get install python3-torch; or pass --python with a Python that has torch), or re-save the checkpoint as .safetensors';
  if (!existsSync(TORCH_TO_SAFETENSORS)) {
    throw formatError(`${path} is a PyTorch pickle; reading it needs ${TORCH_TO_SAFETENSORS}, which this installation lacks: run the converter from a checkout, or ${fix}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-convert-'));
  const out = join(dir, 'checkpoint.safetensors');
  try {
    const args = [TORCH_TO_SAFETENSORS, path, out, ...(opts.unsafePickle === true ? ['--unsafe-pickle'] : [])];
    const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.error) {
      const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw formatError(`${path} is a PyTorch pickle; reading it needs Python with PyTorch, and ${python} ${missing ? 'does not exist' : `failed to start (${r.error.message})`}: ${fix}`, r.error);
    }
    if (r.status !== 0) {
      const why = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' ');
      if (r.status === 3) throw formatError(`${path} is a PyTorch pickle and ${python} has no PyTorch (${why}): ${fix}`);
      throw formatError(`${path}: could not read the PyTorch checkpoint with ${python}: ${why || `exit code ${r.status}`}`);
    }
    const st = parseSafetensors(readFileSync(out), path);
    return { source: path, format: 'pickle', ...st, ...trainingConfigOf(st.metadata, path) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
