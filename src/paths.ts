/** Where the package's own files and the node's state live. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds package.json, models/, config/), from dist/ or src/ alike. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The bundled models, best first: the trained Shapes model, then the interim random one. */
export const BUNDLED_MODELS = ['bitmar-stream-shapes.gguf', 'bitmar-stream-random.gguf'].map((f) => join(PACKAGE_ROOT, 'models', f));

export function defaultModelPath(): string {
  return BUNDLED_MODELS.find((p) => existsSync(p)) ?? BUNDLED_MODELS[0]!;
}

/** Config files read when present, lowest precedence first. */
export function defaultConfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const files = [join(PACKAGE_ROOT, 'config', 'bitmar.yaml'), '/etc/bitmar-node/bitmar.yaml'];
  if (env.CONFIGURATION_DIRECTORY) files.push(join(env.CONFIGURATION_DIRECTORY.split(':')[0]!, 'bitmar.yaml'));
  return files;
}

/** State directory: config, else systemd's $STATE_DIRECTORY, else $XDG_STATE_HOME/bitmar-node. */
export function resolveStateDir(configured: string, env: NodeJS.ProcessEnv = process.env): string {
  if (configured) return resolve(configured);
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0]!;
  const xdg = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(xdg, 'bitmar-node');
}
