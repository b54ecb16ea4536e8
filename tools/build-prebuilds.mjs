#!/usr/bin/env node
// Builds the prebuilt addons shipped in the package, so an install on these platforms needs no
// compiler (src/native-addon.ts loads build/Release/ first, then these):
//
//   prebuilds/linux-x64/bitmar_native.node     g++ (AVX2 and AVX-512 VNNI paths, picked at run time)
//   prebuilds/linux-arm64/bitmar_native.node   aarch64-linux-gnu-g++ (NEON dot-product path, picked
//                                              at run time from HWCAP_ASIMDDP; scalar otherwise)
//
// Usage (from a checkout, after `npm install`):
//   node tools/build-prebuilds.mjs                 both; `npm run prebuilds` runs this
//   node tools/build-prebuilds.mjs --arch arm64    one (x64 | arm64, comma-separated)
//   node tools/build-prebuilds.mjs --check         only says whether each prebuild matches native/
//   options: --jobs N (default: cores − 1), --out DIR (default prebuilds/)
//
// Needs (Debian/Ubuntu): build-essential python3 g++-aarch64-linux-gnu (on an arm64 host the x64
// one needs g++-x86-64-linux-gnu). Offline: node-gyp takes node's headers from --nodedir, which is
// npm_config_nodedir when set (e.g. `nodedir=/usr` in ~/.npmrc), else the prefix of this node when it
// has include/node/node_api.h (Debian's nodejs and the nodejs.org tarballs do), else node-gyp's
// cache (~/.cache/node-gyp/<version>, downloaded on first use). The addon uses Node-API 8 only, so the
// headers' Node version does not matter and one binary serves every Node ≥ 20.
//
// How: native/ and binding.gyp are copied to a temporary directory (a snapshot: edits made while it
// builds do not mix in), built there with node-gyp exactly as an install builds them (build/ of the
// checkout is left alone), with -fvisibility=hidden, the source hash (tools/source-hash.mjs) as
// -DBITMAR_SOURCE_HASH, and build paths mapped out of the binary (same sources → same bytes); then
// stripped and checked: ELF machine, the napi_register_module_v1 export, the embedded hash, the
// glibc/libstdc++ symbol versions it needs (≤ GLIBC_2.28 and GLIBCXX_3.4.28, so it loads wherever
// Node's own linux binaries do), and on the host's architecture that it loads and runs.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { embeddedSourceHash, nativeSourceHash } from './source-hash.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** Per target arch: ELF e_machine, readelf's name for it, the cross toolchain's prefix. */
const ARCHES = {
  x64: { machine: 'Advanced Micro Devices X86-64', cross: 'x86_64-linux-gnu-', apt: 'g++-x86-64-linux-gnu', isas: ['avx512-vnni', 'avx2'] },
  arm64: { machine: 'AArch64', cross: 'aarch64-linux-gnu-', apt: 'g++-aarch64-linux-gnu', isas: ['neon-dotprod'] },
};
const MAX_GLIBC = [2, 28];
const MAX_GLIBCXX = [3, 4, 28];

class BuildError extends Error {}

function fail(msg) {
  throw new BuildError(msg);
}

function parseArgs(argv) {
  const o = { arches: Object.keys(ARCHES), jobs: Math.max(1, availableParallelism() - 1), out: join(root, 'prebuilds'), check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`));
    if (a === '--arch') o.arches = val().split(',').filter(Boolean);
    else if (a === '--jobs' || a === '-j') o.jobs = Number(val());
    else if (a === '--out') o.out = resolve(val());
    else if (a === '--check') o.check = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node tools/build-prebuilds.mjs [--arch x64,arm64] [--jobs N] [--out DIR] [--check]');
      process.exit(0);
    } else fail(`unknown argument ${a} (see --help)`);
  }
  for (const a of o.arches) if (!ARCHES[a]) fail(`unknown arch ${a}: one of ${Object.keys(ARCHES).join(', ')}`);
  if (!Number.isInteger(o.jobs) || o.jobs < 1) fail('--jobs must be a positive integer');
  return o;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  return r;
}

function onPath(name) {
  return run('sh', ['-c', `command -v ${name}`]).stdout.trim() || null;
}

/** node-gyp's --nodedir: where node's headers are without a download (see the header comment). */
function nodeDir() {
  const fromNpm = process.env.npm_config_nodedir;
  if (fromNpm) return fromNpm;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

function versionLe(v, max) {
  for (let i = 0; i < Math.max(v.length, max.length); i++) {
    const a = v[i] ?? 0;
    const b = max[i] ?? 0;
    if (a !== b) return a < b;
  }
  return true;
}

/** Checks a built (stripped) addon; returns a one-line summary or fails. */
function verify(arch, file, hash) {
  const spec = ARCHES[arch];
  const header = run('readelf', ['-h', file]).stdout;
  if (!/Type:\s+DYN/.test(header) || !header.includes(spec.machine)) fail(`${file} is not a ${spec.machine} shared object:\n${header}`);
  const dyn = run('readelf', ['--dyn-syms', '-W', file]).stdout;
  if (!/\bFUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+napi_register_module_v1\b/.test(dyn)) fail(`${file} does not export napi_register_module_v1`);
  const got = embeddedSourceHash(file);
  if (got !== hash) fail(`${file} embeds source hash ${got}, expected ${hash}`);
  const needs = run('readelf', ['-V', '-W', file]).stdout;
  const max = (re) =>
    [...needs.matchAll(re)].map((m) => m[1].split('.').map(Number)).reduce((a, b) => (versionLe(a, b) ? b : a), [0]);
  const glibc = max(/Name: GLIBC_([\d.]+)/g);
  const glibcxx = max(/Name: GLIBCXX_([\d.]+)/g);
  if (!versionLe(glibc, MAX_GLIBC)) fail(`${file} needs GLIBC_${glibc.join('.')} (> ${MAX_GLIBC.join('.')}): it would not load on older distributions`);
  if (!versionLe(glibcxx, MAX_GLIBCXX)) fail(`${file} needs GLIBCXX_${glibcxx.join('.')} (> ${MAX_GLIBCXX.join('.')})`);
  const bytes = run('sh', ['-c', `LC_ALL=C grep -c -a -F -e '${root}' -e '${tmpdir()}/bitmar-prebuild-' '${file}' || true`]).stdout.trim();
  if (bytes !== '0') console.warn(`build-prebuilds: warning: ${file} still contains a build path`);
  const strings = run('sh', ['-c', `LC_ALL=C grep -a -o -E '(${spec.isas.join('|')})' '${file}' | sort -u`]).stdout.split('\n').filter(Boolean);
  for (const isa of spec.isas) if (!strings.includes(isa)) fail(`${file} has no ${isa} kernels`);
  if (arch === process.arch) {
    const probe = `const a = require(${JSON.stringify(file)}); const i = a.kernelInfo(); if (a.sourceHash !== ${JSON.stringify(hash)}) throw new Error('sourceHash ' + a.sourceHash); console.log(i.available.join(','))`;
    const r = run(process.execPath, ['-e', probe]);
    if (r.status !== 0) fail(`${file} does not load in this node: ${r.stderr.trim().split('\n')[0]}`);
    return `loads here, ISAs on this CPU: ${r.stdout.trim()}; needs GLIBC_${glibc.join('.')}, GLIBCXX_${glibcxx.join('.')}`;
  }
  return `needs GLIBC_${glibc.join('.')}, GLIBCXX_${glibcxx.join('.')}`;
}

function check(o) {
  const hash = nativeSourceHash(root);
  let stale = 0;
  for (const arch of o.arches) {
    const file = join(o.out, `linux-${arch}`, 'bitmar_native.node');
    const got = existsSync(file) ? embeddedSourceHash(file) : undefined;
    const state = got === undefined ? 'missing' : got === hash ? 'up to date' : `stale (built from ${got ?? 'unknown sources'})`;
    if (got !== hash) stale++;
    console.log(`${relative(root, file)}: ${state}`);
  }
  console.log(`native/ + binding.gyp hash: ${hash}`);
  if (stale > 0) {
    console.log('rebuild with: node tools/build-prebuilds.mjs');
    process.exit(1);
  }
}

function build(o) {
  let gyp;
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    fail('node-gyp is not installed (run `npm install` first)');
  }
  if (!existsSync(join(root, 'node_modules', 'node-addon-api'))) fail('node-addon-api is not installed (run `npm install` first)');
  const nodedir = nodeDir();
  const stage = mkdtempSync(join(tmpdir(), 'bitmar-prebuild-'));
  const results = [];
  try {
    cpSync(join(root, 'native'), join(stage, 'native'), { recursive: true });
    cpSync(join(root, 'binding.gyp'), join(stage, 'binding.gyp'));
    symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'));
    const hash = nativeSourceHash(stage);
    console.log(`build-prebuilds: sources ${hash}, node headers from ${nodedir ?? "node-gyp's cache"}, ${o.jobs} job(s)`);
    for (const arch of o.arches) {
      const spec = ARCHES[arch];
      const prefix = arch === process.arch ? '' : spec.cross;
      const cxx = `${prefix}g++`;
      if (!onPath(cxx)) fail(`${cxx} not found (Debian/Ubuntu: sudo apt-get install ${prefix ? spec.apt : 'build-essential'})`);
      const strip = onPath(`${prefix}strip`) ?? fail(`${prefix}strip not found`);
      const env = {
        ...process.env,
        CC_target: `${prefix}gcc`,
        CXX_target: cxx,
        LINK_target: cxx,
        AR_target: `${prefix}ar`,
        CC_host: 'gcc',
        CXX_host: 'g++',
        LINK_host: 'g++',
        AR_host: 'ar',
        // make passes these to sh, hence the escaped quotes: the macro is a string literal.
        CPPFLAGS: `-DBITMAR_SOURCE_HASH=\\"${hash}\\"`,
        CXXFLAGS: `-fvisibility=hidden -fvisibility-inlines-hidden -ffile-prefix-map=${stage}=. -ffile-prefix-map=${root}=.`,
        CFLAGS: `-fvisibility=hidden -ffile-prefix-map=${stage}=. -ffile-prefix-map=${root}=.`,
        LDFLAGS: '',
      };
      for (const k of ['CC', 'CXX', 'LINK', 'AR', 'npm_config_arch', 'npm_config_target_arch']) delete env[k];
      const args = [gyp, 'rebuild', `--arch=${arch}`, '-j', String(o.jobs), '--loglevel=warn'];
      if (nodedir) args.push(`--nodedir=${nodedir}`);
      console.log(`build-prebuilds: linux-${arch} with ${cxx}`);
      const r = spawnSync(process.execPath, args, { cwd: stage, env, stdio: 'inherit' });
      const built = join(stage, 'build', 'Release', 'bitmar_native.node');
      if (r.status !== 0 || !existsSync(built)) {
        fail(`node-gyp failed for linux-${arch}${nodedir ? '' : ' (no node headers: set npm_config_nodedir to a directory with include/node/node_api.h)'}`);
      }
      const stripped = join(stage, `linux-${arch}`, 'bitmar_native.node');
      mkdirSync(dirname(stripped));
      const s = run(strip, ['--strip-unneeded', '-o', stripped, built]);
      if (s.status !== 0) fail(`${strip}: ${s.stderr.trim()}`);
      const summary = verify(arch, stripped, hash);
      const dir = join(o.out, `linux-${arch}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'bitmar_native.node');
      const tmp = join(dir, `.bitmar_native.node.${process.pid}`);
      copyFileSync(stripped, tmp);
      renameSync(tmp, file);
      results.push(`${relative(root, file)}: ${statSync(file).size} bytes; ${summary}`);
    }
    const now = nativeSourceHash(root);
    for (const line of results) console.log(`build-prebuilds: ${line}`);
    if (now !== hash) fail(`native/ or binding.gyp changed while building (now ${now}): run it again`);
    console.log(`build-prebuilds: done; source hash ${hash}`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

try {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.check) check(opts);
  else build(opts);
} catch (e) {
  if (!(e instanceof BuildError)) throw e;
  console.error(`build-prebuilds: ${e.message}`);
  process.exitCode = 1;
}
