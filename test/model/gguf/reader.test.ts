import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitmarError } from '../../../src/errors.js';
import { f16ToF32, f32ToF16 } from '../../../src/model/gguf/f16.js';
import { GgufReader } from '../../../src/model/gguf/reader.js';
import type { GgufValue } from '../../../src/model/gguf/types.js';
import { gv, writeGguf, type GgufTensorInput } from '../../../src/model/gguf/writer.js';

const METADATA: [string, GgufValue][] = [
  ['general.architecture', gv.str('test-arch')],
  ['general.alignment', gv.u32(32)],
  ['k.u8', gv.u8(250)],
  ['k.i8', gv.i8(-120)],
  ['k.u16', gv.u16(65000)],
  ['k.i16', gv.i16(-32000)],
  ['k.u32', gv.u32(4_000_000_000)],
  ['k.i32', gv.i32(-2_000_000_000)],
  ['k.f32', gv.f32(Math.fround(1.25e-5))],
  ['k.f64', gv.f64(Math.PI)],
  ['k.u64', gv.u64(18_000_000_000_000_000_000n)],
  ['k.i64', gv.i64(-9_000_000_000_000_000_000n)],
  ['k.bool', gv.bool(true)],
  ['k.string', gv.str('héllo ✓ wörld')],
  ['k.arr.u8', gv.array({ itemType: 'u8', items: [0, 1, 255] })],
  ['k.arr.i16', gv.array({ itemType: 'i16', items: [-5, 7] })],
  ['k.arr.f32', gv.array({ itemType: 'f32', items: [0.5, -2] })],
  ['k.arr.f64', gv.array({ itemType: 'f64', items: [Math.E] })],
  ['k.arr.u64', gv.array({ itemType: 'u64', items: [1n, 2n ** 63n] })],
  ['k.arr.i64', gv.array({ itemType: 'i64', items: [-1n] })],
  ['k.arr.bool', gv.array({ itemType: 'bool', items: [true, false] })],
  ['k.arr.string', gv.strings(['<pad>', '', 'a b'])],
  ['k.arr.empty', gv.array({ itemType: 'u32', items: [] })],
  ['k.arr.nested', gv.array({ itemType: 'array', items: [{ itemType: 'i32', items: [1, -2] }, { itemType: 'string', items: ['x'] }] })],
];

function tensors(): GgufTensorInput[] {
  return [
    { name: 'a.f32', type: 'F32', dims: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
    { name: 'b.f16', type: 'F16', dims: [4], data: Float32Array.from([0.5, -1, 65504, 1e-7]) },
    { name: 'c.i8', type: 'I8', dims: [5], data: Uint8Array.from([0, 1, 2, 0x55, 0xaa]) },
    { name: 'd.i32', type: 'I32', dims: [2], data: Int32Array.from([-7, 2 ** 31 - 1]) },
  ];
}

function expectFormat(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => GgufReader.fromBytes(bytes, 'test.gguf'),
    (e: unknown) => {
      assert.ok(e instanceof BitmarError, `expected BitmarError, got ${String(e)}`);
      assert.equal(e.code, 'BITMAR_ERR_MODEL_FORMAT');
      assert.match(e.message, pattern);
      assert.match(e.message, /^test\.gguf: /);
      return true;
    },
  );
}

/** Byte offset of tensor info `name`'s fields (just after its name string). */
function tensorInfoFieldsAt(bytes: Uint8Array, name: string): number {
  const needle = Buffer.from(name);
  const at = Buffer.from(bytes).indexOf(needle);
  assert.ok(at > 0);
  return at + needle.length;
}

describe('gguf reader/writer', () => {
  it('round-trips every metadata type and every tensor type', () => {
    const bytes = writeGguf(METADATA, tensors());
    const r = GgufReader.fromBytes(bytes);
    assert.equal(r.version, 3);
    assert.equal(r.alignment, 32);
    assert.deepEqual([...r.metadata.keys()], METADATA.map(([k]) => k));
    for (const [k, v] of METADATA) assert.deepEqual(r.get(k), v, k);
    assert.equal(r.dataOffset % 32, 0);
    assert.deepEqual([...r.tensors.keys()], ['a.f32', 'b.f16', 'c.i8', 'd.i32']);
    for (const t of r.tensors.values()) assert.equal(t.offset % 32, 0);
    assert.deepEqual(r.tensorInfo('a.f32').dims, [3, 2]);
    assert.deepEqual([...r.tensorF32('a.f32')], [1, 2, 3, 4, 5, -6.5]);
    assert.deepEqual([...r.tensorF32('b.f16')], [0.5, -1, 65504, f16ToF32(f32ToF16(1e-7))]);
    assert.deepEqual([...r.tensorBytes('c.i8')], [0, 1, 2, 0x55, 0xaa]);
    assert.deepEqual([...r.tensorI32('d.i32')], [-7, 2 ** 31 - 1]);
    assert.equal(r.getString('general.architecture'), 'test-arch');
    assert.throws(() => r.getUint('k.u64'), /metadata "k\.u64" = 18000000000000000000 is out of range/);
    assert.equal(r.getUint('k.u32'), 4_000_000_000);
    assert.equal(r.getNumber('k.f32'), Math.fround(1.25e-5));
    assert.deepEqual(r.getStringArray('k.arr.string'), ['<pad>', '', 'a b']);
  });

  it('reads from a file and reports a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gguf-'));
    const path = join(dir, 'm.gguf');
    writeFileSync(path, writeGguf(METADATA, tensors()));
    assert.equal(GgufReader.open(path).tensors.size, 4);
    assert.throws(() => GgufReader.open(join(dir, 'nope.gguf')), (e: unknown) => e instanceof BitmarError && e.code === 'BITMAR_ERR_MODEL_NOT_FOUND');
  });

  it('typed getters name the key and the type', () => {
    const r = GgufReader.fromBytes(writeGguf(METADATA, tensors()), 'x.gguf');
    assert.throws(() => r.getString('k.u8'), /x\.gguf: metadata "k\.u8" must be a string, found u8/);
    assert.throws(() => r.getUint('k.i8'), /metadata "k\.i8" = -120 is out of range/);
    assert.throws(() => r.getString('nope'), /metadata key "nope" is missing/);
    assert.throws(() => r.tensorI32('a.f32'), /tensor "a\.f32" is F32, expected I32/);
    assert.throws(() => r.tensorInfo('zz'), (e: unknown) => e instanceof BitmarError && e.code === 'BITMAR_ERR_MODEL_MISMATCH' && /tensor "zz" is missing/.test(e.message));
  });

  it('F16 conversion rounds to nearest even and keeps specials', () => {
    assert.equal(f32ToF16(1), 0x3c00);
    assert.equal(f32ToF16(-2), 0xc000);
    assert.equal(f32ToF16(65504), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00); // rounds to +Inf
    assert.equal(f32ToF16(2 ** -24), 0x0001);
    assert.equal(f32ToF16(2 ** -25), 0x0000); // tie → even (0)
    assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // tie → even (2)
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
    assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
    for (let h = 0; h < 0x7c00; h += 7) assert.equal(f32ToF16(f16ToF32(h)), h);
  });

  describe('rejects corrupt files with a precise message', () => {
    const good = (): Uint8Array => writeGguf(METADATA, tensors());

    it('bad magic', () => {
      const b = good();
      b[0] = 0x47; b[1] = 0x47; b[2] = 0x4d; b[3] = 0x4c; // GGML
      expectFormat(b, /bad magic at byte 0: expected "GGUF" \(47 47 55 46\), found 47 47 4d 4c/);
    });

    it('bad version', () => {
      const b = good();
      new DataView(b.buffer).setUint32(4, 2, true);
      expectFormat(b, /unsupported GGUF version 2 at byte 4/);
    });

    it('truncated anywhere', () => {
      const b = good();
      expectFormat(b.subarray(0, 6), /truncated at byte 6: reading version at byte 4 needs 4 bytes, 2 left/);
      expectFormat(b.subarray(0, 30), /metadata_kv_count 24 at byte 16 is absurd \(or the file is truncated at byte 30\)/);
      expectFormat(b.subarray(0, 400), /truncated at byte 400: .*metadata "k\.arr/);
      // Cut inside the tensor data: the last tensor runs past the end.
      const r = GgufReader.fromBytes(b);
      const last = r.tensorInfo('d.i32');
      expectFormat(b.subarray(0, last.offset + 4), new RegExp(`tensor "d\\.i32" \\(I32 \\[2\\], 8 bytes at byte ${last.offset}\\) runs to byte ${last.offset + 8}, past the end of the file \\(truncated at byte ${last.offset + 4}\\)`));
      // Every prefix is rejected cleanly (never a RangeError).
      for (let n = 0; n < r.dataOffset; n += 3) {
        assert.throws(() => GgufReader.fromBytes(b.subarray(0, n)), (e: unknown) => e instanceof BitmarError && e.code === 'BITMAR_ERR_MODEL_FORMAT', `prefix ${n}`);
      }
    });

    it('absurd counts', () => {
      const b = good();
      new DataView(b.buffer).setBigUint64(16, 1n << 40n, true);
      expectFormat(b, /metadata_kv_count 1099511627776 at byte 16 is absurd/);
      const c = good();
      new DataView(c.buffer).setBigUint64(8, 1n << 40n, true);
      expectFormat(c, /tensor_count 1099511627776 at byte 8 is absurd/);
      const d = good();
      new DataView(d.buffer).setBigUint64(8, 1n << 63n, true);
      expectFormat(d, /tensor_count at byte 8 is 9223372036854775808, larger than any valid file/);
      // An array claiming more items than bytes remain.
      const e = good();
      const at = Buffer.from(e).indexOf(Buffer.from('k.arr.string')) + 'k.arr.string'.length + 4 + 4;
      new DataView(e.buffer).setBigUint64(at, 1n << 32n, true);
      expectFormat(e, /metadata "k\.arr\.string" at byte \d+ declares 4294967296 string items/);
      // A string longer than the file.
      const f = good();
      new DataView(f.buffer).setBigUint64(24, 1n << 30n, true);
      expectFormat(f, /metadata key #0 at byte 24 declares 1073741824 bytes/);
    });

    it('unknown value type and bad bool', () => {
      const b = good();
      const at = Buffer.from(b).indexOf(Buffer.from('k.u8')) + 4;
      new DataView(b.buffer).setUint32(at, 13, true);
      expectFormat(b, new RegExp(`metadata "k\\.u8" has unknown value type 13 at byte ${at}`));
      const c = good();
      const bat = Buffer.from(c).indexOf(Buffer.from('k.bool')) + 6 + 4;
      c[bat] = 2;
      expectFormat(c, new RegExp(`metadata "k\\.bool" at byte ${bat} is a bool with value 2`));
    });

    it('bad alignment', () => {
      expectFormat(writeGguf([['general.alignment', gv.u32(24)]], []), /general\.alignment 24 is invalid/);
      const b = writeGguf([['general.alignmenX', gv.u64(32n)]], []);
      b[Buffer.from(b).indexOf(Buffer.from('alignmenX')) + 8] = 't'.charCodeAt(0);
      expectFormat(b, /general\.alignment must be a u32, found u64/);
    });

    it('bad tensor infos', () => {
      const b = good();
      const at = tensorInfoFieldsAt(b, 'a.f32');
      new DataView(b.buffer).setUint32(at, 5, true);
      expectFormat(b, new RegExp(`tensor "a\\.f32" has n_dims 5 at byte ${at}`));
      const c = good();
      const cat = tensorInfoFieldsAt(c, 'c.i8') + 4 + 8;
      new DataView(c.buffer).setUint32(cat, 12, true);
      expectFormat(c, new RegExp(`tensor "c\\.i8" has ggml type 12 at byte ${cat}; supported: F32=0, F16=1, I8=24, I32=26`));
      const d = good();
      const dat = tensorInfoFieldsAt(d, 'c.i8') + 4 + 8 + 4;
      new DataView(d.buffer).setBigUint64(dat, 33n, true);
      expectFormat(d, new RegExp(`tensor "c\\.i8" data offset 33 \\(field at byte ${dat}\\) is not a multiple of the alignment 32`));
    });

    it('overlapping and out-of-range tensors', () => {
      const b = good();
      // Point b.f16 at a.f32's data.
      const at = tensorInfoFieldsAt(b, 'b.f16') + 4 + 8 + 4;
      new DataView(b.buffer).setBigUint64(at, 0n, true);
      expectFormat(b, /tensor "b\.f16" at byte \d+ overlaps tensor "a\.f32" \(bytes \d+\.\.\d+\)/);
      const c = good();
      const cat = tensorInfoFieldsAt(c, 'a.f32') + 4;
      new DataView(c.buffer).setBigUint64(cat, 1n << 40n, true);
      expectFormat(c, /tensor "a\.f32" \(F32 \[1099511627776, 2\], 8796093022208 bytes at byte \d+\) runs to byte \d+, past the end of the file/);
    });

    it('duplicate keys and tensor names', () => {
      expectFormat(writeGguf([['a', gv.u8(1)], ['a', gv.u8(2)]], []), /duplicate metadata key "a" at byte 38/);
      const t = tensors()[0]!;
      expectFormat(writeGguf([], [t, t]), /duplicate tensor "a\.f32"/);
    });

    it('invalid UTF-8 in a string', () => {
      const b = writeGguf([['key', gv.str('ab')]], []);
      const at = Buffer.from(b).indexOf(Buffer.from('ab'));
      b[at] = 0xff;
      expectFormat(b, /metadata "key" at byte \d+ is not valid UTF-8/);
    });
  });
});
