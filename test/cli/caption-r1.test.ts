/**
 * `bitmar-node caption` with a bitmar-r1 model: feature-vector files (.npy float32/float64, JSON, raw
 * float32; one or many rows), images through --vision-onnx (with onnxruntime-node), and the errors:
 * wrong width, images without an extractor, --features with a bitmar-stream model. Captions equal
 * the in-thread R1 engine's exact generation from the file's memory state.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { captionFiles } from '../../src/cli/caption.js';
import { loadR1Model } from '../../src/model/r1/index.js';
import { parseFeatureFile } from '../../src/model/r1/features-file.js';
import { loadVisionOnnx } from '../../src/model/r1/vision-onnx.js';
import { encodePng } from '../../src/sources/image/decode.js';
import { spawnCli } from '../helpers/spawn-node.js';
import { FIXTURE_DIR, f32, fx, standInImage } from '../model/r1/fixture.js';

const GGUF = join(FIXTURE_DIR, fx.gguf);
const ONNX = join(FIXTURE_DIR, 'dinov2-standin.onnx');

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d: Buffer) => (buf += d.toString()));
  return { stream, text: () => buf };
}

/** A NumPy v1.0 .npy file of float32 ('<f4') or float64 ('<f8') rows. */
function npy(rows: readonly Float32Array[], dtype: '<f4' | '<f8', shape: readonly number[]): Buffer {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  const flat = rows.flatMap((r) => Array.from(r));
  const data = dtype === '<f4' ? Buffer.from(Float32Array.from(flat).buffer) : Buffer.from(Float64Array.from(flat).buffer);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

let ortMissing: string | null = null;
try {
  await import('onnxruntime-node' as string);
} catch {
  ortMissing = 'onnxruntime-node is not installed (optional; npm install onnxruntime-node)';
}

/** The caption the in-thread engine gives: exact greedy generation from the file's memory state. */
async function expected(features: Float32Array, prompt: string, maxNewTokens: number): Promise<string> {
  const m = loadR1Model(GGUF, { kernels: 'typescript' });
  const s = m.generate({ prompt, visionFeatures: features, maxNewTokens });
  for await (const _ of s);
  return (await s.result).text;
}

describe('bitmar-node caption with a bitmar-r1 model', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-caption-r1-'));
  const v = f32('input/vision');
  const w = Float32Array.from(v, (x, i) => x * 0.5 + Math.sin(i));

  it('reads .npy (float32, float64, one or N rows), JSON and raw float32 files', () => {
    const eq = (got: Float32Array[], want: Float32Array[]): void => assert.deepEqual(got.map((r) => Array.from(r)), want.map((r) => Array.from(r)));
    eq(parseFeatureFile(npy([v], '<f4', [768]), 'a.npy', 768), [v]);
    eq(parseFeatureFile(npy([v, w], '<f4', [2, 768]), 'b.npy', 768), [v, w]);
    eq(parseFeatureFile(npy([v], '<f8', [1, 768]), 'c.npy', 768), [v]);
    eq(parseFeatureFile(Buffer.from(JSON.stringify(Array.from(v))), 'd.json', 768), [v]);
    eq(parseFeatureFile(Buffer.from(JSON.stringify([Array.from(v), Array.from(w)])), 'e.json', 768), [v, w]);
    eq(parseFeatureFile(Buffer.from(Float32Array.from([...v, ...w]).buffer), 'f.bin', 768), [v, w]);
    assert.throws(() => parseFeatureFile(npy([v.subarray(0, 384)], '<f4', [384]), 'g.npy', 768), /shape \(384\) is not \(768,\) or \(N, 768\)/);
    assert.throws(() => parseFeatureFile(Buffer.from('[1, 2'), 'h.json', 768), /not JSON/);
    assert.throws(() => parseFeatureFile(Buffer.from(new Float32Array(700).buffer), 'i.f32', 768), /700 float32 values is not N×768/);
    assert.throws(() => parseFeatureFile(Buffer.from(JSON.stringify([1, null])), 'j.json', 768), /expected \[768 numbers\]/);
  });

  it('--features: one caption per row, equal to the engine\'s exact generation; bad files get error lines, exit 1', async () => {
    writeFileSync(join(dir, 'v.npy'), npy([v], '<f4', [768]));
    writeFileSync(join(dir, 'vw.json'), JSON.stringify([Array.from(v), Array.from(w)]));
    writeFileSync(join(dir, 'w.bin'), Buffer.from(w.buffer));
    writeFileSync(join(dir, 'short.npy'), npy([v.subarray(0, 100)], '<f4', [100]));
    const out = collect();
    const err = collect();
    const features = ['v.npy', 'vw.json', 'short.npy', 'missing.npy', 'w.bin'].map((f) => join(dir, f));
    const code = await captionFiles([], { model: GGUF, kernels: 'typescript', json: true, maxTokens: 8, features }, out.stream, err.stream);
    assert.equal(code, 1);
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => String(l.file).slice(dir.length + 1)), ['v.npy', 'vw.json#0', 'vw.json#1', 'short.npy', 'missing.npy', 'w.bin']);
    const [cv, cw] = [await expected(v, 'a', 8), await expected(w, 'a', 8)];
    assert.deepEqual([lines[0]!.text, lines[1]!.text, lines[2]!.text, lines[5]!.text], [cv, cv, cw, cw]);
    assert.equal(lines[0]!.prompt, 'a', 'R1 starts from "a" unless a prompt is chosen');
    assert.match(String(lines[3]!.error), /shape \(100\) is not \(768,\).*\[BITMAR_ERR_IMAGE_SIZE\]/);
    assert.match(String(lines[4]!.error), /no such file/);
    assert.match(err.text(), /short\.npy: .*BITMAR_ERR_IMAGE_SIZE/);
  });

  it('--prompt is the caption prefix', async () => {
    writeFileSync(join(dir, 'p.npy'), npy([v], '<f4', [768]));
    const out = collect();
    const code = await captionFiles([], { model: GGUF, kernels: 'typescript', json: true, maxTokens: 6, prompt: fx.prompt_text, features: [join(dir, 'p.npy')] }, out.stream, collect().stream);
    assert.equal(code, 0);
    const line = JSON.parse(out.text()) as { text: string; prompt: string };
    assert.equal(line.prompt, fx.prompt_text);
    assert.equal(line.text, await expected(v, fx.prompt_text, 6));
  });

  it('images without --vision-onnx, and --features with a bitmar-stream model: clear error lines', async () => {
    writeFileSync(join(dir, 'img.png'), encodePng(standInImage(64, 48)));
    writeFileSync(join(dir, 'f.npy'), npy([v], '<f4', [768]));
    const out = collect();
    const err = collect();
    assert.equal(await captionFiles([join(dir, 'img.png')], { model: GGUF, kernels: 'typescript' }, out.stream, err.stream), 1);
    assert.match(err.text(), /img\.png: bitmar-r1 takes 768-d feature vectors, not images; to caption images set model\.visionOnnx \(caption --vision-onnx FILE\).*\[BITMAR_ERR_CONFIG_INVALID\]/);
    const err2 = collect();
    const stream = join(FIXTURE_DIR, '..', 'stream', 'random-tiny.gguf');
    assert.equal(await captionFiles([], { model: stream, kernels: 'typescript', features: [join(dir, 'f.npy')] }, collect().stream, err2.stream), 1);
    assert.match(err2.text(), /f\.npy: --features needs a bitmar-r1 model; .* is bitmar-stream.*\[BITMAR_ERR_MODEL_ARCH\]/);
  });

  describe('--vision-onnx', () => {
    before(function () {
      if (ortMissing !== null) this.skip();
    });
    if (ortMissing !== null) it(`skipped: ${ortMissing}`, function () { this.skip(); });

    it('captions PNG files through the DINOv2 ONNX file, as their extracted vectors caption (the CLI end to end)', async () => {
      const img = standInImage(448, 448);
      writeFileSync(join(dir, 'scene.png'), encodePng(img));
      const x = await loadVisionOnnx(ONNX);
      const [feat] = await x.extract([img]);
      await x.close();
      const want = await expected(feat!, 'a', 8);
      const cli = spawnCli(['caption', '--model', GGUF, '--kernels', 'typescript', '--vision-onnx', ONNX, '--max-tokens', '8', '--json', join(dir, 'scene.png')]);
      const code = await cli.exited;
      assert.equal(code, 0, cli.stderr());
      const line = JSON.parse(cli.stdout().trim()) as { file: string; text: string; prompt: string };
      assert.equal(line.text, want);
      assert.equal(line.prompt, 'a');
    });
  });
});
