#!/usr/bin/env node
// Builds the native addon with node-gyp. A failed build never fails `npm install`:
// the node then runs on the TypeScript kernels and says so once at start.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.BITMAR_SKIP_NATIVE === '1') {
  console.log('bitmar-node: BITMAR_SKIP_NATIVE=1, skipping the native addon (TypeScript kernels will be used)');
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
const res = args
  ? spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  : { status: 1 };
if (res.status !== 0 || !existsSync(join(root, 'build', 'Release', 'bitmar_native.node'))) {
  console.log(
    'bitmar-node: the native addon could not be built; the node will run on the slower TypeScript kernels. ' +
      'To fix: install a C++17 compiler, make and python3 (Debian/Ubuntu: sudo apt-get install build-essential python3), then run `npm rebuild bitmar-node` (or `node tools/build-addon.mjs` in a checkout).',
  );
}
process.exit(0);
