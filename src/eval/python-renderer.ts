/**
 * The cross-renderer check: scenes drawn by tools/train/shapes.py (a Python renderer of the same
 * contract, written independently of src/sources/synthetic/). shapes.py renders each frame at its
 * full size with its own augmentations (brightness, JPEG q70..95 with PIL) and stores only the
 * area-resized S×S frame and its caption in a BMDS file; the eval feeds those S×S frames to the
 * engine (whose resize to image_size = S is then the identity).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';

export const SHAPES_PY = join(PACKAGE_ROOT, 'tools', 'train', 'shapes.py');

/** The command that writes a Python eval file. */
export function pythonScenesCommand(file: string, count: number, seed: number, imageSize: number, python = '/usr/bin/python3'): string[] {
  return [python, SHAPES_PY, '--out', file, '--count', String(count), '--seed', String(seed >>> 0), '--image-size', String(imageSize)];
}

/**
 * Writes `file` with shapes.py unless it exists. Throws an Error with the command and its output
 * when python3 (with numpy and PIL) or shapes.py is missing or fails.
 */
export function ensurePythonScenes(file: string, count: number, seed: number, imageSize: number, python = process.env.BITMAR_PYTHON ?? '/usr/bin/python3'): { generated: boolean; command: string } {
  const cmd = pythonScenesCommand(file, count, seed, imageSize, python);
  const command = cmd.join(' ');
  if (existsSync(file)) return { generated: false, command };
  if (!existsSync(SHAPES_PY)) throw new Error(`${file} does not exist and ${SHAPES_PY} is missing (it ships with the source tree, not the package)`);
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) {
    throw new Error(`writing ${file} failed: ${command}\n${r.error?.message ?? ''}${r.stderr ?? ''}`.trim());
  }
  return { generated: true, command };
}
