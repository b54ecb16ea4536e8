/** The `bitmar-node` command line: one file per command, registered here. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { PACKAGE_ROOT } from '../paths.js';
import { splitRosArgs } from '../ros2/guard.js';
import { registerCaptionCommand } from './caption.js';
import { registerRunCommand } from './run.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Optional commands live in modules other work adds; a missing one is simply not listed. */
async function registerOptional(program: Command): Promise<void> {
  const optional: [string, string][] = [
    ['./memory.js', 'registerMemoryCommand'],
    ['./service.js', 'registerServiceCommand'],
    ['./convert.js', 'registerConvertCommand'],
    ['./eval.js', 'registerEvalCommand'],
    ['./bench.js', 'registerBenchCommand'],
  ];
  for (const [mod, fn] of optional) {
    try {
      const m = (await import(mod)) as Record<string, unknown>;
      const register = m[fn];
      if (typeof register === 'function') (register as (p: Command) => void)(program);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    }
  }
}

export function buildProgram(): Command {
  const program = new Command('bitmar-node')
    .description('Streaming edge node: camera frames and prompts in (ROS 2, MQTT, MCAP, synthetic), BitMar captions out, with episodic memory.')
    .version(version(), '-V, --version')
    .showHelpAfterError('(run with --help for the options)');
  registerRunCommand(program);
  registerCaptionCommand(program);
  return program;
}

/** Entry point for bin/bitmar-node.js; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  await registerOptional(program);
  program.exitOverride();
  try {
    // `ros2 run` / `ros2 launch` append `--ros-args …`: that part is rcl's, not ours.
    await program.parseAsync(splitRosArgs(argv).appArgs);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
