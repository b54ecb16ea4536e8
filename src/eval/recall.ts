/**
 * The recall eval (issue 4 "Recall"): `count` scenes are written to an in-memory episodic store as
 * the node writes them (the image episode e from encodeImage; fifo policy with one slot per scene, so
 * nothing is merged or evicted), then each scene's caption goes through encodeText and the store's
 * top-k query; a scene counts when its own episode comes first.
 *
 * The scenes have pairwise different captions: two scenes with the same caption are the same text
 * query, so no text could tell them apart (with 100 random scenes, one-object captions collide
 * often). They are drawn like the accuracy set (full robustness ranges) from the seed's recall stream.
 */
import { openEpisodicStore, type EpisodicStore } from '../memory/index.js';
import { deriveSeed } from '../sources/synthetic/shapes-world.js';
import type { EvalModel } from './accuracy.js';
import { CONTRACT_RANGES, tsEvalItem, type RobustnessRanges } from './scene-set.js';
import { accuracyOf, type Accuracy } from './scoring.js';
import { STREAMS } from './seeds.js';

export interface RecallEpisode {
  readonly vector: Float32Array;
  readonly caption: string;
}

export interface RecallMiss {
  readonly caption: string;
  /** Caption of the episode retrieved first instead. */
  readonly retrieved: string;
  /** 1-based rank of the scene's own episode (Infinity when not in the top k). */
  readonly rank: number;
}

export interface RecallResult {
  readonly scenes: number;
  /** Own episode retrieved first. */
  readonly top1: Accuracy;
  /** Own episode among the first 5. */
  readonly top5: Accuracy;
  /** Mean of 1/rank (0 beyond the top 5). */
  readonly meanReciprocalRank: number;
  readonly misses: RecallMiss[];
  readonly elapsedMs: number;
}

/** Writes the episodes into a fresh in-memory store; returns it and each episode's id, in order. */
export function buildRecallStore(episodes: readonly RecallEpisode[], width: number): { store: EpisodicStore; ids: number[] } {
  const store = openEpisodicStore({ width, slots: Math.max(1, episodes.length), policy: 'fifo', archiveCap: 0 });
  const ids = episodes.map((e) => store.write({ vector: e.vector, caption: e.caption, source: 'eval' }).episodeId);
  return { store, ids };
}

/**
 * Ranks each episode for its query (queries[i] should find ids[i]): top-1, top-5, MRR and the misses.
 */
export function scoreRecall(store: EpisodicStore, ids: readonly number[], queries: readonly Float32Array[], captions: readonly string[], elapsedMs = 0): RecallResult {
  let top1 = 0;
  let top5 = 0;
  let rr = 0;
  const misses: RecallMiss[] = [];
  queries.forEach((q, i) => {
    const hits = store.query(q, 5, { includeArchive: true });
    const at = hits.findIndex((h) => h.episodeId === ids[i]);
    const rank = at < 0 ? Infinity : at + 1;
    if (rank === 1) top1++;
    if (rank <= 5) {
      top5++;
      rr += 1 / rank;
    }
    if (rank !== 1) misses.push({ caption: captions[i] ?? '', retrieved: hits[0]?.caption ?? '', rank });
  });
  const n = queries.length;
  return { scenes: n, top1: accuracyOf(top1, n), top5: accuracyOf(top5, n), meanReciprocalRank: n > 0 ? rr / n : 0, misses, elapsedMs };
}

export interface RecallOptions {
  readonly seed: number;
  /** Scenes written to memory. Default 100. */
  readonly count?: number;
  readonly ranges?: RobustnessRanges;
}

/** The recall eval through the model's encoders. */
export async function evaluateRecall(model: EvalModel, opts: RecallOptions): Promise<RecallResult> {
  const t0 = performance.now();
  const count = opts.count ?? 100;
  const seed = deriveSeed(opts.seed, STREAMS.recall);
  const episodes: RecallEpisode[] = [];
  const seen = new Set<string>();
  for (let i = 0; episodes.length < count; i++) {
    if (i > count * 100) throw new Error(`could not draw ${count} scenes with different captions`);
    const item = tsEvalItem(seed, i, ['describe'], opts.ranges ?? CONTRACT_RANGES);
    if (seen.has(item.truth.caption)) continue;
    seen.add(item.truth.caption);
    episodes.push({ vector: await model.encodeImage(item.image), caption: item.truth.caption });
  }
  const { store, ids } = buildRecallStore(episodes, model.info.episodeDim);
  try {
    const queries: Float32Array[] = [];
    for (const e of episodes) queries.push(await model.encodeText(e.caption));
    return scoreRecall(store, ids, queries, episodes.map((e) => e.caption), performance.now() - t0);
  } finally {
    store.close();
  }
}
