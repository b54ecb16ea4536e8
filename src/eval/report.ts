/**
 * The eval report: the quality bars of issue 4 with PASS/FAIL, the model's sizes from its GGUF, a
 * plain-text table and the JSON shape of `bitmar-node eval --json`.
 */
import { statSync } from 'node:fs';
import { GgufReader } from '../model/gguf/reader.js';
import type { ModelInfo } from '../model/engine/model-info.js';
import type { PromptKind } from '../sources/synthetic/shapes-world.js';
import type { AccuracyResult } from './accuracy.js';
import type { NarrationResult } from './narration.js';
import type { RecallResult } from './recall.js';
import type { RobustnessRanges } from './scene-set.js';
import type { Accuracy } from './scoring.js';

/** Issue 4's bars (fractions) and the sample sizes they are set on. */
export const BARS = {
  overall: 0.97,
  perKind: 0.95,
  recallTop1: 0.9,
  narration: 0.9,
  scenes: 2000,
  recallScenes: 100,
  narrationMinutes: 10,
} as const;

export interface Bar {
  readonly name: string;
  readonly value: number;
  readonly threshold: number;
  readonly n: number;
  readonly pass: boolean;
}

/** What the GGUF file holds: sizes for the model card. */
export interface ModelFacts {
  readonly path: string;
  readonly name: string;
  readonly kernels: string;
  readonly fileBytes: number;
  readonly tensors: number;
  /** Ternary weights (2-bit packed). */
  readonly ternaryParams: number;
  /** F32/F16 values (embeddings, stem, norms, biases, scales). */
  readonly floatParams: number;
  readonly hparams: ModelInfo['hparams'];
}

export function modelFacts(info: ModelInfo): ModelFacts {
  let ternary = 0;
  let floats = 0;
  let tensors = 0;
  try {
    const r = GgufReader.open(info.path);
    for (const t of r.tensors.values()) {
      tensors++;
      // t2-row-v1: I8 bytes hold 4 codes each (ne = [ceil(in/4), out]).
      if (t.type === 'I8') ternary += t.elementCount * 4;
      else floats += t.elementCount;
    }
  } catch {
    // sizes stay 0; the eval itself already loaded the model
  }
  let fileBytes = 0;
  try {
    fileBytes = statSync(info.path).size;
  } catch {
    fileBytes = 0;
  }
  return { path: info.path, name: info.name, kernels: info.kernels, fileBytes, tensors, ternaryParams: ternary, floatParams: floats, hparams: info.hparams };
}

export interface EvalReport {
  readonly model: ModelFacts;
  readonly seed: number;
  readonly renderer: { readonly kind: 'ts' | 'python'; readonly file?: string; readonly ranges?: RobustnessRanges };
  readonly kinds: readonly PromptKind[];
  readonly accuracy?: AccuracyResult;
  readonly recall?: RecallResult;
  readonly narration?: NarrationResult;
  readonly bars: Bar[];
  /** Every bar passed. */
  readonly pass: boolean;
  /** Caveats, e.g. fewer scenes than the bars are set on. */
  readonly notes: string[];
  readonly elapsedMs: number;
}

export function barsOf(acc: AccuracyResult | undefined, recall: RecallResult | undefined, narration: NarrationResult | undefined): Bar[] {
  const bars: Bar[] = [];
  const bar = (name: string, a: Accuracy, threshold: number): void => {
    bars.push({ name, value: a.accuracy, threshold, n: a.n, pass: a.n > 0 && a.accuracy >= threshold });
  };
  if (acc) {
    bar('overall', acc.overall, BARS.overall);
    for (const [k, a] of Object.entries(acc.perKind) as [PromptKind, Accuracy][]) bar(k, a, BARS.perKind);
  }
  if (recall) bar('recall top-1', recall.top1, BARS.recallTop1);
  if (narration) bar('narration exact', narration.exact, BARS.narration);
  return bars;
}

export function notesOf(acc: AccuracyResult | undefined, recall: RecallResult | undefined, narration: NarrationResult | undefined, kinds: readonly PromptKind[]): string[] {
  const notes: string[] = [];
  if (acc && acc.scenes < BARS.scenes) notes.push(`${acc.scenes} scenes: the accuracy bars are set on ${BARS.scenes}; this run is indicative only`);
  if (acc && kinds.length < 4) notes.push(`only ${kinds.join(', ')} asked: "overall" covers those kinds only`);
  if (acc?.renderer === 'python') {
    notes.push('python renderer: tools/train/shapes.py stores frames already area-resized to S×S (its own sizes, brightness and PIL JPEG); the engine reads them through its S×S path (its resize is the identity when S = image_size), so the node\'s full-frame resize is not exercised');
  }
  if (recall && recall.scenes < BARS.recallScenes) notes.push(`recall on ${recall.scenes} scenes (bar set on ${BARS.recallScenes})`);
  if (narration && narration.minutes < BARS.narrationMinutes) notes.push(`narration over ${narration.minutes} min (bar set on ${BARS.narrationMinutes})`);
  return notes;
}

// ---------------------------------------------------------------------------------------------
// Text

const pct = (v: number, digits = 2): string => `${(100 * v).toFixed(digits)}%`;
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function accRow(label: string, a: Accuracy, bar?: Bar): string {
  const ci = `[${(100 * a.ci95[0]).toFixed(1)}, ${(100 * a.ci95[1]).toFixed(1)}]`;
  const verdict = bar ? `≥${(100 * bar.threshold).toFixed(0)}%  ${bar.pass ? 'PASS' : 'FAIL'}` : '';
  return `  ${pad(label, 24)}${lpad(String(a.n), 8)}${lpad(String(a.correct), 9)}${lpad(pct(a.accuracy), 10)}  ${pad(ci, 15)} ${verdict}`;
}

function framesLine(r: EvalReport): string {
  if (r.renderer.kind === 'python') return `renderer python: ${r.renderer.file ?? ''}`;
  const g = r.renderer.ranges;
  if (!g) return 'renderer ts';
  return (
    `renderer ts: frames ${g.minWidth}×${g.minHeight}..${g.maxWidth}×${g.maxHeight} (any aspect), brightness ${g.minBrightness}..${g.maxBrightness}, ` +
    `JPEG q${g.minJpegQuality}..${g.maxJpegQuality} on ${pct(g.jpegFraction, 0)}, noise σ 0..8, jitter ±15`
  );
}

/** The human-readable report. */
export function formatReport(r: EvalReport): string {
  const m = r.model;
  const lines: string[] = [];
  const bar = (name: string): Bar | undefined => r.bars.find((b) => b.name === name);
  lines.push(`bitmar-node eval — ${m.name} (${m.path}, ${(m.fileBytes / 1024).toFixed(0)} KiB, kernels ${m.kernels})`);
  lines.push(`seed 0x${r.seed.toString(16).toUpperCase()} (${r.seed})   ${framesLine(r)}`);
  const a = r.accuracy;
  if (a) {
    lines.push('');
    lines.push(`accuracy: ${a.scenes} scenes, ${a.questions} questions, memory ${a.memory}, ${(a.elapsedMs / 1000).toFixed(1)} s (${a.msPerQuestion.toFixed(1)} ms/question)`);
    lines.push(`  ${pad('prompt kind', 24)}${lpad('asked', 8)}${lpad('right', 9)}${lpad('accuracy', 10)}  ${pad('95% CI', 15)} bar`);
    for (const [k, acc] of Object.entries(a.perKind) as [PromptKind, Accuracy][]) lines.push(accRow(k, acc, bar(k)));
    const existsRows = Object.entries(a.existsByAnswer).sort(([x], [y]) => (x === 'exists yes' ? -1 : y === 'exists yes' ? 1 : x.localeCompare(y)));
    for (const [k, acc] of existsRows) lines.push(accRow(`  ${k.replace('exists no, ', '  no, ')}`, acc));
    lines.push(accRow('overall', a.overall, bar('overall')));
    const weakest = Object.entries(a.byCondition)
      .flatMap(([dim, buckets]) => Object.entries(buckets).map(([b, acc]) => ({ label: `${dim} ${b}`, acc })))
      .filter((x) => x.acc.n >= 20)
      .sort((x, y) => x.acc.accuracy - y.acc.accuracy)
      .slice(0, 4);
    if (weakest.length > 0) lines.push(`  weakest conditions: ${weakest.map((w) => `${w.label} ${pct(w.acc.accuracy, 1)} (n=${w.acc.n})`).join('; ')}`);
    if (a.confusions.length > 0) lines.push(`  confusions: ${a.confusions.slice(0, 8).map((c) => `${c.confusion} ×${c.count}`).join('; ')}`);
    if (a.examples.length > 0) {
      lines.push('  example errors:');
      for (const e of a.examples.slice(0, 8)) {
        const c = e.conditions;
        const how = [`${c.width}×${c.height}`, c.jpegQuality !== null ? `q${c.jpegQuality}` : '', c.brightness !== null ? `b${c.brightness.toFixed(2)}` : ''].filter((s) => s).join(' ');
        lines.push(`    scene ${e.scene} [${how}] "${e.prompt}": expected "${e.expected}", got "${e.got}"${e.kind === 'describe' ? '' : ` (scene: ${e.caption})`}`);
      }
    }
  }
  const rc = r.recall;
  if (rc) {
    lines.push('');
    lines.push(`recall: ${rc.scenes} scenes in memory, caption text → top-1 own episode`);
    lines.push(accRow('top-1', rc.top1, bar('recall top-1')));
    lines.push(accRow('top-5', rc.top5));
    lines.push(`  MRR@5 ${rc.meanReciprocalRank.toFixed(3)}${rc.misses.length > 0 ? `; e.g. "${rc.misses[0]!.caption}" retrieved "${rc.misses[0]!.retrieved}"` : ''}`);
  }
  const n = r.narration;
  if (n) {
    lines.push('');
    lines.push(`narration: ${n.minutes} min of a ${n.width}×${n.height} ${n.cameraFps} fps synthetic camera, ${n.sentenceHz} sentences/s, ${(n.elapsedMs / 1000).toFixed(1)} s`);
    lines.push(accRow('exact sentences', n.exact, bar('narration exact')));
    for (const [k, acc] of Object.entries(n.bySceneChange)) lines.push(accRow(`  ${k.replace('first after a scene change', 'after change')}`, acc));
    for (const [k, acc] of Object.entries(n.byPosition)) lines.push(accRow(`  ${k}`, acc));
    if (n.captionMode) lines.push(accRow('caption mode', n.captionMode));
    if (n.lagging > 0) lines.push(`  ${n.lagging} wrong sentences are the previous frame's caption (lag)`);
    if (n.confusions.length > 0) lines.push(`  confusions: ${n.confusions.slice(0, 6).map((c) => `${c.confusion} ×${c.count}`).join('; ')}`);
    for (const e of n.examples.slice(0, 3)) lines.push(`    sentence ${e.sentence} (frame ${e.frame}): expected "${e.expected}", got "${e.got}"`);
  }
  lines.push('');
  lines.push(`bars: ${r.bars.map((b) => `${b.name} ${pct(b.value, 1)} ${b.pass ? 'PASS' : 'FAIL'}`).join(', ')} → ${r.pass ? 'ALL PASS' : 'FAIL'}`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}
