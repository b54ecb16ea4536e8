// Writes the ONNX graphs the onnxruntime baselines of `npm run bench` use, for inspection (e.g. in
// Netron) or for running them elsewhere. `npm run bench` builds the same graphs itself (cached in
// $TMPDIR/bitmar-onnx/); this is not needed to run it.
//   node --import tsx tools/onnx/export.ts --gguf MODEL.gguf [--kind fp32|int8|both] [--out DIR]
//       → DIR/NAME-cond-KIND.onnx, DIR/NAME-step-KIND.onnx (the decoder; see tools/onnx/bitmar-onnx.ts)
//   node --import tsx tools/onnx/export.ts --gemv 1024x1024 [--kind …] [--out DIR]
//       → DIR/gemv-1024x1024-KIND.onnx on bench/kernels.ts's random ternary matrix (scale 0.01)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { randomCodes } from '../../bench/kernels.js';
import { GgufReader } from '../../src/model/gguf/reader.js';
import { decoderModels, gemvModel, type OnnxWeightKind } from './bitmar-onnx.js';

function main(argv: readonly string[]): void {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
  };
  const kindArg = arg('--kind') ?? 'both';
  if (!['fp32', 'int8', 'both'].includes(kindArg)) throw new Error(`--kind ${kindArg}: use fp32, int8 or both`);
  const kinds: OnnxWeightKind[] = kindArg === 'both' ? ['fp32', 'int8'] : [kindArg as OnnxWeightKind];
  const out = arg('--out') ?? '.';
  mkdirSync(out, { recursive: true });
  const write = (name: string, bytes: Uint8Array): void => {
    const p = join(out, name);
    writeFileSync(p, bytes);
    console.log(`${p} (${(bytes.length / 1e6).toFixed(1)} MB)`);
  };
  const gguf = arg('--gguf');
  const gemv = arg('--gemv');
  if (gguf) {
    const stem = basename(gguf).replace(/\.gguf$/, '');
    const r = GgufReader.fromBytes(new Uint8Array(readFileSync(gguf)), gguf);
    for (const k of kinds) {
      const m = decoderModels(r, k);
      write(`${stem}-cond-${k}.onnx`, m.cond);
      write(`${stem}-step-${k}.onnx`, m.step);
    }
  } else if (gemv) {
    const [rows, cols] = gemv.split('x').map(Number) as [number, number];
    if (!(rows > 0 && cols > 0)) throw new Error(`--gemv ${gemv}: use ROWSxCOLS`);
    for (const k of kinds) write(`gemv-${rows}x${cols}-${k}.onnx`, gemvModel(randomCodes(rows, cols), rows, cols, 0.01, k));
  } else {
    throw new Error('give --gguf MODEL.gguf or --gemv ROWSxCOLS');
  }
}

try {
  main(process.argv.slice(2));
} catch (e) {
  console.error(String((e as Error).message ?? e));
  process.exit(1);
}
