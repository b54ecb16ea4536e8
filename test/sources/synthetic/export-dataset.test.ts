/**
 * tools/train/export-dataset.ts: writes BMDS / BMNS files that an independent reader (below, written
 * from the format comment only) parses back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_LIMITS, WORLD_VOCABULARY, mulberry32 } from '../../../src/sources/synthetic/shapes-world.js';
import { exportDataset, exportDatasetParallel, exportNarration, sampleFrameSize } from '../../../tools/train/export-dataset.js';

interface Parsed {
  magic: string;
  fields: number[];
  vocab: string[];
  records: Array<{ image: Uint8Array; caption: string; qa: Array<[string, string]> }>;
}

function parse(buf: Buffer, headerFields: number, imageSizeField: number, recordCount: (f: number[]) => number): Parsed {
  const magic = buf.toString('latin1', 0, 4);
  const fields = Array.from({ length: headerFields }, (_, i) => buf.readUInt32LE(4 + 4 * i));
  let off = 4 + 4 * headerFields;
  const vocabBytes = buf.readUInt32LE(off);
  off += 4;
  const vocab = JSON.parse(buf.toString('utf8', off, off + vocabBytes)) as string[];
  off += vocabBytes;
  const size = fields[imageSizeField]!;
  const records: Parsed['records'] = [];
  for (let i = 0; i < recordCount(fields); i++) {
    const image = buf.subarray(off, off + size * size * 3);
    off += size * size * 3;
    const n = buf.readUInt16LE(off);
    off += 2;
    const json = JSON.parse(buf.toString('utf8', off, off + n)) as { caption: string; qa: Array<[string, string]> };
    off += n;
    records.push({ image, ...json });
  }
  assert.equal(off, buf.length, 'no trailing bytes');
  return { magic, fields, vocab, records };
}

describe('export-dataset', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bmds-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a BMDS file that parses back, deterministically', () => {
    const out = join(dir, 'train.bin');
    exportDataset({ out, count: 12, seed: 3, imageSize: 32 });
    const buf = readFileSync(out);
    const p = parse(buf, 3, 2, (f) => f[1]!);
    assert.equal(p.magic, 'BMDS');
    assert.deepEqual(p.fields, [1, 12, 32]);
    assert.deepEqual(p.vocab, [...WORLD_VOCABULARY]);
    const vocab = new Set(p.vocab);
    for (const r of p.records) {
      assert.equal(r.qa[0]![0], 'describe the scene');
      assert.equal(r.qa[0]![1], r.caption);
      assert.equal(r.qa[1]![0], 'how many shapes are there');
      assert.deepEqual(r.qa.filter(([q]) => q.startsWith('is there')).map(([, a]) => a), ['yes', 'no']);
      for (const [q, a] of r.qa) for (const w of `${q} ${a}`.split(' ')) assert.ok(vocab.has(w), w);
      // the image is a real scene: dark background, at least one bright object pixel
      assert.ok(r.image.some((v) => v > 150));
    }
    const again = join(dir, 'again.bin');
    exportDataset({ out: again, count: 12, seed: 3, imageSize: 32 });
    assert.ok(readFileSync(again).equals(buf), 'same seed, same bytes');
    exportDataset({ out: again, count: 12, seed: 4, imageSize: 32 });
    assert.ok(!readFileSync(again).equals(buf));
  });

  it('writes the same bytes with worker threads', async () => {
    const serial = join(dir, 'serial.bin');
    const parallel = join(dir, 'parallel.bin');
    exportDataset({ out: serial, count: 40, seed: 8, imageSize: 16, jpegFraction: 0.1 });
    await exportDatasetParallel({ out: parallel, count: 40, seed: 8, imageSize: 16, jpegFraction: 0.1 }, 2);
    assert.ok(readFileSync(parallel).equals(readFileSync(serial)));
  });

  it('writes a BMNS narration file whose captions sometimes change within a sequence', () => {
    const out = join(dir, 'narration.bin');
    exportNarration({ out, sequences: 6, framesPerSequence: 6, seed: 1, imageSize: 16, jpegFraction: 0 });
    const p = parse(readFileSync(out), 4, 2, (f) => f[1]! * f[3]!);
    assert.equal(p.magic, 'BMNS');
    assert.deepEqual(p.fields, [1, 6, 16, 6]);
    let changes = 0;
    for (let q = 0; q < 6; q++) {
      const caps = p.records.slice(q * 6, q * 6 + 6).map((r) => r.caption);
      for (let f = 1; f < 6; f++) if (caps[f] !== caps[f - 1]) changes++;
    }
    assert.ok(changes > 0 && changes < 30, `changes ${changes}`);
  });

  it('samples frame sizes over the whole contract range, mostly small', () => {
    const rng = mulberry32(1);
    const sizes = Array.from({ length: 4000 }, () => sampleFrameSize(rng));
    for (const { width, height } of sizes) {
      assert.ok(width >= FRAME_LIMITS.minWidth && width <= FRAME_LIMITS.maxWidth);
      assert.ok(height >= FRAME_LIMITS.minHeight && height <= FRAME_LIMITS.maxHeight);
    }
    assert.ok(sizes.some((s) => s.width >= 1100 && s.height >= 600), 'large frames drawn');
    assert.ok(sizes.some((s) => s.width / s.height > 4) && sizes.some((s) => s.width / s.height < 0.5), 'extreme aspects drawn');
    const small = sizes.filter((s) => s.width * s.height <= 320 * 240).length;
    assert.ok(small > sizes.length / 2);
  });

  it('rejects bad options', () => {
    assert.throws(() => exportDataset({ out: join(dir, 'x.bin'), count: -1, seed: 1 }), RangeError);
    assert.throws(() => exportDataset({ out: join(dir, 'x.bin'), count: 1, seed: 1, jpegFraction: 2 }), RangeError);
  });
});
