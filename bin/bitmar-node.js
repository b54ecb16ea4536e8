#!/usr/bin/env node
// The `bitmar-node` command. The code lives in dist/ (compiled by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('bitmar-node: dist/ is missing; run `npm install` (or `npm run build`) in the package directory first.');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
