/**
 * The DINOv2 ONNX feature extractor for bitmar-r1 pixel input (src/model/r1/vision-onnx.ts) on the
 * stand-in models of tools/reference/dinov2_standin.py: the preprocessing (whole-frame area resize,
 * ImageNet normalisation), output detection (pooler_output / last_hidden_state CLS / refused), fixed
 * and dynamic batch, and ORT's vectors against the PyTorch module's. Skipped without onnxruntime-node
 * (an optional package: `npm install onnxruntime-node`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BitmarError } from '../../../src/errors.js';
import { DINOV2_SIZE, VISION_ONNX_MISSING, dinov2Pixels, importOrt, inspectVisionModel, loadVisionOnnx } from '../../../src/model/r1/vision-onnx.js';
import { FIXTURE_DIR, relErr, standInImage } from './fixture.js';

interface StandInRef {
  readonly images: readonly { width: number; height: number }[];
  readonly pixel_sum: readonly number[];
  readonly pixel_probe: readonly (readonly number[])[];
  readonly pooler_output: readonly (readonly number[])[];
  readonly cls: readonly (readonly number[])[];
}
const ref = JSON.parse(readFileSync(join(FIXTURE_DIR, 'dinov2-standin.json'), 'utf8')) as StandInRef;
const ONNX = join(FIXTURE_DIR, 'dinov2-standin.onnx');
const ONNX_LHS = join(FIXTURE_DIR, 'dinov2-standin-lhs.onnx');
const ONNX_BAD = join(FIXTURE_DIR, 'dinov2-bad.onnx');

let ortMissing: string | null = null;
try {
  await import('onnxruntime-node' as string);
} catch (e) {
  ortMissing = `onnxruntime-node is not installed (optional; npm install onnxruntime-node): ${(e as Error).message.split('\n')[0]}`;
}

function isCode(code: string, pattern: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof BitmarError, `expected BitmarError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('bitmar-r1 DINOv2 ONNX extractor', function () {
  this.timeout(60_000);

  it('preprocesses as the generator did: whole-frame area resize to 224, ImageNet mean/std, CHW', () => {
    ref.images.forEach((im, b) => {
      const x = dinov2Pixels(standInImage(im.width, im.height), DINOV2_SIZE);
      let sum = 0;
      for (const v of x) sum += v;
      assert.ok(Math.abs(sum - ref.pixel_sum[b]!) < 1e-6 * x.length, `image ${b}: pixel sum ${sum} vs ${ref.pixel_sum[b]}`);
      const S = DINOV2_SIZE;
      const probes = [[0, 0, 0], [1, 100, 37], [2, 223, 223]] as const;
      probes.forEach(([c, y, xx], i) => assert.equal(x[c * S * S + y * S + xx], ref.pixel_probe[b]![i], `image ${b} probe ${i}`));
    });
  });

  it('chooses pooler_output, else the CLS token of last_hidden_state; refuses other models', () => {
    const px = { name: 'pixel_values', isTensor: true, type: 'float32', shape: ['batch', 3, 224, 224] };
    const lhs = { name: 'last_hidden_state', type: 'float32', shape: ['batch', 257, 768] };
    const pool = { name: 'pooler_output', type: 'float32', shape: ['batch', 768] };
    assert.deepEqual(
      inspectVisionModel('m.onnx', [px], [lhs, pool]),
      { path: 'm.onnx', input: 'pixel_values', output: 'pooler_output', pooling: 'pooled', size: 224, batch: null, width: 768 },
    );
    const one = inspectVisionModel('m.onnx', [{ ...px, shape: [1, 3, 518, 518] }], [lhs]);
    assert.deepEqual([one.output, one.pooling, one.size, one.batch], ['last_hidden_state', 'cls', 518, 1]);
    // names only (older onnxruntime reports no shapes): the same choice, checked at run time
    assert.equal(inspectVisionModel('m.onnx', [{ name: 'pixel_values' }], [{ name: 'last_hidden_state' }]).pooling, 'cls');
    // other names, one output ending in 768
    assert.equal(inspectVisionModel('m.onnx', [{ ...px, name: 'input' }], [{ name: 'features', shape: ['b', 768] }]).output, 'features');
    assert.throws(() => inspectVisionModel('m.onnx', [px], [{ name: 'logits', shape: ['batch', 10] }]), isCode('BITMAR_ERR_MODEL_MISMATCH', /needs an output "pooler_output" \[B, 768\] or "last_hidden_state".*logits \[batch, 10\]/));
    assert.throws(() => inspectVisionModel('m.onnx', [px], [{ ...pool, shape: ['batch', 384] }]), isCode('BITMAR_ERR_MODEL_MISMATCH', /384-d features; bitmar-r1 takes 768-d/));
    assert.throws(() => inspectVisionModel('m.onnx', [{ ...px, type: 'float16' }], [pool]), isCode('BITMAR_ERR_MODEL_MISMATCH', /float16/));
    assert.throws(() => inspectVisionModel('m.onnx', [px, { name: 'mask' }].map((m, i) => ({ ...m, name: i ? 'mask' : 'image' })), [pool]), isCode('BITMAR_ERR_MODEL_MISMATCH', /needs one input "pixel_values"/));
    assert.throws(() => inspectVisionModel('m.onnx', [{ ...px, shape: ['b', 1, 224, 224] }], [pool]), isCode('BITMAR_ERR_MODEL_MISMATCH', /\[B, 3, H, W\]/));
  });

  it('without onnxruntime-node: one clear message', async () => {
    await assert.rejects(importOrt('onnxruntime-node-not-installed-for-this-test'), isCode('BITMAR_ERR_CONFIG_INVALID', new RegExp(`^${VISION_ONNX_MISSING.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)));
    await assert.rejects(loadVisionOnnx(join(FIXTURE_DIR, 'missing.onnx')), isCode('BITMAR_ERR_MODEL_NOT_FOUND', /missing\.onnx does not exist/));
  });

  describe('with onnxruntime-node', () => {
    before(function () {
      if (ortMissing !== null) this.skip();
    });
    if (ortMissing !== null) it(`skipped: ${ortMissing}`, function () { this.skip(); });

    it('pooler_output model, dynamic batch: ORT vectors = the PyTorch module\'s', async () => {
      const x = await loadVisionOnnx(ONNX);
      try {
        assert.deepEqual({ ...x.info, path: '' }, { path: '', input: 'pixel_values', output: 'pooler_output', pooling: 'pooled', size: 224, batch: null, width: 768 });
        const feats = await x.extract(ref.images.map((im) => standInImage(im.width, im.height)));
        assert.equal(feats.length, 2);
        feats.forEach((f, b) => {
          assert.equal(f.length, 768);
          const e = relErr(f, Float32Array.from(ref.pooler_output[b]!));
          assert.ok(e < 1e-5, `image ${b}: relative error ${e}`);
        });
      } finally {
        await x.close();
      }
    });

    it('last_hidden_state-only model with batch fixed to 1: the CLS token, one image per run', async () => {
      const x = await loadVisionOnnx(ONNX_LHS);
      try {
        assert.deepEqual([x.info.output, x.info.pooling, x.info.batch], ['last_hidden_state', 'cls', 1]);
        const feats = await x.extract(ref.images.map((im) => standInImage(im.width, im.height)));
        feats.forEach((f, b) => {
          const e = relErr(f, Float32Array.from(ref.cls[b]!));
          assert.ok(e < 1e-5, `image ${b}: relative error ${e}`);
        });
        assert.deepEqual(await x.extract([]), []);
      } finally {
        await x.close();
      }
    });

    it('refuses a model without a 768-d output, and a file that is not ONNX', async () => {
      await assert.rejects(loadVisionOnnx(ONNX_BAD), isCode('BITMAR_ERR_MODEL_MISMATCH', /dinov2-bad\.onnx: a DINOv2 feature extractor needs an output "pooler_output".*this file has inputs pixel_values \[batch, 3, 224, 224\]; outputs logits \[batch, 10\]/));
      await assert.rejects(loadVisionOnnx(join(FIXTURE_DIR, 'config.json')), isCode('BITMAR_ERR_MODEL_FORMAT', /onnxruntime cannot load/));
    });
  });
});
