import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { BitmarError } from '../../src/errors.js';
import { InferenceWorker, type WorkerToken } from '../../src/model/inference-worker.js';
import { testImage, tinyEngine, tinyModelBytes, withoutEos } from './engine/helpers.js';

function isCode(code: string, pattern?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BitmarError, `expected BitmarError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

describe('InferenceWorker', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'bitmar-worker-'));
  const modelPath = join(dir, 'tiny.gguf');
  const endlessPath = join(dir, 'tiny-no-eos.gguf');
  writeFileSync(modelPath, tinyModelBytes());
  writeFileSync(endlessPath, withoutEos(tinyModelBytes()));
  let worker: InferenceWorker;

  before(async () => {
    worker = await InferenceWorker.start({ modelPath, kernels: 'typescript' });
  });
  after(async () => {
    await worker?.close();
  });

  it('reports the model', () => {
    assert.equal(worker.info.arch, 'bitmar-stream');
    assert.equal(worker.info.name, 'bitmar-stream-random');
    assert.equal(worker.info.episodeDim, 32);
    assert.equal(worker.info.vocabSize, 40);
    assert.equal(worker.info.kernels, 'typescript');
    assert.equal(worker.info.hparams.decoderLayers, 2);
  });

  it('describes a batch exactly as the in-thread engine, streaming every token', async () => {
    const imgs = [testImage(40, 30, 1), testImage(64, 48, 2)];
    const expected = tinyEngine().describe({ images: imgs, prompt: 'describe the scene', maxTokens: 8 });
    const tokens: WorkerToken[] = [];
    const before = performance.now();
    const r = await worker.describe({ images: imgs.map((i) => ({ ...i, data: i.data.slice() })), prompt: 'describe the scene', maxTokens: 8 }, (t) => tokens.push(t));
    assert.equal(r.text, expected.text);
    assert.deepEqual(r.tokenIds, expected.tokenIds);
    assert.deepEqual(r.episodes, expected.episodes);
    assert.equal(r.cancelled, false);
    assert.deepEqual(tokens.map((t) => t.tokenId), r.tokenIds);
    assert.equal(tokens.map((t) => t.piece).join(''), r.text);
    tokens.forEach((t, i) => {
      assert.equal(t.index, i);
      assert.ok(t.atMs >= before - 1 && t.atMs <= performance.now() + 1, `atMs ${t.atMs} is in this thread's clock`);
      if (i > 0) assert.ok(t.atMs >= tokens[i - 1]!.atMs);
    });
    assert.ok(r.encodeMs > 0 && r.decodeMs > 0 && r.firstTokenMs >= r.encodeMs);
  });

  it('transfers whole-buffer images and copies views', async () => {
    const owned = testImage(20, 20, 3);
    const big = new Uint8Array(10 + 20 * 20 * 3);
    const view = { width: 20, height: 20, data: big.subarray(10) };
    await worker.describe({ images: [owned, view], prompt: '', maxTokens: 1 }, () => undefined);
    assert.equal(owned.data.byteLength, 0, 'transferred (detached)');
    assert.equal(view.data.byteLength, 1200, 'copied');
  });

  it('encodeText and encodeImage return the u and e vectors', async () => {
    const e = tinyEngine();
    const img = testImage(30, 30, 4);
    assert.deepEqual(await worker.encodeText('is there a red circle'), e.encodeText('is there a red circle').u);
    assert.deepEqual(await worker.encodeImage({ ...img, data: img.data.slice() }), e.encodeImage(img).e);
  });

  it('setMemory replaces the memory the decoder reads', async () => {
    const e = tinyEngine();
    const img = testImage(30, 30, 5);
    const slots = new Float32Array(3 * 32);
    for (let k = 0; k < 3; k++) slots.set(e.encodeImage(testImage(30, 30, 10 + k)).e, k * 32);
    e.setMemory(slots, 3);
    const expected = e.describe({ images: [img], prompt: '', maxTokens: 6 });
    worker.setMemory(slots, 3);
    const r = await worker.describe({ images: [{ ...img, data: img.data.slice() }], prompt: '', maxTokens: 6 }, () => undefined);
    assert.deepEqual(r.tokenIds, expected.tokenIds);
    worker.setMemory(new Float32Array(0), 0);
    assert.throws(() => worker.setMemory(new Float32Array(5), 1), isCode('BITMAR_ERR_MEMORY_VECTOR', /1 slots of width 32 need 32/));
  });

  it('rejects a bad request with the engine error and stays usable', async () => {
    await assert.rejects(worker.describe({ images: [testImage(10, 10, 1)], prompt: 'a '.repeat(20) }, () => undefined), isCode('BITMAR_ERR_PROMPT_INVALID'));
    await assert.rejects(worker.describe({ images: [{ width: 10, height: 10, data: new Uint8Array(7) }], prompt: '' }, () => undefined), isCode('BITMAR_ERR_IMAGE_SIZE'));
    await assert.rejects(worker.describe({ images: [testImage(10, 10, 1)], prompt: '', temperature: -2 }, () => undefined), isCode('BITMAR_ERR_CONFIG_INVALID'));
    const r = await worker.describe({ images: [testImage(10, 10, 1)], prompt: '', maxTokens: 2 }, () => undefined);
    assert.equal(r.cancelled, false);
  });

  it('abort cancels between tokens and returns the partial caption', async () => {
    const w = await InferenceWorker.start({ modelPath: endlessPath, kernels: 'typescript' });
    try {
      const ac = new AbortController();
      const tokens: number[] = [];
      const r = await w.describe({ images: [testImage(30, 30, 6)], prompt: '', maxTokens: 100_000 }, (t) => {
        tokens.push(t.tokenId);
        if (tokens.length === 3) ac.abort();
      }, ac.signal);
      assert.equal(r.cancelled, true);
      assert.ok(r.tokenIds.length >= 3 && r.tokenIds.length < 100_000, `${r.tokenIds.length} tokens`);
      assert.equal(r.text, tinyEngine().tokenizer.decode(r.tokenIds));
      // an already aborted signal: encoded, no tokens
      const pre = await w.describe({ images: [testImage(30, 30, 6)], prompt: '' }, () => assert.fail('no token expected'), AbortSignal.abort());
      assert.equal(pre.cancelled, true);
      assert.equal(pre.tokenIds.length, 0);
      assert.equal(pre.episodes.length, 1);
    } finally {
      await w.close();
    }
  });

  it('start rejects a missing or corrupt model with its error', async () => {
    await assert.rejects(InferenceWorker.start({ modelPath: join(dir, 'nope.gguf') }), isCode('BITMAR_ERR_MODEL_NOT_FOUND'));
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, tinyModelBytes().subarray(0, 1000));
    await assert.rejects(InferenceWorker.start({ modelPath: bad, kernels: 'typescript' }), isCode('BITMAR_ERR_MODEL_FORMAT', /truncated at byte 1000/));
  });

  it('a worker that dies is reported, and never crashes the caller', async () => {
    const w = await InferenceWorker.start({ modelPath: endlessPath, kernels: 'typescript' });
    const p = w.describe({ images: [testImage(30, 30, 7)], prompt: '', maxTokens: 100_000 }, () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    await (w as unknown as { worker: Worker }).worker.terminate();
    await assert.rejects(p, isCode('BITMAR_ERR_GENERATION_CANCELLED', /the inference worker exited \(code 1\); start a new InferenceWorker/));
    await assert.rejects(w.encodeText('x'), isCode('BITMAR_ERR_GENERATION_CANCELLED', /exited/));
    await w.close();
  });

  it('after close, calls reject', async () => {
    const w = await InferenceWorker.start({ modelPath, kernels: 'typescript' });
    await w.close();
    await assert.rejects(w.encodeText('x'), isCode('BITMAR_ERR_GENERATION_CANCELLED', /closed/));
  });
});
