/**
 * Shapes world v1 (../shared/docs/shapes-world.md): the enums, a seeded RNG, the scene sampler that
 * obeys every rule of the contract, captions, prompts and answers.
 *
 * Units: positions are frame FRACTIONS (x to the right, y down, 0..1) so a scene renders at any size;
 * an object's side `sizeFrac` is a fraction of the frame HEIGHT (as the contract's size table says).
 * The pixel rules (gap = 4% of frame width, inside the frame) depend on the aspect ratio, so a scene
 * remembers the `aspect` (width / height) it was sampled for; captions depend on fractions only and
 * are right at any size.
 */

// ---------------------------------------------------------------------------------------------
// RNG

import type { Rng } from '../../rng.js';

export { mulberry32, type Rng } from '../../rng.js';

/** A well-mixed 32-bit seed for sub-stream `stream` of `seed` (splitmix32 finaliser). */
export function deriveSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream >>> 0, 0x85ebca6b) + 0x6a09e667) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** Uniform integer in [lo, hi] (inclusive). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Uniform real in [lo, hi). */
export function randUniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}

/** One element of a non-empty list, uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

// ---------------------------------------------------------------------------------------------
// The world's enums (contract tables)

export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export type Shape = (typeof SHAPES)[number];

export const COLOURS = ['red', 'green', 'blue', 'yellow', 'white', 'purple'] as const;
export type Colour = (typeof COLOURS)[number];
export type Rgb = readonly [number, number, number];

/** Nominal RGB of each colour; a rendered object may differ by up to ±COLOUR_JITTER per channel. */
export const COLOUR_RGB: Readonly<Record<Colour, Rgb>> = {
  red: [220, 40, 40],
  green: [40, 200, 60],
  blue: [50, 90, 230],
  yellow: [230, 210, 40],
  white: [235, 235, 235],
  purple: [160, 60, 200],
};
export const COLOUR_JITTER = 15;

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];
/** Side s of the bounding box as a fraction of the frame height, inclusive range. */
export const SIZE_RANGES: Readonly<Record<Size, { readonly min: number; readonly max: number }>> = {
  small: { min: 0.14, max: 0.22 },
  large: { min: 0.32, max: 0.45 },
};

/** Frame sizes the contract covers (shapes-world.md "Frames"). */
export const FRAME_LIMITS = { minWidth: 160, minHeight: 120, maxWidth: 1280, maxHeight: 720 } as const;

/** Scene rules as numbers (shapes-world.md). */
export const RULES = {
  /** Centres keep at least this far (x fraction) from 1/3 and 2/3. */
  placeMargin: 0.04,
  /** Minimum gap between bounding boxes, as a fraction of the frame WIDTH (pixels = gap·W). */
  gapOfWidth: 0.04,
  /** A pair is horizontal when |dx| ≥ ratio·|dy|, vertical when |dy| ≥ ratio·|dx|. */
  pairRatio: 1.5,
  /** max(|dx|, |dy|) of a pair, frame fractions. */
  pairMinSeparation: 0.2,
  backgroundMax: 70,
  gradientMaxLevels: 30,
  noiseSigmaMax: 8,
} as const;

// ---------------------------------------------------------------------------------------------
// Scenes

export interface SceneObject {
  readonly shape: Shape;
  readonly colour: Colour;
  readonly size: Size;
  /** Bounding-box side s as a fraction of the frame height (within SIZE_RANGES[size]). */
  readonly sizeFrac: number;
  /** Centre, frame fractions (x right, y down). */
  readonly x: number;
  readonly y: number;
  /** Fill colour actually drawn: COLOUR_RGB[colour] jittered by ±15 per channel, integers. */
  readonly rgb: Rgb;
}

export interface Background {
  /** Solid colour, each channel an integer 0..70. */
  readonly rgb: Rgb;
  /** Vertical gradient: levels added at the bottom row (linear from 0 at the top), −30..30. */
  readonly gradient: number;
  /** Per-pixel Gaussian noise σ, 0..8 levels. */
  readonly noiseSigma: number;
}

export interface Scene {
  /** width / height of the frame the pixel rules were checked for. */
  readonly aspect: number;
  /** One or two objects, in no particular order (captionOf orders them). */
  readonly objects: readonly SceneObject[];
  readonly background: Background;
}

export interface FrameSize {
  readonly width: number;
  readonly height: number;
}

/** Place word of a centre x (fraction of width): < 1/3 left, 1/3..2/3 middle, > 2/3 right. */
export function placeOf(x: number): 'on the left' | 'in the middle' | 'on the right' {
  if (x < 1 / 3) return 'on the left';
  if (x > 2 / 3) return 'on the right';
  return 'in the middle';
}

/** Bounding box in frame fractions: [x0, y0, x1, y1]. */
export function boxOf(o: Pick<SceneObject, 'x' | 'y' | 'sizeFrac'>, aspect: number): [number, number, number, number] {
  const hw = o.sizeFrac / aspect / 2;
  const hh = o.sizeFrac / 2;
  return [o.x - hw, o.y - hh, o.x + hw, o.y + hh];
}

type Placed = Pick<SceneObject, 'x' | 'y' | 'sizeFrac'>;

/** Rule: a centre keeps `placeMargin` away from 1/3 and 2/3. */
function isPlaceClear(x: number): boolean {
  return Math.abs(x - 1 / 3) >= RULES.placeMargin && Math.abs(x - 2 / 3) >= RULES.placeMargin;
}

/** Rule: the bounding box lies inside the frame. */
function isInside(o: Placed, aspect: number): boolean {
  const [x0, y0, x1, y1] = boxOf(o, aspect);
  return x0 >= 0 && y0 >= 0 && x1 <= 1 && y1 <= 1;
}

/** Rule: the boxes are separated along x or y by at least 4% of the frame width (pixels). */
function isGapKept(a: Placed, b: Placed, aspect: number): boolean {
  const [ax0, ay0, ax1, ay1] = boxOf(a, aspect);
  const [bx0, by0, bx1, by1] = boxOf(b, aspect);
  // Gaps measured in units of the frame width: x fractions as they are, y fractions / aspect.
  const gapX = Math.max(bx0 - ax1, ax0 - bx1);
  const gapY = Math.max(by0 - ay1, ay0 - by1) / aspect;
  return Math.max(gapX, gapY) >= RULES.gapOfWidth;
}

/** Rule: a pair is clearly horizontal or clearly vertical and far enough apart. */
function isPairReadable(a: Placed, b: Placed): boolean {
  const dx = Math.abs(b.x - a.x);
  const dy = Math.abs(b.y - a.y);
  const isAxisClear = dx >= RULES.pairRatio * dy || dy >= RULES.pairRatio * dx;
  return isAxisClear && Math.max(dx, dy) >= RULES.pairMinSeparation;
}

/**
 * Every contract rule a scene breaks at the given aspect ratio (empty when valid). Used by the
 * sampler, the synthetic camera's motion and the tests.
 */
export function sceneViolations(scene: Pick<Scene, 'objects' | 'background'>, aspect: number): string[] {
  const out: string[] = [];
  const objs = scene.objects;
  if (objs.length < 1 || objs.length > 2) out.push(`object count ${objs.length} is not 1 or 2`);
  objs.forEach((o, i) => {
    const r = SIZE_RANGES[o.size];
    if (!(o.sizeFrac >= r.min && o.sizeFrac <= r.max)) out.push(`object ${i}: size ${o.sizeFrac} outside ${o.size}`);
    if (!isInside(o, aspect)) out.push(`object ${i}: not inside the frame`);
    if (!isPlaceClear(o.x)) out.push(`object ${i}: centre x ${o.x.toFixed(4)} within 0.04 of 1/3 or 2/3`);
    const nominal = COLOUR_RGB[o.colour];
    if (o.rgb.some((v, c) => !Number.isInteger(v) || Math.abs(v - nominal[c]!) > COLOUR_JITTER)) {
      out.push(`object ${i}: rgb ${o.rgb.join(',')} beyond ±15 of ${o.colour}`);
    }
  });
  if (objs.length === 2) {
    const [a, b] = objs as [SceneObject, SceneObject];
    if (!isGapKept(a, b, aspect)) out.push('objects closer than 4% of the frame width (or overlapping)');
    if (!isPairReadable(a, b)) out.push('pair is neither clearly horizontal nor clearly vertical, or closer than 0.2');
    if (a.shape === b.shape && a.colour === b.colour) out.push('both objects share colour and shape');
  }
  const bg = scene.background;
  if (bg.rgb.some((v) => !Number.isInteger(v) || v < 0 || v > RULES.backgroundMax)) out.push('background channel outside 0..70');
  if (Math.abs(bg.gradient) > RULES.gradientMaxLevels) out.push('gradient beyond 30 levels');
  if (!(bg.noiseSigma >= 0 && bg.noiseSigma <= RULES.noiseSigmaMax)) out.push('noise sigma outside 0..8');
  return out;
}

/** True when `objects` (positions only) keep every geometric rule at `aspect`. */
export function isLayoutValid(objects: readonly Placed[], aspect: number): boolean {
  if (!objects.every((o) => isInside(o, aspect) && isPlaceClear(o.x))) return false;
  if (objects.length === 2) {
    const [a, b] = objects as [Placed, Placed];
    return isGapKept(a, b, aspect) && isPairReadable(a, b);
  }
  return true;
}

function sampleBackground(rng: Rng): Background {
  const rgb: Rgb = [randInt(rng, 0, 70), randInt(rng, 0, 70), randInt(rng, 0, 70)];
  const gradient = rng() < 0.5 ? 0 : randInt(rng, -RULES.gradientMaxLevels, RULES.gradientMaxLevels);
  return { rgb, gradient, noiseSigma: randUniform(rng, 0, RULES.noiseSigmaMax) };
}

function jitter(rng: Rng, c: Colour): Rgb {
  const [r, g, b] = COLOUR_RGB[c];
  const j = (): number => randInt(rng, -COLOUR_JITTER, COLOUR_JITTER);
  return [r + j(), g + j(), b + j()];
}

type Identity = Omit<SceneObject, 'x' | 'y'>;

function sampleIdentity(rng: Rng, other?: Identity): Identity {
  for (;;) {
    const shape = pick(rng, SHAPES);
    const colour = pick(rng, COLOURS);
    if (other && other.shape === shape && other.colour === colour) continue;
    const size = pick(rng, SIZES);
    const r = SIZE_RANGES[size];
    return { shape, colour, size, sizeFrac: randUniform(rng, r.min, r.max), rgb: jitter(rng, colour) };
  }
}

function samplePosition(rng: Rng, id: Identity, aspect: number): { x: number; y: number } {
  const hw = id.sizeFrac / aspect / 2;
  const hh = id.sizeFrac / 2;
  return { x: randUniform(rng, hw, 1 - hw), y: randUniform(rng, hh, 1 - hh) };
}

/** Tries to place identities at random valid positions; undefined after `tries` failures. */
function place(rng: Rng, ids: readonly Identity[], aspect: number, tries: number): SceneObject[] | undefined {
  if (ids.some((id) => id.sizeFrac / aspect >= 1)) return undefined; // wider than the frame
  for (let t = 0; t < tries; t++) {
    const objs = ids.map((id) => ({ ...id, ...samplePosition(rng, id, aspect) }));
    if (isLayoutValid(objs, aspect)) return objs;
  }
  return undefined;
}

/**
 * A random scene of 1 or 2 objects (even odds) for a width×height frame that obeys every rule of
 * shapes-world.md. Deterministic for a given rng state. Throws RangeError for a frame so narrow
 * that no object fits (none in the contract's 160×120..1280×720 range).
 */
export function sampleScene(rng: Rng, frame: FrameSize, options: { objectCount?: 1 | 2 } = {}): Scene {
  const { width, height } = frame;
  if (!(width > 0 && height > 0)) throw new RangeError(`frame size ${width}×${height} must be positive`);
  const aspect = width / height;
  const count = options.objectCount ?? (rng() < 0.5 ? 1 : 2);
  const background = sampleBackground(rng);
  for (let attempt = 0; attempt < 2000; attempt++) {
    const a = sampleIdentity(rng);
    const ids = count === 1 ? [a] : [a, sampleIdentity(rng, a)];
    // Large pairs have few valid layouts: give positions many tries before re-drawing sizes,
    // so sizes in pairs stay close to even odds.
    const objects = place(rng, ids, aspect, count === 1 ? 50 : 400);
    if (objects) return { aspect, objects, background };
  }
  throw new RangeError(`no ${count}-object scene fits a ${width}×${height} frame`);
}

// ---------------------------------------------------------------------------------------------
// Captions, prompts, answers

function describeObject(o: SceneObject): string {
  return `${o.colour} ${o.shape}`;
}

/**
 * Objects in caption order: for a pair, the left one first when the pair is horizontal
 * (|dx| ≥ 1.5|dy|), else the upper one first. Valid scenes are never ambiguous; an invalid one
 * is ordered by its dominant axis.
 */
export function captionOrder(scene: Pick<Scene, 'objects'>): { objects: readonly SceneObject[]; isHorizontal: boolean } {
  const objs = scene.objects;
  if (objs.length !== 2) return { objects: objs, isHorizontal: true };
  const [a, b] = objs as [SceneObject, SceneObject];
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  // For valid scenes this is exactly the |dx| ≥ 1.5·|dy| test, since |dy| ≥ 1.5·|dx| otherwise.
  const isHorizontal = Math.abs(dx) >= Math.abs(dy);
  const isAFirst = isHorizontal ? a.x <= b.x : a.y <= b.y;
  return { objects: isAFirst ? [a, b] : [b, a], isHorizontal };
}

/** The scene's caption (shapes-world.md "Scenes and captions"), e.g. `a small red circle on the left`. */
export function captionOf(scene: Pick<Scene, 'objects'>): string {
  const { objects, isHorizontal } = captionOrder(scene);
  if (objects.length === 1) {
    const o = objects[0]!;
    return `a ${o.size} ${o.colour} ${o.shape} ${placeOf(o.x)}`;
  }
  const [first, second] = objects as [SceneObject, SceneObject];
  const relation = isHorizontal ? 'to the left of' : 'above';
  return `a ${describeObject(first)} ${relation} a ${describeObject(second)}`;
}

export type PromptKind = 'describe' | 'count' | 'colour' | 'exists';

/** The four prompt templates (`{shape}`, `{colour}` are placeholders). */
export const PROMPTS: Readonly<Record<PromptKind, string>> = {
  describe: 'describe the scene',
  count: 'how many shapes are there',
  colour: 'what color is the {shape}',
  exists: 'is there a {colour} {shape}',
};

/**
 * Normalises a prompt as the tokenizer does (bitmar-stream.md §5): lower-case, delete `?.!,`,
 * collapse whitespace, trim. An empty prompt becomes `describe the scene`.
 */
export function normalizePrompt(prompt: string): string {
  const text = prompt.toLowerCase().replace(/[?.!,]/g, '').replace(/\s+/g, ' ').trim();
  return text === '' ? PROMPTS.describe : text;
}

export const colourPrompt = (shape: Shape): string => `what color is the ${shape}`;
export const existsPrompt = (colour: Colour, shape: Shape): string => `is there a ${colour} ${shape}`;

/** Shapes that exactly one object of the scene has (the only ones `what color is the …` asks about). */
export function uniqueShapes(scene: Pick<Scene, 'objects'>): Shape[] {
  return SHAPES.filter((s) => scene.objects.filter((o) => o.shape === s).length === 1);
}

/** Every prompt that may be asked of this scene (describe, count, allowed colour, all 24 exists). */
export function promptsFor(scene: Pick<Scene, 'objects'>): string[] {
  const out = [PROMPTS.describe, PROMPTS.count, ...uniqueShapes(scene).map(colourPrompt)];
  for (const c of COLOURS) for (const s of SHAPES) out.push(existsPrompt(c, s));
  return out;
}

const COLOUR_RE = new RegExp(`^what color is the (${SHAPES.join('|')})$`);
const EXISTS_RE = new RegExp(`^is there a (${COLOURS.join('|')}) (${SHAPES.join('|')})$`);

/**
 * The right answer to `prompt` for this scene, or undefined when the prompt is not one of the
 * world's prompts or may not be asked (colour of a shape that is absent or appears twice).
 */
export function answerOf(scene: Pick<Scene, 'objects'>, prompt: string): string | undefined {
  const p = normalizePrompt(prompt);
  if (p === PROMPTS.describe) return captionOf(scene);
  if (p === PROMPTS.count) return scene.objects.length === 1 ? 'one' : 'two';
  const colourQ = COLOUR_RE.exec(p);
  if (colourQ) {
    const matches = scene.objects.filter((o) => o.shape === colourQ[1]);
    return matches.length === 1 ? matches[0]!.colour : undefined;
  }
  const existsQ = EXISTS_RE.exec(p);
  if (existsQ) return scene.objects.some((o) => o.colour === existsQ[1] && o.shape === existsQ[2]) ? 'yes' : 'no';
  return undefined;
}

/**
 * The training question set of a scene: describe, count, every allowed colour question, and two
 * exists questions — one answered yes (an object of the scene) and one answered no (chosen by rng).
 */
export function qaFor(scene: Pick<Scene, 'objects'>, rng: Rng): Array<[string, string]> {
  const qa: Array<[string, string]> = [
    [PROMPTS.describe, captionOf(scene)],
    [PROMPTS.count, scene.objects.length === 1 ? 'one' : 'two'],
  ];
  for (const s of uniqueShapes(scene)) qa.push([colourPrompt(s), scene.objects.find((o) => o.shape === s)!.colour]);
  const present = pick(rng, scene.objects);
  qa.push([existsPrompt(present.colour, present.shape), 'yes']);
  for (;;) {
    const c = pick(rng, COLOURS);
    const s = pick(rng, SHAPES);
    if (scene.objects.some((o) => o.colour === c && o.shape === s)) continue;
    qa.push([existsPrompt(c, s), 'no']);
    return qa;
  }
}

/** Every word that can appear in a prompt or an answer of this world, sorted, unique. */
export const WORLD_VOCABULARY: readonly string[] = Object.freeze(
  [
    ...new Set(
      [
        ...Object.values(PROMPTS),
        'a to the left of above on the left in the middle on the right one two yes no',
        ...SHAPES,
        ...COLOURS,
        ...SIZES,
      ]
        .join(' ')
        .split(/\s+/)
        .filter((w) => w !== '' && !w.startsWith('{')),
    ),
  ].sort(),
);
