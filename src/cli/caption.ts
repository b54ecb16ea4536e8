/**
 * `bitmar-node caption`: one-shot captions of image files (PNG, JPEG, PPM) and, for bitmar-r1
 * models, of feature-vector files (`--features`: .npy, .json or raw float32; docs/bitmar-r1.md §7).
 * bitmar-r1 captions images through a DINOv2 ONNX file (`--vision-onnx`, needs onnxruntime-node).
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { DEFAULT_CONFIG } from '../config/schema.js';
import { BitmarError, isBitmarError } from '../errors.js';
import { readFeatureFile } from '../model/r1/features-file.js';
import { R1_EMPTY_PROMPT } from '../model/r1/node-session.js';
import { defaultConfigFiles, defaultModelPath } from '../paths.js';
import { decodeImage } from '../sources/image/decode.js';
import { startModel, type NodeModel } from './wiring/model.js';

export interface CaptionOptions {
  prompt?: string;
  model?: string;
  kernels?: string;
  json?: boolean;
  maxTokens?: number;
  /** bitmar-r1: feature-vector files (each row is one frame). */
  features?: string[];
  /** bitmar-r1: DINOv2 ONNX file for images (model.visionOnnx). */
  visionOnnx?: string;
}

export interface CaptionLine {
  /** The file; `FILE#i` for row i of a feature file with several rows. */
  file: string;
  prompt: string;
  text: string;
  ms: number;
}

/** One thing to caption: an image file, or one row of a feature file. */
type Job = { readonly file: string; readonly kind: 'image' } | { readonly file: string; readonly kind: 'features' };

/**
 * Captions each file; a file that fails gives an error line and the exit code 1 at the end; a model
 * that does not load, one line and exit code 2.
 * Image files first, then the `features` files, each in the order given.
 */
export async function captionFiles(files: string[], opts: CaptionOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const cfg = loadConfig({
    defaultFiles: defaultConfigFiles(),
    overrides: { 'model.path': opts.model, 'model.kernels': opts.kernels, 'generation.maxTokens': opts.maxTokens, 'model.visionOnnx': opts.visionOnnx },
  });
  let model: NodeModel;
  try {
    model = await startModel(cfg.model.path || defaultModelPath(), cfg);
  } catch (e) {
    // the model (or R1's vision extractor) did not load: nothing can be captioned
    err.write(`bitmar-node caption: ${isBitmarError(e) ? `${e.message} [${e.code}]` : (e as Error).message}\n`);
    return 2;
  }
  const info = model.worker.info;
  // R1 has no task prompts: the prompt is the caption's prefix. The stream's default task prompt
  // means nothing to it, so unless one was chosen R1 starts from "a" (spec §6.2).
  const prompt =
    info.arch === 'bitmar-r1'
      ? (opts.prompt ?? (cfg.generation.prompt === DEFAULT_CONFIG.generation.prompt ? '' : cfg.generation.prompt)) || R1_EMPTY_PROMPT
      : (opts.prompt ?? cfg.generation.prompt);
  if (model.fallbackReason && !opts.json) err.write(`bitmar-node: ${model.fallbackReason}\n`);
  const jobs: Job[] = [...files.map((file) => ({ file, kind: 'image' as const })), ...(opts.features ?? []).map((file) => ({ file, kind: 'features' as const }))];
  let failures = 0;
  const fail = (file: string, e: unknown): void => {
    failures++;
    const why = isBitmarError(e) ? `${e.message} [${e.code}]` : (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    if (opts.json) out.write(JSON.stringify({ file, prompt, error: why }) + '\n');
    err.write(`bitmar-node caption: ${file}: ${why}\n`);
  };
  const caption = async (file: string, frame: { images: ReturnType<typeof decodeImage>[]; features?: Float32Array[] }, t0: number): Promise<void> => {
    const res = await model.worker.describe({ ...frame, prompt, maxTokens: cfg.generation.maxTokens }, () => {});
    const line: CaptionLine = { file, prompt, text: res.text, ms: Math.round((performance.now() - t0) * 100) / 100 };
    out.write(opts.json ? JSON.stringify(line) + '\n' : `${file}: ${res.text}\n`);
  };
  try {
    for (const job of jobs) {
      const t0 = performance.now();
      if (job.kind === 'image') {
        try {
          const bytes = await readFile(job.file);
          const image = decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          await caption(job.file, { images: [image] }, t0);
        } catch (e) {
          fail(job.file, e);
        }
        continue;
      }
      let rows: Float32Array[];
      try {
        if (info.arch !== 'bitmar-r1') {
          throw new BitmarError('BITMAR_ERR_MODEL_ARCH', `--features needs a bitmar-r1 model; ${info.name} is ${info.arch}, which captions images`);
        }
        rows = await readFeatureFile(job.file, info.hparams.visionInput);
      } catch (e) {
        fail(job.file, e);
        continue;
      }
      for (let i = 0; i < rows.length; i++) {
        const name = rows.length === 1 ? job.file : `${job.file}#${i}`;
        try {
          await caption(name, { images: [], features: [rows[i]!] }, i === 0 ? t0 : performance.now());
        } catch (e) {
          fail(name, e);
        }
      }
    }
  } finally {
    await model.close();
  }
  return failures > 0 ? 1 : 0;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

export function registerCaptionCommand(program: Command): void {
  program
    .command('caption')
    .description('caption PNG, JPEG and PPM files (or, for bitmar-r1, feature-vector files) once and exit (non-zero if any file failed)')
    .argument('[files...]', 'image files')
    .option('--prompt <text>', 'task prompt, e.g. "how many shapes are there" (default "describe the scene"); for bitmar-r1 the caption prefix (default "a")')
    .option('--model <file>', 'GGUF model file (default: the bundled model)')
    .option('--kernels <name>', 'kernel backend: auto, native or typescript')
    .option('--max-tokens <n>', 'token cap per caption', (v) => Number.parseInt(v, 10))
    .option('--features <file>', 'bitmar-r1: a file of 768-d feature vectors (.npy float32/float64 (768,) or (N,768), .json [..] or [[..],..], or raw float32 .bin); repeatable', collect)
    .option('--vision-onnx <file>', 'bitmar-r1: DINOv2 ONNX file that turns images into feature vectors (needs: npm install onnxruntime-node)')
    .option('--json', 'print one JSON object per file: {"file","prompt","text","ms"}')
    .action(async (files: string[], opts: CaptionOptions) => {
      if (files.length === 0 && (opts.features ?? []).length === 0) {
        process.stderr.write('bitmar-node caption: give image files and/or --features FILE\n');
        process.exitCode = 2;
        return;
      }
      process.exitCode = await captionFiles(files, opts, process.stdout, process.stderr);
    });
}
