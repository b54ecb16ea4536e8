import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { evalCommand, type EvalCommandOptions } from '../../src/cli/eval.js';
import { BARS, EVAL_SEED, PROMPT_KINDS, ensurePythonScenes, formatReport, readBmds, runEval } from '../../src/eval/index.js';
import { InferenceWorker } from '../../src/model/inference-worker.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

const RANDOM_MODEL = join(PACKAGE_ROOT, 'models', 'bitmar-stream-random.gguf');

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(c: Buffer | string, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  });
  return Object.assign(w, { text: () => chunks.join('') });
}

describe('bitmar-node eval on the random model', function () {
  this.timeout(120_000);
  let worker: InferenceWorker;
  before(async () => {
    worker = await InferenceWorker.start({ modelPath: RANDOM_MODEL });
  });
  after(async () => {
    await worker?.close();
  });

  it('completes a tiny run and reports every prompt kind, recall, narration and the bars', async () => {
    const progress: string[] = [];
    const r = await runEval(worker, { scenes: 5, recall: 6, narrationMinutes: 0.05, onProgress: (l) => progress.push(l) });
    const a = r.accuracy!;
    assert.equal(a.scenes, 5);
    assert.deepEqual(Object.keys(a.perKind), [...PROMPT_KINDS]);
    const perKindN = Object.values(a.perKind).reduce((s, k) => s + k.n, 0);
    assert.equal(perKindN, a.questions);
    assert.equal(a.overall.n, a.questions);
    assert.ok(a.questions >= 5 * 5, 'describe, count, ≥1 colour or none, exists yes and no');
    assert.ok(['exists no', 'exists yes'].every((k) => k in a.existsByAnswer));
    assert.equal(Object.entries(a.existsByAnswer).filter(([k]) => k.startsWith('exists no,')).reduce((s, [, v]) => s + v.n, 0), a.existsByAnswer['exists no']!.n);
    assert.equal(a.existsByAnswer['exists yes']!.n, 5);
    for (const acc of [a.overall, ...Object.values(a.perKind)]) assert.ok(acc.accuracy >= 0 && acc.accuracy <= 1 && acc.correct <= acc.n);
    assert.ok(Object.keys(a.byCondition).includes('jpeg'));
    const matrixN = Object.values(a.colourMatrix).reduce((s, row) => s + Object.values(row).reduce((x, y) => x + y, 0), 0);
    assert.equal(matrixN, a.perKind.colour!.n, 'every colour answer lands in the colour matrix');
    assert.equal(r.recall!.scenes, 6);
    assert.ok(r.narration!.sentences >= 5);
    assert.equal(r.narration!.captionMode!.n, r.narration!.sentences);
    assert.deepEqual(r.bars.map((b) => b.name), ['overall', ...PROMPT_KINDS, 'recall top-1', 'narration exact']);
    assert.equal(r.bars[0]!.threshold, BARS.overall);
    assert.equal(r.bars[1]!.threshold, BARS.perKind);
    assert.equal(r.pass, r.bars.every((b) => b.pass));
    assert.equal(r.seed, EVAL_SEED);
    assert.equal(r.model.name, 'bitmar-stream-random');
    assert.ok(r.model.ternaryParams > 100_000 && r.model.floatParams > 10_000 && r.model.fileBytes > 0);
    assert.ok(r.notes.some((n) => /indicative/.test(n)));
    assert.ok(progress.some((l) => /accuracy: 5\/5/.test(l)));
    const text = formatReport(r);
    for (const k of PROMPT_KINDS) assert.match(text, new RegExp(`^  ${k} .*(PASS|FAIL)$`, 'm'));
    assert.match(text, /^  overall .*≥97%  (PASS|FAIL)$/m);
    assert.match(text, /^bars: .* → (ALL PASS|FAIL)$/m);
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
  });

  it('scores the random model low (a sanity check of the scoring, not a bar)', async () => {
    const r = await runEval(worker, { scenes: 4, recall: 0, narrationMinutes: 0, kinds: ['describe'] });
    assert.ok(r.accuracy!.perKind.describe!.accuracy < 0.5);
    assert.deepEqual(Object.keys(r.accuracy!.perKind), ['describe']);
    assert.equal(r.pass, false);
  });

  it('evaluates scenes of the independent Python renderer (tools/train/shapes.py) when python3 has numpy and PIL', async function () {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import numpy, PIL'], { stdio: 'ignore' });
    if (probe.status !== 0) this.skip();
    const file = join(mkdtempSync(join(tmpdir(), 'bitmar-eval-py-')), 'py.bin');
    const made = ensurePythonScenes(file, 4, EVAL_SEED, worker.info.hparams.imageSize);
    assert.ok(made.generated);
    assert.match(made.command, /shapes\.py --out .* --count 4 --seed 1592649633 --image-size 64$/);
    assert.equal(readBmds(file).count, 4);
    const r = await runEval(worker, { scenes: 10, recall: 0, narrationMinutes: 0, renderer: { kind: 'python', file } });
    assert.equal(r.accuracy!.scenes, 4, 'capped at the records in the file');
    assert.equal(r.accuracy!.renderer, 'python');
    assert.deepEqual(Object.keys(r.accuracy!.perKind).slice(0, 2), ['describe', 'count']);
    assert.ok(r.notes.some((n) => /python renderer/.test(n)));
  });

  it('runs as the CLI command: JSON out, exit 1 when a bar fails, 2 for bad options', async () => {
    const base: EvalCommandOptions = { model: RANDOM_MODEL, scenes: 2, seed: EVAL_SEED, recall: 0, narrationMinutes: 0, narrationHz: 2, memory: 'none', json: true, quiet: true };
    const out = sink();
    const err = sink();
    assert.equal(await evalCommand(base, out, err), 1);
    const report = JSON.parse(out.text()) as { accuracy: { scenes: number }; bars: { name: string; pass: boolean }[] };
    assert.equal(report.accuracy.scenes, 2);
    assert.ok(report.bars.some((b) => b.name === 'overall'));
    const bad = sink();
    assert.equal(await evalCommand({ ...base, kinds: ['size'] }, sink(), bad), 2);
    assert.match(bad.text(), /unknown prompt kind/);
    assert.equal(await evalCommand({ ...base, memory: 'all' }, sink(), sink()), 2);
    assert.equal(await evalCommand({ ...base, renderer: ['blender'] }, sink(), sink()), 2);
    const own = sink();
    assert.equal(await evalCommand({ ...base, memory: 'own', json: false }, own, sink()), 1);
    assert.match(own.text(), /memory own/);
  });
});
