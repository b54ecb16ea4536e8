#!/usr/bin/env node
// Builds the native addon with node-gyp. A failed build never fails `npm install`: the node then
// loads the prebuilt addon for this platform when the package has one (prebuilds/, built by
// tools/build-prebuilds.mjs; src/native-addon.ts picks), else runs on the TypeScript kernels and
// says so once at start.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Loaded defensively: a failed build must never fail `npm install`, not even without this file.
const sourceHash = await import('./source-hash.mjs').catch(() => null);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const platform = `${process.platform}-${process.arch}`;
const prebuild = join(root, 'prebuilds', platform, 'bitmar_native.node');

/** One clause about the prebuilt addon for this platform: whether there is one and whether it matches native/. */
function prebuildState() {
  if (!existsSync(prebuild)) return { usable: false, text: `there is no prebuilt addon for ${platform}` };
  let hash = null;
  let embedded = null;
  try {
    hash = sourceHash.nativeSourceHash(root);
    embedded = sourceHash.embeddedSourceHash(prebuild);
  } catch {
    // native/ unreadable or tools/source-hash.mjs missing: say nothing about staleness
  }
  if (hash !== null && embedded === hash) {
    return { usable: true, text: `the prebuilt addon prebuilds/${platform}/bitmar_native.node matches these sources and will be used (native speed)` };
  }
  return {
    usable: true,
    text:
      hash === null
        ? `the prebuilt addon prebuilds/${platform}/bitmar_native.node will be used`
        : `the prebuilt addon prebuilds/${platform}/bitmar_native.node will be used, but it was built from other native/ sources (stale: rebuild with \`node tools/build-prebuilds.mjs\`)`,
  };
}

if (process.env.BITMAR_SKIP_NATIVE === '1') {
  const p = prebuildState();
  console.log(`bitmar-node: BITMAR_SKIP_NATIVE=1, not building the native addon; ${p.usable ? p.text : `${p.text}, so the TypeScript kernels will be used`}`);
  process.exit(0);
}
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = null;
}
const args = gyp ? [gyp, 'rebuild', '-j', 'max'] : null;
// Node's headers: npm passes npm_config_nodedir when configured; else this node's own include/node
// when it has one (Debian/NodeSource packages, nodejs.org tarballs, nvm), so no download is needed.
const prefix = dirname(dirname(process.execPath));
if (args && !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
// The source hash goes into the binary (native/addon.cc exports it as `sourceHash`); make passes
// CPPFLAGS to sh, hence the escaped quotes.
let env = process.env;
try {
  env = { ...process.env, CPPFLAGS: `${process.env.CPPFLAGS ?? ''} -DBITMAR_SOURCE_HASH=\\"${sourceHash.nativeSourceHash(root)}\\"`.trim() };
} catch {
  // native/ unreadable: node-gyp will say why
}
const res = args ? spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env }) : { status: 1 };
if (res.status !== 0 || !existsSync(join(root, 'build', 'Release', 'bitmar_native.node'))) {
  const p = prebuildState();
  const fix =
    'install a C++17 compiler, make and python3 (Debian/Ubuntu: sudo apt-get install build-essential python3), then run `npm rebuild bitmar-node` (or `node tools/build-addon.mjs` in a checkout)';
  console.log(
    p.usable
      ? `bitmar-node: the native addon could not be built from source; ${p.text}. To build from source instead: ${fix}.`
      : `bitmar-node: the native addon could not be built and ${p.text}; the node will run on the slower TypeScript kernels. To fix: ${fix}.`,
  );
}
process.exit(0);
