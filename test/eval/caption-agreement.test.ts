// `bitmar-node caption --json` on PNG/JPEG files of eval scenes gives the eval's answers.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { captionFiles, type CaptionLine } from '../../src/cli/caption.js';
import { evaluateAccuracy, fileSceneItem, writeSceneFiles, type AnswerRecord } from '../../src/eval/index.js';
import { InferenceWorker } from '../../src/model/inference-worker.js';
import { defaultModelPath } from '../../src/paths.js';
import { decodeImage } from '../../src/sources/image/decode.js';

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

describe('caption --json agrees with the eval', function () {
  this.timeout(120_000);
  const seed = 4; // two PNG and two JPEG files
  const count = 4;
  const model = defaultModelPath(); // the trained model when it exists, else the random one
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-eval-files-'));
  const files = writeSceneFiles(dir, count, seed);

  it('writes the eval frames as PNG (lossless) and JPEG (the same quality, same decoded pixels)', () => {
    assert.ok(files.some((f) => f.file.endsWith('.png')) && files.some((f) => f.file.endsWith('.jpg')), 'both formats among the files');
    files.forEach((f, i) => {
      const item = fileSceneItem(seed, i);
      const img = decodeImage(new Uint8Array(readFileSync(join(dir, f.file))));
      assert.equal(img.format, f.file.endsWith('.png') ? 'png' : 'jpeg');
      assert.equal(img.width, item.image.width);
      assert.ok(Buffer.from(img.data).equals(Buffer.from(item.image.data)), `${f.file}: decoded pixels are the eval frame`);
    });
    const manifest = JSON.parse(readFileSync(join(dir, 'answers.json'), 'utf8')) as { scenes: { file: string; caption: string }[] };
    assert.deepEqual(manifest.scenes.map((s) => s.file), files.map((f) => f.file));
  });

  it('gives the same text for every question of every file', async () => {
    const worker = await InferenceWorker.start({ modelPath: model });
    const evalAnswers: AnswerRecord[] = [];
    try {
      await evaluateAccuracy(worker, Array.from({ length: count }, (_, i) => fileSceneItem(seed, i)), { onAnswer: (r) => evalAnswers.push(r) });
    } finally {
      await worker.close();
    }
    const byPrompt = new Map<string, { file: string; got: string }[]>();
    for (const a of evalAnswers) {
      const list = byPrompt.get(a.prompt) ?? [];
      list.push({ file: join(dir, files[a.scene]!.file), got: a.got });
      byPrompt.set(a.prompt, list);
    }
    let compared = 0;
    for (const [prompt, list] of byPrompt) {
      const out = sink();
      const code = await captionFiles(list.map((l) => l.file), { model, prompt, json: true }, out, sink());
      assert.equal(code, 0);
      const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as CaptionLine);
      assert.equal(lines.length, list.length);
      lines.forEach((line, i) => {
        assert.equal(line.file, list[i]!.file);
        assert.equal(line.prompt, prompt);
        assert.equal(line.text, list[i]!.got, `${line.file} "${prompt}"`);
        compared++;
      });
    }
    assert.equal(compared, evalAnswers.length);
    assert.ok(compared >= count * 4);
  });
});
