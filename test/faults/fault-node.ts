/**
 * Starts the real node (the CLI from source) with fault injection, for the fault tests. The same
 * `spawnCli` of test/helpers/spawn-node.ts, on test/faults/fixtures/faulty-cli.ts.
 */
import { fileURLToPath } from 'node:url';
import { spawnCli, type RunningCli } from '../helpers/spawn-node.js';

const CLI = fileURLToPath(new URL('./fixtures/faulty-cli.ts', import.meta.url));

/** `bitmar-node <args>` with the faults named in `env` (see faulty-cli.ts). */
export function spawnFaultyNode(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  return spawnCli(args, env, CLI);
}

/** Final and cancelled captions as the terminal printed them: `[seq] text[  (cancelled)]  — ms, frame id[ …]`. */
export function terminalCaptions(stdout: string): { seq: number; cancelled: boolean }[] {
  return [...stdout.matchAll(/^\[(\d+)\] (.*?)  — [0-9.]+ ms, frame \d+/gmu)].map((m) => ({ seq: Number(m[1]), cancelled: m[2]!.endsWith('  (cancelled)') }));
}

/** Sends SIGKILL if the process is still running (cleanup in `finally`). */
export function killNow(node: RunningCli): void {
  if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
}
