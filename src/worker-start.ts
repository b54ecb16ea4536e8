/**
 * Starting a worker thread whose entry module sits beside the caller. Compiled, the entry is .js; under
 * tsx (tests, development) it is .ts, and tsx's loader does not reach worker threads, so a small eval
 * bootstrap registers tsx in the worker first and then imports the entry. Every worker of the node
 * starts here (inference, synthetic camera, image decode, memory checkpoints).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Each worker's young generation, MiB (V8: 3 × the semi-space). V8 otherwise grows a busy isolate's
 * semi-spaces from 1 to 16 MiB over minutes: tens of MB of RSS that a daemon on a small board should
 * not creep into (the load bench's RSS climbed ~4 MB a minute). The main thread gets the same through
 * `--max-semi-space-size=2` on its command line (package.json start, systemd/bitmar-node-launch.sh,
 * the ament wrapper in CMakeLists.txt). A scavenge of this size takes well under a millisecond.
 */
export const YOUNG_GENERATION_MB = 6;

/**
 * `callerUrl` is the caller's `import.meta.url`; `entry` the entry module relative to it, without its
 * extension (`'./checkpoint-worker'`). Options pass through (`eval` is set for the tsx bootstrap).
 */
export function startModuleWorker(callerUrl: string, entry: string, workerOptions: WorkerOptions = {}): Worker {
  const options: WorkerOptions = { ...workerOptions, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, ...workerOptions.resourceLimits } };
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`${entry}.js`, callerUrl), options);
  const tsxDir = dirname(createRequire(callerUrl).resolve('tsx/package.json'));
  const api = JSON.stringify(pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href); // tsx/esm/api, ESM build
  const main = JSON.stringify(new URL(`${entry}.ts`, callerUrl).href);
  return new Worker(`import(${api}).then(({ register }) => { register(); return import(${main}); });`, { ...options, eval: true });
}
