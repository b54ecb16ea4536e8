// The baselines a user would pick instead, run in the same benchmark process so they interleave with
// ours: PyTorch fp32 on the CPU (Debian's python3-torch through /usr/bin/python3, one warm child
// process speaking bench/torch-decode.py's line protocol), and onnxruntime-node when it is installed
// (bench/onnx.ts: in this process, on ONNX graphs generated from the same GGUF by tools/onnx/).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const TORCH_PYTHON = '/usr/bin/python3';

/** What the PyTorch child reports when ready. */
export interface TorchInfo {
  readonly torch: string;
  readonly threads: number;
  readonly vocab: number;
}

/** A warm PyTorch decoder (bench/torch-decode.py) for one GGUF file. */
export class TorchDecoder {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
    private readonly next: () => Promise<string>,
    readonly info: TorchInfo,
  ) {}

  /**
   * Starts the child and waits until it has loaded the model; resolves to a one-line reason (string)
   * instead when PyTorch is not available.
   */
  static async start(gguf: string): Promise<TorchDecoder | string> {
    if (!existsSync(TORCH_PYTHON)) return `${TORCH_PYTHON} not found (Debian: apt-get install python3-torch libopenblas0-pthread)`;
    const probe = spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) return `PyTorch is not importable by ${TORCH_PYTHON} (Debian: apt-get install python3-torch libopenblas0-pthread)`;
    const child = spawn(TORCH_PYTHON, [join(HERE, 'torch-decode.py'), '--gguf', gguf], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const lines = createInterface({ input: child.stdout });
    const queue: string[] = [];
    const waiters: Array<(s: string) => void> = [];
    let closed = false;
    lines.on('line', (l) => (waiters.length ? waiters.shift()!(l) : queue.push(l)));
    lines.on('close', () => {
      closed = true;
      while (waiters.length) waiters.shift()!('');
    });
    const next = (): Promise<string> => (queue.length ? Promise.resolve(queue.shift()!) : closed ? Promise.resolve('') : new Promise((r) => waiters.push(r)));
    const first = await next();
    if (!first.startsWith('{')) {
      child.kill();
      return `bench/torch-decode.py failed to start: ${stderr.trim().split('\n').slice(-3).join(' ')}`;
    }
    return new TorchDecoder(child, lines, next, JSON.parse(first) as TorchInfo);
  }

  /** Greedy decode of n tokens from a fresh cache; CPU and wall ms per token. */
  async decode(n: number): Promise<{ cpuMsPerToken: number; wallMsPerToken: number }> {
    this.child.stdin.write(`decode ${n}\n`);
    const line = await this.next();
    if (!line) throw new Error('the PyTorch child exited');
    const r = JSON.parse(line) as { cpu_s: number; wall_s: number };
    return { cpuMsPerToken: (r.cpu_s * 1000) / n, wallMsPerToken: (r.wall_s * 1000) / n };
  }

  close(): void {
    this.child.stdin.end('quit\n');
    this.lines.close();
  }
}

// onnxruntime-node (bench/onnx.ts): the same weights exported to ONNX (tools/onnx/), fp32 and int8.
export { loadOnnxruntime, ORT_KINDS, OrtDecoder, OrtGemv, ortLabel, type OrtModule } from './onnx.js';
