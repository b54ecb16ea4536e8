import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type GeneratedToken } from '../../../src/model/index.js';
import { testImage, tinyEngine, tinyModelBytes, withoutEos } from './helpers.js';

describe('loadModel (the engine in the calling thread)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-load-'));
  const path = join(dir, 'tiny.gguf');
  const endless = join(dir, 'endless.gguf');
  writeFileSync(path, tinyModelBytes());
  writeFileSync(endless, withoutEos(tinyModelBytes()));

  it('generates the same caption as the engine, token by token with timing', async () => {
    const m = loadModel(path, { kernels: 'typescript' });
    assert.equal(m.info.kernels, 'typescript');
    const img = testImage(48, 32, 1);
    const expected = tinyEngine().describe({ images: [img], prompt: 'describe the scene', maxTokens: 8 });
    const stream = m.generate({ images: [img], prompt: 'describe the scene', maxTokens: 8 });
    const tokens: GeneratedToken[] = [];
    for await (const t of stream) tokens.push(t);
    const r = await stream.result;
    assert.deepEqual(tokens.map((t) => t.tokenId), expected.tokenIds);
    assert.deepEqual(r.tokenIds, expected.tokenIds);
    assert.equal(r.text, expected.text);
    assert.equal(r.cancelled, false);
    assert.deepEqual(r.episodes, expected.episodes);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]!.atMs >= tokens[i - 1]!.atMs);
    assert.deepEqual(m.encodeImages([img])[0]!.e, expected.episodes[0]);
    assert.equal(m.encodeText('').ids.length, 3, 'empty prompt = describe the scene');
  });

  it('an AbortSignal stops it between tokens', async () => {
    const m = loadModel(endless, { kernels: 'typescript' });
    const ac = new AbortController();
    const stream = m.generate({ images: [testImage(30, 30, 2)], prompt: '', maxTokens: 100_000 }, ac.signal);
    setTimeout(() => ac.abort(), 30);
    let n = 0;
    for await (const _ of stream) n++;
    const r = await stream.result;
    assert.equal(r.cancelled, true);
    assert.equal(r.tokenIds.length, n);
    assert.ok(n > 0 && n < 100_000);
  });

  it('breaking out of the loop counts as cancelled; errors reject result and the iterator', async () => {
    const m = loadModel(endless, { kernels: 'typescript' });
    const stream = m.generate({ images: [testImage(30, 30, 3)], prompt: '', maxTokens: 50 });
    for await (const t of stream) if (t.index === 4) break;
    const r = await stream.result;
    assert.equal(r.cancelled, true);
    assert.equal(r.tokenIds.length, 5);
    const bad = m.generate({ images: [], prompt: '' });
    await assert.rejects(async () => {
      for await (const _ of bad) assert.fail('no tokens');
    }, /at least one image/);
    await assert.rejects(bad.result, /at least one image/);
  });
});
