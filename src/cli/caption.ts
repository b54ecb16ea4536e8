/** `bitmar-node caption`: one-shot captions of image files (PNG, JPEG, PPM). */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { isBitmarError } from '../errors.js';
import { defaultConfigFiles, defaultModelPath } from '../paths.js';
import { decodeImage } from '../sources/image/decode.js';
import { startModel } from './wiring/model.js';

export interface CaptionOptions {
  prompt?: string;
  model?: string;
  kernels?: string;
  json?: boolean;
  maxTokens?: number;
}

export interface CaptionLine {
  file: string;
  prompt: string;
  text: string;
  ms: number;
}

/** Captions each file; a file that fails gives an error line and the exit code 1 at the end. */
export async function captionFiles(files: string[], opts: CaptionOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const cfg = loadConfig({
    defaultFiles: defaultConfigFiles(),
    overrides: { 'model.path': opts.model, 'model.kernels': opts.kernels, 'generation.maxTokens': opts.maxTokens },
  });
  const prompt = opts.prompt ?? cfg.generation.prompt;
  const model = await startModel(cfg.model.path || defaultModelPath(), cfg);
  if (model.fallbackReason && !opts.json) err.write(`bitmar-node: ${model.fallbackReason}\n`);
  let failures = 0;
  try {
    for (const file of files) {
      const t0 = performance.now();
      try {
        const bytes = await readFile(file);
        const image = decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        const res = await model.worker.describe({ images: [image], prompt, maxTokens: cfg.generation.maxTokens }, () => {});
        const line: CaptionLine = { file, prompt, text: res.text, ms: Math.round((performance.now() - t0) * 100) / 100 };
        out.write(opts.json ? JSON.stringify(line) + '\n' : `${file}: ${res.text}\n`);
      } catch (e) {
        failures++;
        const why = isBitmarError(e) ? `${e.message} [${e.code}]` : (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
        if (opts.json) out.write(JSON.stringify({ file, prompt, error: why }) + '\n');
        err.write(`bitmar-node caption: ${file}: ${why}\n`);
      }
    }
  } finally {
    await model.close();
  }
  return failures > 0 ? 1 : 0;
}

export function registerCaptionCommand(program: Command): void {
  program
    .command('caption')
    .description('caption PNG, JPEG and PPM files once and exit (non-zero if any file failed)')
    .argument('<files...>', 'image files')
    .option('--prompt <text>', 'task prompt, e.g. "how many shapes are there" (default "describe the scene")')
    .option('--model <file>', 'GGUF model file (default: the bundled model)')
    .option('--kernels <name>', 'kernel backend: auto, native or typescript')
    .option('--max-tokens <n>', 'token cap per caption', (v) => Number.parseInt(v, 10))
    .option('--json', 'print one JSON object per file: {"file","prompt","text","ms"}')
    .action(async (files: string[], opts: CaptionOptions) => {
      process.exitCode = await captionFiles(files, opts, process.stdout, process.stderr);
    });
}
