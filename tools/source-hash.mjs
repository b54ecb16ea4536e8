// The native addon's source hash: sha256 over every file under native/ plus binding.gyp (sorted
// relative paths, each with its size and bytes; dot-files and editor backups skipped, since npm does
// not pack them). Builds embed it as the string "bitmar-source-hash=<64 hex>" (native/addon.cc,
// exported as `sourceHash`), so a prebuilt binary built from other sources can be told apart without
// loading it. Used by tools/build-addon.mjs (at install: shipped in the package),
// tools/build-prebuilds.mjs and test/native/prebuilds.test.ts.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The marker that precedes the hash in a built addon's bytes. */
export const SOURCE_HASH_TAG = 'bitmar-source-hash=';

function skipped(name) {
  return name.startsWith('.') || name.endsWith('~') || name.endsWith('.orig') || name.endsWith('.rej');
}

function listFiles(root, rel, out) {
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    if (skipped(e.name)) continue;
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) listFiles(root, r, out);
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** The files the hash covers, as sorted '/'-separated paths relative to `root`. */
export function nativeSourceFiles(root) {
  return [...listFiles(root, 'native', []), 'binding.gyp'].sort();
}

/** sha256 (64 lowercase hex) of native/ and binding.gyp under the package root `root`. */
export function nativeSourceHash(root) {
  const h = createHash('sha256');
  for (const rel of nativeSourceFiles(root)) {
    const bytes = readFileSync(join(root, rel));
    h.update(`${rel}\0${bytes.length}\0`);
    h.update(bytes);
  }
  return h.digest('hex');
}

/**
 * The hash embedded in a built addon (read from its bytes, any architecture), or null when the file
 * has none (built without it, e.g. by a bare `node-gyp rebuild`) or cannot be read.
 */
export function embeddedSourceHash(file) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch {
    return null;
  }
  const tag = Buffer.from(SOURCE_HASH_TAG, 'latin1');
  for (let i = bytes.indexOf(tag); i >= 0; i = bytes.indexOf(tag, i + 1)) {
    const hex = bytes.subarray(i + tag.length, i + tag.length + 65).toString('latin1');
    if (/^[0-9a-f]{64}\0$/.test(hex)) return hex.slice(0, 64);
  }
  return null;
}
