/**
 * Freeing frame pixels at once (native/addon.cc detachArrayBuffer, kernels-native.ts
 * createBufferReleaser), as the inference worker does after each describe: the buffer is detached
 * (its memory freed now, not at the next GC), and what cannot be detached is left alone.
 */
import assert from 'node:assert/strict';
import { createBufferReleaser } from '../../src/model/kernels-native.js';
import { tryLoadNativeAddon } from '../helpers/native.js';

const { addon, addonError } = tryLoadNativeAddon();

describe('detachArrayBuffer / createBufferReleaser', () => {
  before(function () {
    if (addon === null) this.skip(); // the releaser is a documented no-op without the addon: ${addonError}
  });

  it('detaches an ArrayBuffer: its bytes are gone at once, and views over it read as empty', () => {
    const buf = new ArrayBuffer(1280 * 720 * 3);
    const view = new Uint8Array(buf).fill(7);
    assert.equal(addon!.detachArrayBuffer!(buf), true);
    assert.equal(buf.byteLength, 0);
    assert.equal(view.length, 0);
    assert.equal(addon!.detachArrayBuffer!(buf), true, 'a second detach is a no-op');
  });

  it('refuses WebAssembly memory (false, untouched) and anything not an ArrayBuffer (TypeError)', () => {
    const mem = new WebAssembly.Memory({ initial: 1 });
    assert.equal(addon!.detachArrayBuffer!(mem.buffer), false);
    assert.equal(mem.buffer.byteLength, 65536);
    assert.throws(() => addon!.detachArrayBuffer!(new Uint8Array(4) as unknown as ArrayBuffer), TypeError);
    assert.throws(() => addon!.detachArrayBuffer!(new SharedArrayBuffer(8) as unknown as ArrayBuffer), TypeError);
  });

  it('the releaser frees every ArrayBuffer it is given and skips SharedArrayBuffers', () => {
    const release = createBufferReleaser();
    const a = new ArrayBuffer(64);
    const b = new ArrayBuffer(128);
    const shared = new SharedArrayBuffer(32);
    release([a, b, shared]);
    assert.deepEqual([a.byteLength, b.byteLength, shared.byteLength], [0, 0, 32]);
  });

  it('keeps memory flat: 200 frames of 2.7 MB released one by one never hold more than a few at once', () => {
    const release = createBufferReleaser();
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for (let i = 0; i < 200; i++) {
      const frame = new ArrayBuffer(1280 * 720 * 3);
      new Uint8Array(frame).fill(i);
      release([frame]);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    assert.ok(peak < 8 * 1024 * 1024, `array buffers peaked ${(peak / 1e6).toFixed(1)} MB above the start`);
  });
});
