/**
 * The accuracy eval: every question of every scene through the node's engine (InferenceWorker.describe,
 * the path of `run` and `caption`: the full frame goes to the worker, which preprocesses and encodes
 * it), greedy decoding, exact match per prompt kind.
 *
 * Memory: 'none' (default) answers with no live memory slot, as `bitmar-node caption` does; 'own'
 * first writes the scene's own episode and the episodes of the 3 previous scenes into the live
 * memory (the condition the trainer's held-out eval uses, and close to `run`, whose memory holds
 * the stream's recent frames).
 */
import { performance } from 'node:perf_hooks';
import type { InferenceWorker } from '../model/inference-worker.js';
import { COLOURS, type PromptKind } from '../sources/synthetic/shapes-world.js';
import { PROMPT_KINDS } from './questions.js';
import type { EvalItem, FrameConditions } from './scene-set.js';
import { Confusions, Tally, captionDiff, isExactMatch, normalizeAnswer, type Accuracy } from './scoring.js';

/** The part of the inference worker the evals use (a fake can stand in for tests). */
export type EvalModel = Pick<InferenceWorker, 'describe' | 'encodeText' | 'encodeImage' | 'setMemory' | 'info'>;

export type MemoryMode = 'none' | 'own';

export interface AccuracyOptions {
  readonly memory?: MemoryMode;
  /** Wrong answers kept as examples, per prompt kind. Default 3. */
  readonly examplesPerKind?: number;
  /** Called with every answer, in scene order. */
  readonly onAnswer?: (r: AnswerRecord) => void;
  /** Called after each scene. */
  readonly onScene?: (done: number, elapsedMs: number) => void;
}

export interface AnswerRecord {
  readonly scene: number;
  readonly kind: PromptKind;
  readonly prompt: string;
  readonly expected: string;
  readonly got: string;
  readonly correct: boolean;
}

export interface ErrorExample extends AnswerRecord {
  readonly conditions: FrameConditions;
  /** The scene's caption (context for a wrong answer to another prompt). */
  readonly caption: string;
}

export interface AccuracyResult {
  readonly renderer: 'ts' | 'python' | 'mixed';
  readonly scenes: number;
  readonly questions: number;
  readonly memory: MemoryMode;
  /** Every question, micro-averaged. */
  readonly overall: Accuracy;
  /** Per prompt kind asked (describe, count, colour, exists). */
  readonly perKind: Partial<Record<PromptKind, Accuracy>>;
  /**
   * exists split by the right answer (`exists yes`, `exists no`), and the no-questions by what the
   * absent pair shares with an object: `exists no, shape shared` (a present shape in another
   * colour), `…, colour shared`, `…, nothing shared`.
   */
  readonly existsByAnswer: Record<string, Accuracy>;
  /** All questions by frame condition: dimension → bucket → accuracy. */
  readonly byCondition: Record<string, Record<string, Accuracy>>;
  /** Answers to `what color is the …`: expected colour → answered colour (or `other`) → count. */
  readonly colourMatrix: Record<string, Record<string, number>>;
  /** Most frequent confusions, e.g. `colour: purple → blue`, `caption place: on the left → in the middle`. */
  readonly confusions: { confusion: string; count: number }[];
  readonly examples: ErrorExample[];
  readonly elapsedMs: number;
  /** Wall time per question, rendering included (ms). */
  readonly msPerQuestion: number;
}

function bucket(v: number, edges: readonly number[], labels: readonly string[]): string {
  for (let i = 0; i < edges.length; i++) if (v < edges[i]!) return labels[i]!;
  return labels[labels.length - 1]!;
}

/** The condition buckets a frame falls in (dimension → bucket label). */
export function conditionBuckets(c: FrameConditions): Record<string, string> {
  const out: Record<string, string> = { objects: c.objects === 1 ? '1 object' : '2 objects' };
  if (c.brightness === null && c.noiseSigma === null) return out; // a Python frame: only its object count is known
  out['frame height'] = bucket(c.height, [240, 480], ['120–239', '240–479', '480–720']);
  out.aspect = bucket(c.width / c.height, [0.75, 1.5, 2.5], ['<0.75', '0.75–1.5', '1.5–2.5', '≥2.5']);
  out.jpeg = c.jpegQuality === null ? 'none' : c.jpegQuality < 85 ? 'q70–84' : 'q85–100';
  if (c.brightness !== null) out.brightness = bucket(c.brightness, [0.95, 1.05], ['0.90–0.95', '0.95–1.05', '1.05–1.10']);
  if (c.noiseSigma !== null) out.noise = c.noiseSigma < 4 ? 'σ 0–4' : 'σ 4–8';
  return out;
}

/** Up to 4 recent episodes with the newest first, as one [count, d] block. */
function memoryBlock(episodes: readonly Float32Array[], d: number): Float32Array {
  const out = new Float32Array(episodes.length * d);
  episodes.forEach((e, i) => out.set(e, i * d));
  return out;
}

/**
 * Asks every question of every item and scores it. Items are consumed lazily; the next scene is
 * rendered while the worker answers the current one.
 */
export async function evaluateAccuracy(model: EvalModel, items: Iterable<EvalItem>, opts: AccuracyOptions = {}): Promise<AccuracyResult> {
  const memory = opts.memory ?? 'none';
  const perExample = opts.examplesPerKind ?? 3;
  const d = model.info.episodeDim;
  const t0 = performance.now();
  const kinds = new Tally();
  const exists = new Tally();
  const overall = new Tally();
  const byCondition = new Map<string, Tally>();
  const confusions = new Confusions();
  const examples: ErrorExample[] = [];
  const colourMatrix: Record<string, Record<string, number>> = {};
  const renderers = new Set<EvalItem['renderer']>();
  let scenes = 0;
  let questions = 0;
  const recent: Float32Array[] = [];
  if (memory === 'none') model.setMemory(new Float32Array(0), 0);

  const score = (item: EvalItem, q: EvalItem['questions'][number], got: string): void => {
    const correct = isExactMatch(got, q.answer);
    opts.onAnswer?.({ scene: item.index, kind: q.kind, prompt: q.prompt, expected: q.answer, got, correct });
    kinds.add(q.kind, correct);
    overall.add('all', correct);
    if (q.kind === 'exists') {
      exists.add(`exists ${q.answer}`, correct);
      const m = /^is there a (\w+) (\w+)$/.exec(q.prompt);
      if (q.answer === 'no' && m) {
        const sharesColour = item.truth.objects.some((o) => o.colour === m[1]);
        const sharesShape = item.truth.objects.some((o) => o.shape === m[2]);
        exists.add(`exists no, ${sharesShape ? 'shape' : sharesColour ? 'colour' : 'nothing'} shared`, correct);
      }
    }
    if (q.kind === 'colour') {
      const row = (colourMatrix[q.answer] ??= {});
      const g = normalizeAnswer(got);
      const col = (COLOURS as readonly string[]).includes(g) ? g : 'other';
      row[col] = (row[col] ?? 0) + 1;
    }
    for (const [dim, b] of Object.entries(conditionBuckets(item.conditions))) {
      let t = byCondition.get(dim);
      if (!t) byCondition.set(dim, (t = new Tally()));
      t.add(b, correct);
    }
    if (correct) return;
    const g = normalizeAnswer(got);
    if (q.kind === 'describe') for (const [field, e, w] of captionDiff(q.answer, got)) confusions.add(`caption ${field}`, e, w);
    else if (q.kind === 'colour' && item.truth.objects.some((o) => o.colour === g && o.colour !== q.answer)) confusions.add('colour', 'asked shape', "the other object's colour");
    else confusions.add(q.kind, q.answer, g === '' ? '(empty)' : g.length > 24 ? `${g.slice(0, 24)}…` : g);
    if (examples.filter((x) => x.kind === q.kind).length < perExample) {
      examples.push({ scene: item.index, kind: q.kind, prompt: q.prompt, expected: q.answer, got: g, correct, conditions: item.conditions, caption: item.truth.caption });
    }
  };

  const submit = async (item: EvalItem): Promise<void> => {
    if (memory === 'own') {
      const own = await model.encodeImage({ ...item.image, data: item.image.data.slice() });
      const slots = [own, ...recent];
      model.setMemory(memoryBlock(slots, d), slots.length);
      recent.unshift(own);
      if (recent.length > 3) recent.pop();
    }
    const answers = item.questions.map((q) => {
      return model.describe({ images: [{ ...item.image, data: item.image.data.slice() }], prompt: q.prompt }, () => {}).then((r) => r.text);
    });
    const texts = await Promise.all(answers);
    item.questions.forEach((q, i) => score(item, q, texts[i]!));
    questions += item.questions.length;
    scenes++;
    renderers.add(item.renderer);
    opts.onScene?.(scenes, performance.now() - t0);
  };

  // One scene in flight while the next is rendered. With 'own' memory the encodeImage of the next
  // scene must not overtake the current scene's answers, so scenes run strictly one after another.
  let inFlight: Promise<void> | null = null;
  for (const item of items) {
    if (inFlight && memory === 'own') await inFlight;
    const prev = inFlight;
    inFlight = submit(item);
    inFlight.catch(() => undefined); // observed below; must not count as unhandled meanwhile
    if (prev) await prev;
  }
  if (inFlight) await inFlight;

  const perKind: Partial<Record<PromptKind, Accuracy>> = {};
  for (const k of PROMPT_KINDS) if (kinds.keys().includes(k)) perKind[k] = kinds.get(k);
  const elapsedMs = performance.now() - t0;
  return {
    renderer: renderers.size === 1 ? [...renderers][0]! : 'mixed',
    scenes,
    questions,
    memory,
    overall: overall.get('all'),
    perKind,
    existsByAnswer: exists.toJSON(),
    byCondition: Object.fromEntries([...byCondition.entries()].map(([dim, t]) => [dim, t.toJSON()])),
    colourMatrix,
    confusions: confusions.top(12),
    examples,
    elapsedMs,
    msPerQuestion: questions > 0 ? elapsedMs / questions : 0,
  };
}
