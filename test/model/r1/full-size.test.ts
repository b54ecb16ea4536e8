/**
 * Optional paper-size check (GPT-2 vocabulary, d=128, 4+4 layers, K=32; 86 MB, so not committed):
 *   /usr/bin/python3 tools/reference/r1_reference.py full-size --out /tmp/r1-full
 *   BITMAR_R1_FULL=/tmp/r1-full npx mocha test/model/r1/full-size.test.ts
 * converts the reference's pytorch_model.bin with the real converter, then requires, on both kernel
 * backends, every greedy step on the reference's prefix to pick the reference's token (exact ties
 * excepted), the same forward count and the same memory side effects; prints the decode timings.
 * Skipped when BITMAR_R1_FULL is unset.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertCheckpointFile } from '../../../src/model/convert/index.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import type { Kernels } from '../../../src/model/kernels.js';
import { R1Engine } from '../../../src/model/r1/engine.js';
import { BACKENDS, expectClose } from './fixture.js';

const DIR = process.env.BITMAR_R1_FULL;

describe('bitmar-r1 paper-size random model against the reference (BITMAR_R1_FULL)', function () {
  this.timeout(600_000);
  let gguf = '';
  let ref: {
    prompt_text: string; prompt_ids: number[]; vision: number[]; tokens: number[]; forwards: number;
    memory_usage: number[]; memory_importance: number[]; step_top10: [number[], number[]][];
  };

  before(async function () {
    if (DIR === undefined || !existsSync(join(DIR, 'reference.json'))) {
      console.log('      skipped: set BITMAR_R1_FULL to a directory made by `r1_reference.py full-size`');
      this.skip();
    }
    ref = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as typeof ref;
    gguf = join(DIR, 'model.gguf');
    if (!existsSync(gguf)) await convertCheckpointFile(join(DIR, 'pytorch_model.bin'), { out: gguf });
  });

  for (const [backend, kernels] of BACKENDS) {
    it(`teacher-forced greedy steps, forwards and memory side effects equal the reference (${backend} kernels)`, function () {
      const k = kernels();
      if (typeof k === 'string') this.skip();
      const t0 = performance.now();
      const e = R1Engine.fromReader(GgufReader.open(gguf), k as Kernels);
      const loadMs = performance.now() - t0;
      assert.deepEqual(e.tokenize(ref.prompt_text), ref.prompt_ids);
      const vis = Float32Array.from(ref.vision);
      // Each step on the reference's own prefix, memory updated per forward as in its generate():
      // the reference's token must be the node's arg-max, except at an exact tie in the node (integer
      // accumulators make equal logits common over 50k rows) that the reference broke by fp32 noise.
      const ids = [...ref.prompt_ids];
      let ties = 0;
      ref.tokens.forEach((tok, s) => {
        const lg = e.forward({ inputIds: ids, visionFeatures: vis }, { memory: 'reference', logits: 'last' }).logits;
        const best = lg.reduce((a, v) => Math.max(a, v), -Infinity);
        const [ri, rv] = ref.step_top10[s]!;
        if (lg[tok] !== best) {
          assert.fail(`step ${s}: reference token ${tok} (${lg[tok]}) is not the node's arg-max (${best}); reference top-2 ${ri.slice(0, 2)} ${rv.slice(0, 2)}`);
        }
        if (lg.filter((v) => v === best).length > 1) ties++;
        ids.push(tok);
      });
      e.forward({ inputIds: ids, visionFeatures: vis }, { memory: 'reference', logits: 'last' }); // the trailing forward (spec §12.4)
      const m = e.memoryState();
      const ue = expectClose(m.usage, Float32Array.from(ref.memory_usage), 'usage', 1e-3); // end to end: encoder code flips reach the episode
      const ie = expectClose(m.importance, Float32Array.from(ref.memory_importance), 'importance', 1e-3);
      // free-running greedy generation: the same tokens up to the first exact tie
      e.resetMemory();
      const g = e.generate({ promptIds: ref.prompt_ids, visionFeatures: vis, maxNewTokens: ref.tokens.length, memory: 'reference' });
      const times: number[] = [];
      let summary;
      for (;;) {
        const n = g.next();
        if (n.done) {
          summary = n.value;
          break;
        }
        times.push(n.value.forwardMs);
      }
      assert.equal(summary.forwards, ref.forwards);
      let same = 0;
      while (same < ref.tokens.length && summary.tokenIds[same] === ref.tokens[same]) same++;
      if (ties === 0) assert.equal(same, ref.tokens.length);
      const mean = times.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, times.length - 1);
      console.log(
        `      ${(k as Kernels).name}: ${ref.tokens.length} teacher-forced steps ok (${ties} exact ties), free greedy equal for ${same}/${ref.tokens.length} tokens; ` +
          `memory rel err usage ${ue.toExponential(1)}, importance ${ie.toExponential(1)}\n` +
          `      load ${loadMs.toFixed(0)} ms, first forward (T=${ref.prompt_ids.length}) ${times[0]!.toFixed(1)} ms, mean per-token forward ${mean.toFixed(1)} ms ` +
          `(T ${ref.prompt_ids.length + 1}…${ref.prompt_ids.length + ref.tokens.length - 1})`,
      );
      // streaming (approximate) decode speed on the same model
      e.resetMemory();
      const s = [...e.generate({ promptIds: ref.prompt_ids, visionFeatures: vis, maxNewTokens: 64, stopAtEos: false, memory: 'frozen', mode: 'streaming' })];
      const sm = s.slice(1).reduce((a, b) => a + b.forwardMs, 0) / (s.length - 1);
      console.log(`      ${(k as Kernels).name}: streaming (approximate, encoder window 32) ${sm.toFixed(1)} ms/token; first token equal: ${s[0]!.tokenId === ref.tokens[0]}`);
    });
  }
});
