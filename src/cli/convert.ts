/** `bitmar-node convert`: an R1 BitMar checkpoint → a bitmar-r1 GGUF file (docs/convert.md). */
import { Command } from 'commander';
import { isBitmarError } from '../errors.js';
import { convertCheckpointFile, type ConvertFileOptions } from '../model/convert/index.js';

export interface ConvertCliOptions {
  config?: string;
  out?: string;
  tokenizer?: string;
  name?: string;
  heads?: number;
  python?: string;
  unsafePickle?: boolean;
  json?: boolean;
}

/** Runs one conversion; resolves with the exit code (0 ok, 1 failed). */
export async function convertCommand(checkpoint: string, opts: ConvertCliOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const t0 = performance.now();
  try {
    const o: ConvertFileOptions = {
      ...(opts.out === undefined ? {} : { out: opts.out }),
      ...(opts.config === undefined ? {} : { config: opts.config }),
      ...(opts.tokenizer === undefined ? {} : { tokenizer: opts.tokenizer }),
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.heads === undefined ? {} : { heads: opts.heads }),
      ...(opts.python === undefined ? {} : { python: opts.python }),
      ...(opts.unsafePickle === undefined ? {} : { unsafePickle: opts.unsafePickle }),
    };
    const r = await convertCheckpointFile(checkpoint, o);
    const h = r.hparams;
    const ms = Math.round(performance.now() - t0);
    if (opts.json) {
      out.write(JSON.stringify({ checkpoint, out: r.out, format: r.checkpoint.format, hparams: h, stats: r.stats, notes: r.notes, bytes: r.gguf.byteLength, ms }) + '\n');
    } else {
      for (const n of r.notes) err.write(`bitmar-node convert: note: ${n}\n`);
      out.write(
        `${checkpoint} (${r.checkpoint.format}, R1): d=${h.dim}, ${h.encoderLayers}+${h.decoderLayers} layers, heads ${h.encoderHeads}/${h.decoderHeads}/${h.fusionHeads}, ` +
          `K=${h.memorySlots}, vocab ${h.vocabSize}, context ${h.contextLength}, vision ${h.visionInput}→${h.visionHidden}→${h.dim}\n` +
          `  ${r.stats.bitLinears} BitLinears, ${r.stats.ternaryWeights} ternary weights (${(100 * r.stats.zeroFraction).toFixed(1)}% zero), ${r.stats.tensors} tensors\n` +
          `  → ${r.out} (${(r.gguf.byteLength / 1e6).toFixed(2)} MB, ${ms} ms)\n`,
      );
    }
    return 0;
  } catch (e) {
    const why = isBitmarError(e) ? `${e.message} [${e.code}]` : (e as Error).message;
    err.write(`bitmar-node convert: ${why}\n`);
    return 1;
  }
}

export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description('convert an R1 BitMar checkpoint (pytorch_model.bin, a training .pt, or .safetensors) to a bitmar-r1 GGUF file')
    .argument('<checkpoint>', 'pytorch_model.bin, checkpoint_*.pt (with model_state_dict) or *.safetensors')
    .option('--config <file>', 'config.json or training_metadata.json (default: those next to the checkpoint)')
    .option('--out <file>', 'output GGUF (default: the checkpoint path with .gguf)')
    .option('--tokenizer <path>', 'GPT-2 tokenizer.json, or a directory with vocab.json + merges.txt (default: next to the checkpoint, else js-tiktoken r50k_base)')
    .option('--name <name>', 'general.name stored in the file')
    .option('--heads <n>', 'attention heads of the encoder, decoder and fusion (default: from the config, else 4)', (v) => Number.parseInt(v, 10))
    .option('--python <path>', 'Python with PyTorch for pickle checkpoints (default: $BITMAR_PYTHON or /usr/bin/python3)')
    .option('--unsafe-pickle', 'let torch.load run arbitrary pickle code (only for files you trust)')
    .option('--json', 'print one JSON object with the result')
    .action(async (checkpoint: string, opts: ConvertCliOptions) => {
      process.exitCode = await convertCommand(checkpoint, opts, process.stdout, process.stderr);
    });
}
