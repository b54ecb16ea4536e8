/**
 * The evaluation of a bitmar-stream model on the Shapes world (issue 4 "Quality bars"), measured on
 * the node itself: the InferenceWorker with the engine and kernels it ships.
 *
 * - accuracy: N held-out scenes (EVAL_SEED) across the contract's robustness ranges, all four prompt
 *   kinds (describe, count, colour where allowed, exists with a yes and a no), exact match per kind;
 * - recall: 100 scenes' image episodes in an in-memory store, each caption's text vector → top-1;
 * - narration: M minutes of the synthetic camera in narration mode, exact sentences;
 * - cross-renderer: the accuracy eval on scenes drawn by tools/train/shapes.py.
 */
import { performance } from 'node:perf_hooks';
import type { PromptKind } from '../sources/synthetic/shapes-world.js';
import { evaluateAccuracy, type AccuracyResult, type EvalModel, type MemoryMode } from './accuracy.js';
import { evaluateNarration, type NarrationOptions, type NarrationResult } from './narration.js';
import { PROMPT_KINDS } from './questions.js';
import { evaluateRecall, type RecallResult } from './recall.js';
import { barsOf, modelFacts, notesOf, type EvalReport } from './report.js';
import { CONTRACT_RANGES, bmdsSceneSet, readBmds, tsSceneSet, type EvalItem, type RobustnessRanges } from './scene-set.js';
import { EVAL_SEED } from './seeds.js';

export { evaluateAccuracy, conditionBuckets, type EvalModel, type MemoryMode, type AccuracyResult, type AnswerRecord, type ErrorExample } from './accuracy.js';
export { evaluateRecall, buildRecallStore, scoreRecall, type RecallResult, type RecallEpisode } from './recall.js';
export { evaluateNarration, type NarrationOptions, type NarrationResult } from './narration.js';
export { PROMPT_KINDS, questionsFor, parseKinds, truthFromCaption, type Question, type SceneTruth } from './questions.js';
export { CONTRACT_RANGES, COMMON_FRAME_SIZES, tsEvalItem, tsSceneSet, bmdsSceneSet, readBmds, type EvalItem, type TsEvalItem, type FrameConditions, type RobustnessRanges } from './scene-set.js';
export { normalizeAnswer, isExactMatch, accuracyOf, parseCaption, captionDiff, Tally, Confusions, type Accuracy, type ParsedCaption } from './scoring.js';
export { EVAL_SEED, STREAMS, sceneSeed, trainingSampleSeeds, exporterHeldoutSeed } from './seeds.js';
export { BARS, barsOf, formatReport, modelFacts, type Bar, type EvalReport, type ModelFacts } from './report.js';
export { writeSceneFiles, fileSceneItem, encodeJpeg, type SceneFile } from './files.js';
export { ensurePythonScenes, pythonScenesCommand, SHAPES_PY } from './python-renderer.js';

export interface RunEvalOptions {
  /** Default EVAL_SEED. */
  readonly seed?: number;
  /** Scenes of the accuracy eval (0 = skip). Default 2000. */
  readonly scenes?: number;
  readonly kinds?: readonly PromptKind[];
  /** 'ts' (default): the node's renderer; 'python': a BMDS file from tools/train/shapes.py. */
  readonly renderer?: { readonly kind: 'ts' } | { readonly kind: 'python'; readonly file: string };
  readonly ranges?: RobustnessRanges;
  readonly memory?: MemoryMode;
  /** Scenes of the recall eval (0 = skip). Default 100. */
  readonly recall?: number;
  /** Minutes of the narration eval (0 = skip). Default 10. */
  readonly narrationMinutes?: number;
  readonly narration?: Omit<NarrationOptions, 'seed' | 'minutes'>;
  /** Progress lines (for stderr). */
  readonly onProgress?: (line: string) => void;
}

/** Runs the selected evals on `model` and returns the report with every bar's PASS/FAIL. */
export async function runEval(model: EvalModel, opts: RunEvalOptions = {}): Promise<EvalReport> {
  const t0 = performance.now();
  const seed = opts.seed ?? EVAL_SEED;
  const kinds = opts.kinds ?? PROMPT_KINDS;
  const scenes = opts.scenes ?? 2000;
  const renderer = opts.renderer ?? { kind: 'ts' as const };
  const ranges = opts.ranges ?? CONTRACT_RANGES;
  const say = opts.onProgress ?? ((): void => {});
  let accuracy: AccuracyResult | undefined;
  if (scenes > 0) {
    let items: Iterable<EvalItem>;
    let total = scenes;
    if (renderer.kind === 'python') {
      total = Math.min(scenes, readBmds(renderer.file).count);
      items = bmdsSceneSet(renderer.file, total, seed, kinds);
    } else {
      items = tsSceneSet(seed, scenes, kinds, ranges);
    }
    const every = Math.max(1, Math.round(total / 20));
    accuracy = await evaluateAccuracy(model, items, {
      memory: opts.memory,
      onScene: (done, ms) => {
        if (done % every === 0 || done === total) say(`accuracy: ${done}/${total} scenes, ${(ms / 1000).toFixed(0)} s`);
      },
    });
  }
  const recallCount = opts.recall ?? 100;
  let recall: RecallResult | undefined;
  if (recallCount > 0) {
    say(`recall: ${recallCount} scenes`);
    recall = await evaluateRecall(model, { seed, count: recallCount, ranges });
  }
  const minutes = opts.narrationMinutes ?? 10;
  let narration: NarrationResult | undefined;
  if (minutes > 0) {
    let every = 1;
    narration = await evaluateNarration(model, {
      ...opts.narration,
      seed,
      minutes,
      onSentence: (done, total) => {
        every = Math.max(1, Math.round(total / 10));
        if (done % every === 0 || done === total) say(`narration: ${done}/${total} sentences`);
      },
    });
  }
  const bars = barsOf(accuracy, recall, narration);
  return {
    model: modelFacts(model.info),
    seed,
    renderer: renderer.kind === 'python' ? { kind: 'python', file: renderer.file } : { kind: 'ts', ranges },
    kinds,
    ...(accuracy ? { accuracy } : {}),
    ...(recall ? { recall } : {}),
    ...(narration ? { narration } : {}),
    bars,
    pass: bars.length > 0 && bars.every((b) => b.pass),
    notes: notesOf(accuracy, recall, narration, kinds),
    elapsedMs: performance.now() - t0,
  };
}
