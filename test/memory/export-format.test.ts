/** Export/import files: the R1 memory JSON (plain and compressed), and invalid files that change nothing. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBitmarError } from '../../src/errors.js';
import { exportMemory, importMemory, readImportHeader } from '../../src/memory/export-format.js';
import { InMemoryEpisodicStore } from '../../src/memory/in-memory-store.js';
import { removeTempDirs, rng, tempDir, unitVector } from './helpers.js';
import { checkInvariants } from './store-contract.js';

function r1Export(K: number, d: number, seed = 1): { memory: number[][]; age: number[]; usage: number[]; quality: number[]; importance: number[] } {
  const r = rng(seed);
  return {
    memory: Array.from({ length: K }, () => Array.from({ length: d }, () => r() * 2 - 1)),
    age: Array.from({ length: K }, (_, k) => k + 1),
    usage: Array.from({ length: K }, (_, k) => 10 - k * 0.5),
    quality: Array.from({ length: K }, () => 0.9),
    importance: Array.from({ length: K }, (_, k) => 1 + k / 10),
  };
}

describe('memory export format', () => {
  after(removeTempDirs);

  it('imports an R1 memory export converted to JSON: K×128 rows with age/usage/quality/importance', () => {
    const file = join(tempDir(), 'r1.json');
    const r1 = { ...r1Export(32, 128), mean: new Array(128).fill(0), std: new Array(128).fill(1), update_count: 1234, version: '1.0', metadata: { size: 32, dim: 128, alpha: 0.2 }, compressed: false };
    writeFileSync(file, JSON.stringify(r1, null, 2));
    assert.deepEqual(readImportHeader(file), { format: 'r1', width: 128, slots: 32 });
    const s = new InMemoryEpisodicStore({ width: 128, slots: 512, policy: 'r1-score' });
    assert.deepEqual(importMemory(s, file), { format: 'r1', slots: 32, archive: 0 });
    assert.equal(s.stats().used, 32);
    const slot5 = s.slot(5)!;
    assert.deepEqual([slot5.age, slot5.usage, slot5.importance], [6, 7.5, 1.5]);
    assert.ok(Math.abs(slot5.quality - 0.9) < 1e-12);
    assert.deepEqual([...slot5.vector], [...Float32Array.from(r1.memory[5]!)]);
    assert.match(slot5.source, /^r1:r1\.json$/);
    // The R1 score orders eviction: lowest 0.4·age + 0.3·usage + 0.2·quality + 0.1·importance first.
    const small = new InMemoryEpisodicStore({ width: 128, slots: 32, policy: 'r1-score' });
    importMemory(small, file);
    assert.equal(small.write({ vector: unitVector(128, rng(2)) }).evicted!.episodeId, 1);
  });

  it('imports the R1 compressed form (uint8 data, min, max, original_shape)', () => {
    const file = join(tempDir(), 'r1c.json');
    const plain = r1Export(4, 8);
    writeFileSync(file, JSON.stringify({ ...plain, compressed: true, memory: { data: Array.from({ length: 32 }, (_, i) => (i * 8) % 256), min: -1, max: 1, original_shape: [4, 8] } }));
    const s = new InMemoryEpisodicStore({ width: 8, slots: 8 });
    importMemory(s, file);
    assert.ok(Math.abs(s.slot(0)!.vector[1]! - ((8 / 255) * 2 - 1)) < 1e-6);
  });

  it('rejects invalid files with BITMAR_ERR_MEMORY_IMPORT and changes nothing', () => {
    const dir = tempDir();
    const good = new InMemoryEpisodicStore({ width: 4, slots: 4, policy: 'lru' });
    for (let i = 0; i < 6; i++) good.write({ vector: unitVector(4, rng(i)), caption: `e${i}` });
    const file = join(dir, 'good.jsonl');
    exportMemory(good, file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const variants: Record<string, string> = {
      'not json': 'hello world',
      'empty object': '{}',
      'r1 ragged': JSON.stringify({ ...r1Export(2, 4), memory: [[1, 2, 3, 4], [1, 2]] }),
      'r1 nan': JSON.stringify(r1Export(2, 4)).replace('"usage":[10', '"usage":["x"'),
      'r1 wrong width': JSON.stringify(r1Export(2, 5)),
      'bad version': lines[0]!.replace('"version":1', '"version":9') + '\n',
      'bad last line': [...lines.slice(0, -1), '{"type":"slot","slot":0}'].join('\n'),
      'short vector': [...lines, lines[1]!.replace(/"vector":"[^"]+"/, '"vector":"AAAA"')].join('\n'),
      'nan vector': [...lines, lines[1]!.replace(/"vector":"[^"]+"/, '"vector":[1,2,3,null]')].join('\n'),
      'unknown type': [...lines, lines[1]!.replace('"type":"slot"', '"type":"other"')].join('\n'),
    };
    const target = new InMemoryEpisodicStore({ width: 4, slots: 4, policy: 'lru' });
    target.write({ vector: [1, 0, 0, 0], caption: 'keep me' });
    for (const [name, text] of Object.entries(variants)) {
      const f = join(dir, `${name}.txt`);
      writeFileSync(f, text);
      assert.throws(() => importMemory(target, f, { replace: true }), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_IMPORT'), name);
      assert.deepEqual(target.slots().map((r) => r.caption), ['keep me'], name);
    }
    assert.throws(() => importMemory(target, join(dir, 'missing.jsonl')), (e) => isBitmarError(e, 'BITMAR_ERR_MEMORY_IMPORT'));
  });

  it('import without replace adds to what is there (evicting through the policy when full)', () => {
    const dir = tempDir();
    const a = new InMemoryEpisodicStore({ width: 4, slots: 3, policy: 'fifo' });
    for (let i = 0; i < 3; i++) a.write({ vector: unitVector(4, rng(i)), caption: `a${i}` });
    const file = join(dir, 'a.jsonl');
    exportMemory(a, file);
    const b = new InMemoryEpisodicStore({ width: 4, slots: 3, policy: 'fifo' });
    b.write({ vector: [1, 0, 0, 0], caption: 'b0' });
    importMemory(b, file);
    assert.equal(b.stats().used, 3);
    assert.deepEqual([...b.archived()].map((x) => x.caption), ['b0']);
    assert.equal(b.stats().offered, 4);
    checkInvariants(b);
  });
});
