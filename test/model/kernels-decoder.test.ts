// The fused decoder step (native/decode/decoder-step.cc via Kernels.createDecoderStep): for every
// native ISA, a generation on the fused step gives the same logits, bit for bit, as the TypeScript
// kernels composing the ops of src/model/engine/forward.ts — across cache evictions (re-based RoPE
// positions), S = 0, head widths that are not a multiple of 4, a teacher-forced multi-row feed (the
// op-by-op path) followed by fused steps on the same cache, and a re-conditioning mid-stream. The
// spec and the session state are checked by the addon.
import assert from 'node:assert/strict';

import type { StreamEngine } from '../../src/model/engine/engine.js';
import { decoderStepSpec } from '../../src/model/engine/forward.js';
import { GgufReader } from '../../src/model/gguf/reader.js';
import { StreamEngine as Engine } from '../../src/model/engine/engine.js';
import type { Kernels } from '../../src/model/kernels.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { createNativeKernels } from '../../src/model/kernels-native.js';
import { tryLoadNativeAddon } from '../helpers/native.js';
import { testImage, tinyModelBytes } from './engine/helpers.js';

const { addon, addonError } = tryLoadNativeAddon();
const isas = addon ? addon.kernelInfo().available : [];

function engineOf(bytes: Uint8Array, k: Kernels): StreamEngine {
  return Engine.fromReader(GgufReader.fromBytes(bytes, 'tiny.gguf'), k);
}

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  const gu = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wu = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) if (gu[i] !== wu[i]) assert.fail(`${what}: logit ${i} differs: native ${got[i]} vs typescript ${want[i]}`);
}

/**
 * Runs the same token stream through a TypeScript and a native engine: `plan` lists what to feed
 * (a single id, a teacher-forced row list, or 'recondition'); every fed row's logits are compared.
 */
function compare(bytes: Uint8Array, nk: Kernels, sinks: number, window: number, plan: ReadonlyArray<number | number[] | 'recondition'>): void {
  const engines = [engineOf(bytes, tsKernels), engineOf(bytes, nk)] as const;
  const V = engines[0].config.vocabSize;
  const conds = engines.map((e) => e.prepare([testImage(40, 30, 1)], 'is there a red circle'));
  const conds2 = engines.map((e) => e.prepare([testImage(24, 24, 9)], 'what is left'));
  const sess = engines.map((e, i) => {
    const s = e.session('narration', sinks, window);
    e.condition(s, conds[i]!);
    s.resetCache();
    return s;
  });
  plan.forEach((p, step) => {
    if (p === 'recondition') {
      engines.forEach((e, i) => e.condition(sess[i]!, conds2[i]!));
      return;
    }
    const ids = typeof p === 'number' ? [p] : p;
    const out = engines.map((e, i) => e.feed(sess[i]!, ids, 0, ids.length, true).slice(0, ids.length * V));
    sameBits(out[1]!, out[0]!, `step ${step} (${ids.length} row${ids.length > 1 ? 's' : ''}, fed ${sess[0]!.fed})`);
    const known = engines[1].state.logitsArgmax;
    if (ids.length === 1) assert.equal(known, tsKernels.argmax(out[0]!, 0, V), `state.logitsArgmax at step ${step}`);
    else assert.ok(known === -1 || known === tsKernels.argmax(out[0]!, 0, V), `state.logitsArgmax at step ${step}`);
    for (let l = 0; l < sess[0]!.caches.length; l++) {
      assert.deepEqual(Array.from(sess[1]!.caches[l]!.meta), Array.from(sess[0]!.caches[l]!.meta), `cache state, layer ${l}, step ${step}`);
    }
  });
  assert.ok(sess[1]!.fused !== null, 'the native engine used its fused step');
}

describe('fused decoder step equals the TypeScript ops bit for bit', function () {
  this.timeout(300_000);
  before(function () {
    if (!addon) {
      console.log(`      (skipped: ${addonError}; build it with \`npx node-gyp rebuild -j 1\`)`);
      this.skip();
    }
  });

  const tokens = (n: number, seed: number, V = 40): number[] => Array.from({ length: n }, (_, i) => (seed * 7 + i * 13) % V);

  for (const isa of isas) {
    describe(`native-${isa}`, () => {
      let nk: Kernels;
      before(() => {
        nk = createNativeKernels(addon!, isa);
      });

      it('40 single-token steps through S=2, W=6 (34 evictions), d=32, 2 heads of 16', () => {
        compare(tinyModelBytes(), nk, 2, 6, tokens(40, 1));
      });

      it('S = 0, W = 3; head width 6 (not a multiple of 4); 3 decoder blocks', () => {
        const bytes = tinyModelBytes({ seed: 3, hparams: { embedding_length: 24, head_count: 4, feed_forward_length: 40, 'decoder.block_count': 3 } });
        compare(bytes, nk, 0, 3, tokens(20, 2));
      });

      it('teacher-forced rows (op by op), fused steps, a re-conditioning, more rows over a full cache', () => {
        compare(tinyModelBytes({ seed: 5 }), nk, 2, 6, [[1, 5, 9], 4, 7, [8, 2], 3, 'recondition', 11, 12, [13, 14, 15, 16], 17, 2, 2]);
      });

      it('the step returns the arg-max of the logits it writes', () => {
        const e = engineOf(tinyModelBytes({ seed: 8 }), nk);
        const s = e.session('caption', 2, 6);
        e.condition(s, e.prepare([testImage(16, 16, 4)], 'describe the scene'));
        s.resetCache();
        const step = nk.createDecoderStep!(decoderStepSpec(e, s));
        const logits = new Float32Array(e.config.vocabSize);
        let tok = e.tokenizer.bosId;
        for (let i = 0; i < 12; i++) {
          const best = step.step(tok, s.xLength, logits);
          assert.equal(best, tsKernels.argmax(logits, 0, logits.length), `step ${i}`);
          tok = best;
        }
      });
    });
  }

  it('createDecoder checks the spec; decodeStep checks the token, X rows, logits and cache state', () => {
    const nk = createNativeKernels(addon!);
    const e = engineOf(tinyModelBytes(), nk);
    const s = e.session('caption', 2, 6);
    e.condition(s, e.prepare([testImage(16, 16, 4)], 'describe the scene'));
    s.resetCache();
    const spec = decoderStepSpec(e, s);
    const coded = (ctor: ErrorConstructor, re: RegExp) => (err: unknown) =>
      err instanceof ctor && (err as { code?: string }).code === 'BITMAR_ERR_NATIVE_ARGUMENT' && re.test((err as Error).message);
    const l0 = spec.layers[0]!;
    assert.throws(() => nk.createDecoderStep!({ ...spec, layers: [{ ...l0, up: l0.down }] }), coded(RangeError, /layers\[0\]\.up\.w is 32×64, expected 64×32/));
    assert.throws(() => nk.createDecoderStep!({ ...spec, layers: [{ ...l0, keys: new Float32Array(3) }] }), coded(RangeError, /layers\[0\]\.keys holds 3/));
    assert.throws(() => nk.createDecoderStep!({ ...spec, tokEmb: new Float32Array(5) }), coded(RangeError, /tokEmb/));
    assert.throws(() => nk.createDecoderStep!({ ...spec, heads: 3 }), coded(RangeError, /heads·headDim/));
    const step = nk.createDecoderStep!(spec);
    const logits = new Float32Array(e.config.vocabSize);
    assert.throws(() => step.step(e.config.vocabSize, s.xLength, logits), coded(RangeError, /token/));
    assert.throws(() => step.step(1, spec.xCapacity + 1, logits), coded(RangeError, /xRows/));
    assert.throws(() => step.step(1, s.xLength, new Float32Array(3)), coded(RangeError, /logits/));
    s.caches[1]!.meta[1] = 99; // a window head beyond W
    assert.throws(() => step.step(1, s.xLength, logits), coded(RangeError, /layer 1 is corrupt/));
    s.caches[1]!.meta[1] = 0;
    s.caches[0]!.meta[0] = 3;
    s.caches[0]!.order[1] = 1000;
    assert.throws(() => step.step(1, s.xLength, logits), coded(RangeError, /bad row index at slot 1/));
  });
});
