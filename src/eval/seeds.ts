/**
 * Seeds of the evaluation. Training draws its data from small seeds (the TypeScript exporter
 * `tools/train/export-dataset.ts --seed 1, 2, …`, its `--heldout` stream `deriveSeed(seed, 0x48454c44)`
 * and `tools/train/shapes.py --seed 1, 2, …, 999`), so the evaluation uses one large seed that no
 * training command uses: EVAL_SEED = 0x5EEDE7A1 (1592649633).
 *
 * Every part of the evaluation draws from its own sub-stream of the seed (deriveSeed(seed, stream)),
 * and eval scene i of the TypeScript renderer is drawn from mulberry32(sceneSeed(seed, i)), the same
 * construction the exporter uses for its sample i, so "no eval scene is a training sample" reduces to
 * "no sceneSeed(EVAL_SEED, i) equals deriveSeed(trainingSeed, j)": test/eval/seeds.test.ts checks it
 * for the first 20,000 eval scenes against 8 training seeds × 200,000 samples.
 */
import { deriveSeed } from '../sources/synthetic/shapes-world.js';

/** The held-out evaluation seed (never passed to a training command). */
export const EVAL_SEED = 0x5eede7a1;

/** Sub-streams of a seed, one per part of the evaluation. */
export const STREAMS = {
  /** Base of the per-scene seeds of the accuracy eval (scene i: deriveSeed(seed, SCENES + i)). */
  scenes: 0,
  /** Which questions are asked (exists no-targets), independent of the pixels. */
  questions: 0x51000000,
  /** Scenes of the recall eval. */
  recall: 0x52000000,
  /** Seed of the narration stream's synthetic camera. */
  narration: 0x4e000001,
  /** Scenes written as PNG/JPEG files (`--write-files`). */
  files: 0x46000000,
} as const;

/** Seed of the rng that draws eval scene i (its frame, scene, noise, brightness and JPEG quality). */
export function sceneSeed(seed: number, index: number): number {
  return deriveSeed(seed, STREAMS.scenes + index);
}

/**
 * The per-sample seeds a training data file of `seed` uses for samples 0..count−1
 * (export-dataset.ts: sample i ← mulberry32(deriveSeed(seed, i))).
 */
export function trainingSampleSeeds(seed: number, count: number): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < count; i++) out.add(deriveSeed(seed, i));
  return out;
}

/** The held-out stream the exporter derives from a training seed (`--heldout N`). */
export function exporterHeldoutSeed(seed: number): number {
  return deriveSeed(seed, 0x48454c44);
}
