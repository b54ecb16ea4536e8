// CI guard on the instructions per MAC of the AVX2 GEMV (bench/callgrind.ts): callgrind counts are
// exact and repeatable, so a regression in the kernel's instruction stream fails here even on a noisy
// machine. Skipped with a message where valgrind or a C++ compiler is absent (.ci/run installs valgrind).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { callgrindUnavailable, measureCallgrind } from '../../bench/callgrind.js';

interface Thresholds {
  readonly isa: string;
  readonly kernel: Readonly<Record<string, number>>;
}

const thresholds = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'callgrind-thresholds.json'), 'utf8')) as Thresholds;

describe('callgrind guard: AVX2 GEMV instructions per MAC', function () {
  this.timeout(300_000);

  it('stays at or under the committed ceilings (test/bench/callgrind-thresholds.json) and the 0.20 target', function () {
    const why = callgrindUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    const shapes = Object.keys(thresholds.kernel).map((s) => s.split('x').map(Number) as [number, number]);
    const rows = measureCallgrind(shapes, thresholds.isa);
    for (const r of rows) {
      const ceiling = thresholds.kernel[r.shape]!;
      console.log(`      ${r.shape}: ${r.kernel.toFixed(4)} instructions/MAC (ceiling ${ceiling})`);
      assert.ok(r.kernel <= ceiling, `${r.shape}: ${r.kernel.toFixed(4)} instructions per MAC > committed ceiling ${ceiling}`);
    }
    const generic = rows.filter((r) => r.shape === '1024x1024' || r.shape === '512x512');
    for (const r of generic) assert.ok(r.kernel <= 0.2, `${r.shape}: ${r.kernel.toFixed(4)} > the 0.20 target`);
  });
});
