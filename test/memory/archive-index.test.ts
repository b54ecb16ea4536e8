/** The recall cache: SIMD and JavaScript kernels agree, rows survive growth, compaction and drops. */
import assert from 'node:assert/strict';
import { ArchiveIndex } from '../../src/memory/archive-index.js';
import { createDotKernel } from '../../src/memory/dot-kernel.js';
import { TopK } from '../../src/memory/recall.js';
import { rng, unitVector } from './helpers.js';

function brute(rows: Map<number, Float32Array>, q: Float32Array, k: number): number[] {
  return [...rows.entries()]
    .map(([id, v]) => ({ id, s: v.reduce((a, x, i) => a + x * q[i]!, 0) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, k)
    .map((x) => x.id);
}

describe('ArchiveIndex', () => {
  it('uses WebAssembly SIMD where available and falls back to JavaScript for odd widths', () => {
    assert.equal(createDotKernel(128).kind, 'wasm-simd');
    assert.equal(createDotKernel(6).kind, 'js');
    assert.equal(createDotKernel(128, 'js').kind, 'js');
  });

  for (const [width, prefer] of [[16, 'auto'], [16, 'js'], [7, 'auto']] as const) {
    it(`finds the exact top-k through growth, drops and compaction (d=${width}, ${prefer})`, () => {
      const r = rng(width);
      const index = new ArchiveIndex(width, prefer);
      const rows = new Map<number, Float32Array>();
      let id = 1;
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 3000; i++) {
          const v = unitVector(width, r);
          index.append(id, v);
          rows.set(id++, v);
        }
        for (let i = 0; i < 1700; i++) rows.delete(index.dropOldest()!);
        assert.equal(index.size, rows.size);
        assert.equal(index.firstId, Math.min(...rows.keys()));
        const q = unitVector(width, r);
        const top = new TopK(10);
        index.search(q, top);
        assert.deepEqual([...top.keys.subarray(0, top.size)], brute(rows, q, 10));
      }
      index.clear();
      const top = new TopK(3);
      index.search(unitVector(width, r), top);
      assert.equal(top.size, 0);
    });
  }

  it('SIMD and JavaScript scores agree to float32 rounding', () => {
    const r = rng(3);
    const a = new ArchiveIndex(128, 'auto');
    const b = new ArchiveIndex(128, 'js');
    for (let i = 1; i <= 5000; i++) {
      const v = unitVector(128, r);
      a.append(i, v);
      b.append(i, v);
    }
    const q = unitVector(128, r);
    const ta = new TopK(50);
    const tb = new TopK(50);
    a.search(q, ta);
    b.search(q, tb);
    for (let i = 0; i < 50; i++) assert.ok(Math.abs(ta.scores[i]! - tb.scores[i]!) < 1e-5);
  });
});
