/**
 * Eval scenes as image files, for `bitmar-node caption` and any outside tool: frames drawn exactly
 * like the accuracy set's (full robustness ranges) from the seed's `files` stream; a frame the eval
 * JPEG-compresses is written as a .jpg of that quality (jpeg-js, whose decode gives exactly the
 * eval's pixels, see jpeg-round-trip.ts), the others as lossless .png. `answers.json` lists each
 * file with its caption and the questions asked of it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { encodePng } from '../sources/image/decode.js';
import { deriveSeed, type PromptKind } from '../sources/synthetic/shapes-world.js';
import { PROMPT_KINDS, type Question } from './questions.js';
import { CONTRACT_RANGES, tsEvalItem, type FrameConditions, type RobustnessRanges, type TsEvalItem } from './scene-set.js';
import { STREAMS } from './seeds.js';

export interface SceneFile {
  readonly file: string;
  readonly caption: string;
  readonly conditions: FrameConditions;
  readonly questions: readonly Question[];
}

/** RGB8 → JPEG bytes with jpeg-js at `quality` (the encoder the eval's JPEG pixels come from). */
export function encodeJpeg(rgb: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) {
    rgba[q] = rgb[p]!;
    rgba[q + 1] = rgb[p + 1]!;
    rgba[q + 2] = rgb[p + 2]!;
    rgba[q + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ width, height, data: rgba }, quality).data);
}

/** The eval item behind file `index` of `writeSceneFiles(dir, …, seed)`. */
export function fileSceneItem(seed: number, index: number, kinds: readonly PromptKind[] = PROMPT_KINDS, ranges: RobustnessRanges = CONTRACT_RANGES): TsEvalItem {
  return tsEvalItem(deriveSeed(seed, STREAMS.files), index, kinds, ranges);
}

/** Writes `count` scene files and `answers.json` into `dir` (created); returns the manifest. */
export function writeSceneFiles(dir: string, count: number, seed: number, kinds: readonly PromptKind[] = PROMPT_KINDS, ranges: RobustnessRanges = CONTRACT_RANGES): SceneFile[] {
  mkdirSync(dir, { recursive: true });
  const out: SceneFile[] = [];
  for (let i = 0; i < count; i++) {
    const item = fileSceneItem(seed, i, kinds, ranges);
    const { width, height } = item.image;
    const q = item.conditions.jpegQuality;
    const name = `scene-${String(i).padStart(4, '0')}.${q === null ? 'png' : 'jpg'}`;
    const bytes = q === null ? encodePng(item.image) : encodeJpeg(item.preJpeg, width, height, q);
    writeFileSync(join(dir, name), bytes);
    out.push({ file: name, caption: item.truth.caption, conditions: item.conditions, questions: item.questions });
  }
  writeFileSync(join(dir, 'answers.json'), JSON.stringify({ seed, scenes: out }, null, 1) + '\n');
  return out;
}
