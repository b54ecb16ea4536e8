// Smoke check of a built addon, runnable by any node (no tsx): `node prebuild-smoke.cjs ADDON`.
// Packs fixed random ternary matrices, runs bitlinearI8/U8 on every ISA the addon offers on this CPU
// and prints one JSON line: {arch, available, sourceHash, results: {isa: sha256 prefix of all outputs}}.
// Bit-exact kernels give the same digest on every ISA and every architecture (test/native/prebuilds.test.ts
// runs it on the x64 prebuild here and on the arm64 one under qemu-aarch64).
'use strict';
const { createHash } = require('crypto');
const a = require(process.argv[2]);
let s = 12345;
const rand = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const info = a.kernelInfo();
const out = { arch: info.arch, available: info.available, sourceHash: a.sourceHash, results: {} };
const cases = [[64, 200, 3], [33, 1027, 1], [256, 512, 4], [7, 5, 2]];
const data = cases.map(([rows, cols, m]) => {
  const rb = (cols + 3) >> 2, codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) for (let j = 0; j < rb * 4; j++) codes[r * rb + (j >> 2)] |= (j < cols ? Math.floor(rand() * 3) : 1) << (2 * (j & 3));
  const x = Float32Array.from({ length: m * cols }, () => (rand() * 2 - 1) * 3);
  const bias = Float32Array.from({ length: rows }, () => rand() - 0.5);
  return { rows, cols, m, codes, x, bias };
});
for (const isa of info.available) {
  const idx = a.isaIndex(isa), h = createHash('sha256');
  for (const d of data) {
    const w = a.packTernary(d.codes, d.rows, d.cols);
    for (const op of ['bitlinearI8', 'bitlinearU8']) {
      const y = new Float32Array(d.m * d.rows).fill(NaN);
      a[op](idx, w, 0.0173, d.x, d.m, y, d.bias);
      h.update(Buffer.from(y.buffer));
    }
  }
  out.results[isa] = h.digest('hex').slice(0, 16);
}
console.log(JSON.stringify(out));
