/**
 * The prompt mix asked of every eval scene (shapes-world.md "Prompts and answers"):
 * - describe: `describe the scene` → the caption;
 * - count: `how many shapes are there` → `one` | `two`;
 * - colour: `what color is the {shape}` for EVERY shape exactly one object has (1 or 2 questions);
 * - exists: two questions, one answered `yes` (an object of the scene, chosen at random) and one
 *   answered `no` — a hard negative most of the time: 40% the colour of a present shape changed, 30%
 *   the shape of a present colour changed, 30% any absent pair.
 * Answers come from the scene's objects, the same rules as `answerOf`, so a Python-rendered scene
 * (known only by its caption) gets the same questions as a TypeScript one.
 */
import {
  COLOURS,
  PROMPTS,
  SHAPES,
  colourPrompt,
  existsPrompt,
  pick,
  type Colour,
  type PromptKind,
  type Rng,
  type Shape,
} from '../sources/synthetic/shapes-world.js';
import { parseCaption } from './scoring.js';

export const PROMPT_KINDS: readonly PromptKind[] = ['describe', 'count', 'colour', 'exists'];

/** What a question needs to know about a scene: its caption and its objects' colours and shapes. */
export interface SceneTruth {
  readonly caption: string;
  readonly objects: readonly { readonly shape: Shape; readonly colour: Colour }[];
}

export interface Question {
  readonly kind: PromptKind;
  readonly prompt: string;
  readonly answer: string;
}

/** The objects of a world caption (undefined when the text is not one). */
export function truthFromCaption(caption: string): SceneTruth | undefined {
  const p = parseCaption(caption);
  if (!p) return undefined;
  const objects = p.objects === 1 ? [{ shape: p.shape, colour: p.colour }] : [p.first, p.second];
  return { caption, objects };
}

/** An absent (colour, shape) pair, hard (one attribute shared with an object) most of the time. */
function absentPair(truth: SceneTruth, rng: Rng): { colour: Colour; shape: Shape } {
  const isPresent = (c: Colour, s: Shape): boolean => truth.objects.some((o) => o.colour === c && o.shape === s);
  const r = rng();
  for (let tries = 0; tries < 1000; tries++) {
    const o = pick(rng, truth.objects);
    const colour = r < 0.7 && r >= 0.4 ? o.colour : pick(rng, COLOURS);
    const shape = r < 0.4 ? o.shape : pick(rng, SHAPES);
    if (!isPresent(colour, shape)) return { colour, shape };
  }
  for (const colour of COLOURS) for (const shape of SHAPES) if (!isPresent(colour, shape)) return { colour, shape };
  throw new Error('every (colour, shape) pair is present'); // unreachable with ≤ 2 objects
}

/** The questions of one scene, in kind order, restricted to `kinds`. Deterministic for the rng state. */
export function questionsFor(truth: SceneTruth, rng: Rng, kinds: readonly PromptKind[] = PROMPT_KINDS): Question[] {
  const objs = truth.objects;
  const out: Question[] = [];
  // Draw the exists targets first and always, so the pixels-independent choices do not depend on `kinds`.
  const yes = pick(rng, objs);
  const no = absentPair(truth, rng);
  if (kinds.includes('describe')) out.push({ kind: 'describe', prompt: PROMPTS.describe, answer: truth.caption });
  if (kinds.includes('count')) out.push({ kind: 'count', prompt: PROMPTS.count, answer: objs.length === 1 ? 'one' : 'two' });
  if (kinds.includes('colour')) {
    for (const s of SHAPES) {
      const withShape = objs.filter((o) => o.shape === s);
      if (withShape.length === 1) out.push({ kind: 'colour', prompt: colourPrompt(s), answer: withShape[0]!.colour });
    }
  }
  if (kinds.includes('exists')) {
    out.push({ kind: 'exists', prompt: existsPrompt(yes.colour, yes.shape), answer: 'yes' });
    out.push({ kind: 'exists', prompt: existsPrompt(no.colour, no.shape), answer: 'no' });
  }
  return out;
}

/** Parses `--kinds describe,count,…` (also `color`); throws RangeError naming a bad kind. */
export function parseKinds(spec: string | readonly string[]): PromptKind[] {
  const words = (typeof spec === 'string' ? [spec] : spec).flatMap((s) => s.split(/[,\s]+/)).filter((s) => s !== '');
  const out: PromptKind[] = [];
  for (const w of words) {
    const k = w === 'color' ? 'colour' : w;
    if (!(PROMPT_KINDS as readonly string[]).includes(k)) throw new RangeError(`unknown prompt kind "${w}": use ${PROMPT_KINDS.join(', ')}`);
    if (!out.includes(k as PromptKind)) out.push(k as PromptKind);
  }
  if (out.length === 0) throw new RangeError(`no prompt kind given: use ${PROMPT_KINDS.join(', ')}`);
  return PROMPT_KINDS.filter((k) => out.includes(k));
}
