/**
 * Starts the real node (the CLI from source) with fault injection, for the fault tests. The same
 * shape as test/helpers/spawn-node.ts `spawnCli`, on test/faults/fixtures/faulty-cli.ts.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, type RunningCli } from '../helpers/spawn-node.js';

const CLI = fileURLToPath(new URL('./fixtures/faulty-cli.ts', import.meta.url));

/** `bitmar-node <args>` with the faults named in `env` (see faulty-cli.ts). */
export function spawnFaultyNode(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, BITMAR_LOG_LEVEL: 'warn', ...env },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`timed out waiting for ${re}; stdout:\n${out.slice(-3000)}\nstderr:\n${err.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** Final and cancelled captions as the terminal printed them: `[seq] text[  (cancelled)]  — ms, frame id[ …]`. */
export function terminalCaptions(stdout: string): { seq: number; cancelled: boolean }[] {
  return [...stdout.matchAll(/^\[(\d+)\] (.*?)  — [0-9.]+ ms, frame \d+/gmu)].map((m) => ({ seq: Number(m[1]), cancelled: m[2]!.endsWith('  (cancelled)') }));
}

/** Sends SIGKILL if the process is still running (cleanup in `finally`). */
export function killNow(node: RunningCli): void {
  if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
}
