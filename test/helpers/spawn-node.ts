import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));

export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout match of `re`, or rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/**
 * Starts `bitmar-node <args>` from source in a child process (`entry`: another CLI script, e.g. with
 * fault injection; a .js entry such as bin/bitmar-node.js runs compiled, without tsx; `nodeFlags` go
 * to node itself).
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, entry: string = CLI, nodeFlags: readonly string[] = []): RunningCli {
  const child = spawn(process.execPath, [...nodeFlags, ...(entry.endsWith('.js') ? [] : ['--import', 'tsx']), entry, ...args], {
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
    /** Rejects at the deadline, or as soon as the process has exited without printing a match. */
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
