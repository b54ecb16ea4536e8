/**
 * Narration soak: one continuous token stream across frames (docs/bitmar-stream.md §4), bounded by
 * the sink + window KV cache, for N tokens. Reports RSS after warm-up and at the end (bar: growth
 * under 5 MB) and per-token time of the first and last 10% (bar: last within 10% of first).
 *
 *   node --import tsx bench/narration.ts [--tokens 1000000] [--model FILE] [--kernels auto]
 *
 * The engine runs in this thread (StreamEngine, the same code the inference worker runs).
 */
import { parseArgs } from 'node:util';
import { loadKernels } from '../src/model/kernels.js';
import { GgufReader } from '../src/model/gguf/reader.js';
import { StreamEngine } from '../src/model/engine/engine.js';
import { defaultModelPath } from '../src/paths.js';
import { syntheticScenes } from '../src/sources/synthetic/synthetic-camera.js';
import { renderScene } from '../src/sources/synthetic/render.js';
import { mulberry32 } from '../src/sources/synthetic/shapes-world.js';

const { values } = parseArgs({
  options: { tokens: { type: 'string', default: '1000000' }, model: { type: 'string' }, kernels: { type: 'string', default: 'auto' } },
});
const total = Number(values.tokens);
const path = values.model ?? defaultModelPath();
const { kernels } = loadKernels(values.kernels as 'auto' | 'native' | 'typescript');
const engine = StreamEngine.fromReader(GgufReader.open(path), kernels);

// A pool of frames from the synthetic camera (rendering is not what is measured).
const W = 320;
const H = 240;
const frames: { width: number; height: number; data: Uint8Array }[] = [];
const rng = mulberry32(7);
for (const step of syntheticScenes({ width: W, height: H, fps: 10, seed: 7, sceneChangeEverySec: 2, maxFrames: 64 })) {
  frames.push({ width: W, height: H, data: renderScene(step.scene, W, H, rng) });
}
const conds = frames.map((f) => engine.prepare([f], 'describe the scene'));

const buckets = 10;
const perBucket = Math.ceil(total / buckets);
const bucketMs: number[] = [];
const rssMb: number[] = [];
let produced = 0;
let sentences = 0;
let bucketStart = performance.now();
let inBucket = 0;
const t0 = performance.now();
while (produced < total) {
  const cond = conds[sentences % conds.length]!;
  sentences++;
  for (const _t of engine.generate(cond, { mode: 'narration', maxTokens: 16 })) {
    produced++;
    inBucket++;
    if (inBucket === perBucket || produced === total) {
      const now = performance.now();
      bucketMs.push((now - bucketStart) / inBucket);
      if (global.gc) global.gc();
      rssMb.push(process.memoryUsage().rss / 1048576);
      bucketStart = now;
      inBucket = 0;
    }
    if (produced >= total) break;
  }
}
const secs = (performance.now() - t0) / 1000;
const first = bucketMs[0]!;
const last = bucketMs[bucketMs.length - 1]!;
const growth = rssMb[rssMb.length - 1]! - rssMb[0]!;
console.log(`model ${path}, kernels ${kernels.name}`);
console.log(`${produced} tokens in ${sentences} sentences, ${secs.toFixed(1)} s (${(produced / secs).toFixed(0)} tokens/s)`);
console.log(`per-token time by tenth: ${bucketMs.map((m) => (m * 1000).toFixed(1) + 'µs').join(' ')}`);
console.log(`RSS MB by tenth: ${rssMb.map((m) => m.toFixed(1)).join(' ')}`);
console.log(`RSS growth after the first tenth: ${growth.toFixed(2)} MB (bar < 5 MB): ${growth < 5 ? 'PASS' : 'FAIL'}`);
console.log(`last tenth / first tenth per-token time: ${(last / first).toFixed(3)} (bar ≤ 1.10): ${last / first <= 1.1 ? 'PASS' : 'FAIL'}`);
