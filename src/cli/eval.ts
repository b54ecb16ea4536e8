/**
 * `bitmar-node eval`: the model's quality bars (issue 4), measured through the node's own inference
 * worker. Exit code 0 when every bar passes, 1 when one fails, 2 when the eval could not run.
 *
 *   bitmar-node eval [--model FILE] [--scenes 2000] [--seed 0x5EEDE7A1] [--json] [--kinds describe,count,colour,exists]
 *                    [--recall 100] [--narration-minutes 10] [--renderer ts | --renderer python [FILE]]
 *                    [--memory none|own] [--report FILE] [--write-files DIR]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import {
  EVAL_SEED,
  PROMPT_KINDS,
  ensurePythonScenes,
  formatReport,
  parseKinds,
  runEval,
  writeSceneFiles,
  type EvalReport,
  type MemoryMode,
} from '../eval/index.js';
import { BitmarError, isBitmarError } from '../errors.js';
import { PACKAGE_ROOT, defaultConfigFiles, defaultModelPath } from '../paths.js';
import type { PromptKind } from '../sources/synthetic/shapes-world.js';
import { addConfigFlags, intArg, numArg } from './options.js';
import { startModel } from './wiring/model.js';

export interface EvalCommandOptions {
  config?: string;
  model?: string;
  kernels?: string;
  threads?: number;
  scenes: number;
  seed: number;
  json?: boolean;
  kinds?: string[];
  recall: number;
  narrationMinutes: number;
  narrationHz: number;
  renderer?: string[];
  memory: string;
  report?: string;
  writeFiles?: string;
  quiet?: boolean;
}

function nonNegative(name: string, parse: (v: string) => number): (v: string) => number {
  return (v) => {
    const n = parse(v);
    if (n < 0) throw new InvalidArgumentError(`${name} must be ≥ 0, got "${v}"`);
    return n;
  };
}

/** Runs the command; resolves with the exit code. */
export async function evalCommand(opts: EvalCommandOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const say = (line: string): void => {
    if (!opts.quiet) err.write(`bitmar-node eval: ${line}\n`);
  };
  let kinds: PromptKind[];
  try {
    kinds = opts.kinds ? parseKinds(opts.kinds) : [...PROMPT_KINDS];
  } catch (e) {
    err.write(`bitmar-node eval: ${(e as Error).message}\n`);
    return 2;
  }
  const memory = opts.memory as MemoryMode;
  if (memory !== 'none' && memory !== 'own') {
    err.write(`bitmar-node eval: --memory must be none or own, got "${opts.memory}"\n`);
    return 2;
  }
  const [rendererKind = 'ts', rendererFile] = opts.renderer ?? [];
  if (rendererKind !== 'ts' && rendererKind !== 'python') {
    err.write(`bitmar-node eval: --renderer must be ts or python [FILE], got "${rendererKind}"\n`);
    return 2;
  }
  if (opts.writeFiles !== undefined) {
    const files = writeSceneFiles(opts.writeFiles, opts.scenes, opts.seed, kinds);
    say(`wrote ${files.length} scene files and answers.json to ${opts.writeFiles}`);
    return 0;
  }
  let report: EvalReport;
  try {
    const cfg = loadConfig({
      ...(opts.config ? { file: opts.config } : { defaultFiles: defaultConfigFiles() }),
      overrides: { 'model.path': opts.model, 'model.kernels': opts.kernels, 'model.threads': opts.threads },
    });
    const model = await startModel(cfg.model.path || defaultModelPath(), cfg);
    if (model.fallbackReason) say(model.fallbackReason);
    try {
      const worker = model.worker;
      if (!worker.isStream()) throw new BitmarError('BITMAR_ERR_MODEL_ARCH', `eval scores bitmar-stream models on Shapes-world scenes; ${model.name} is ${model.arch}`);
      let renderer: { kind: 'ts' } | { kind: 'python'; file: string } = { kind: 'ts' };
      if (rendererKind === 'python') {
        const size = worker.info.hparams.imageSize;
        const file = rendererFile ?? join(PACKAGE_ROOT, 'tools', 'train', 'data', `eval-python-seed${opts.seed >>> 0}-n${opts.scenes}-s${size}.bin`);
        const made = ensurePythonScenes(file, opts.scenes, opts.seed, size);
        say(made.generated ? `wrote ${file}: ${made.command}` : `reading ${file}`);
        renderer = { kind: 'python', file };
      }
      say(`model ${model.name} (${model.kernels}), seed 0x${(opts.seed >>> 0).toString(16).toUpperCase()}, ${opts.scenes} scenes, kinds ${kinds.join(',')}`);
      report = await runEval(worker, {
        seed: opts.seed,
        scenes: opts.scenes,
        kinds,
        renderer,
        memory,
        recall: opts.recall,
        narrationMinutes: opts.narrationMinutes,
        narration: { sentenceHz: opts.narrationHz },
        onProgress: say,
      });
    } finally {
      await model.close();
    }
  } catch (e) {
    err.write(`bitmar-node eval: ${isBitmarError(e) ? `${e.message} [${e.code}]` : (e as Error).message}\n`);
    return 2;
  }
  const json = JSON.stringify(report, (_k, v: unknown) => (v === Infinity ? null : v), 1);
  if (opts.report) writeFileSync(opts.report, json + '\n');
  out.write(opts.json ? json + '\n' : formatReport(report));
  return report.pass ? 0 : 1;
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('measure the model on held-out Shapes-world scenes: accuracy per prompt kind, recall, narration (exit 1 when a bar fails)')
    .option('--scenes <n>', 'held-out scenes for the accuracy eval (0 = skip)', nonNegative('--scenes', intArg('--scenes')), 2000)
    .option('--seed <s>', 'eval seed (decimal or 0x…; never a training seed)', intArg('--seed'), EVAL_SEED)
    .option('--kinds <kinds...>', 'prompt kinds: describe, count, colour, exists (comma or space separated)')
    .option('--recall <n>', 'scenes written to memory for the recall eval (0 = skip)', nonNegative('--recall', intArg('--recall')), 100)
    .option('--narration-minutes <m>', 'minutes of synthetic camera for the narration eval (0 = skip)', nonNegative('--narration-minutes', numArg('--narration-minutes')), 10)
    .option('--narration-hz <hz>', 'narration sentences per second of stream (one sampled frame each)', numArg('--narration-hz'), 2)
    .option('--renderer <spec...>', 'ts (the node\'s renderer) or python [FILE] (a BMDS file of tools/train/shapes.py; written when missing)')
    .option('--memory <mode>', 'memory during the accuracy eval: none (as `caption`) or own (own + 3 previous episodes)', 'none')
    .option('--json', 'print the report as JSON')
    .option('--report <file>', 'also write the JSON report to FILE')
    .option('--write-files <dir>', 'write --scenes eval scenes as PNG/JPEG files with answers.json, and exit')
    .option('-q, --quiet', 'no progress lines on stderr');
  addConfigFlags(cmd, ['model.path', 'model.kernels', 'model.threads']);
  cmd.action(async (opts: EvalCommandOptions) => {
    process.exitCode = await evalCommand(opts, process.stdout, process.stderr);
  });
}
