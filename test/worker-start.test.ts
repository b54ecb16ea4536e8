/** src/worker-start.ts: every worker of the node starts with a small, fixed young generation. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startModuleWorker, YOUNG_GENERATION_MB } from '../src/worker-start.js';

describe('startModuleWorker', () => {
  it(`caps each worker's young generation at ${YOUNG_GENERATION_MB} MiB unless the caller sets its own`, async () => {
    const entryOwner = new URL('../src/sources/image/decode-pool.ts', import.meta.url).href; // decode-worker waits for jobs
    const w = startModuleWorker(entryOwner, './decode-worker', { name: 'test-young-gen' });
    const own = startModuleWorker(entryOwner, './decode-worker', { resourceLimits: { maxYoungGenerationSizeMb: 12 } });
    try {
      await Promise.all([once(w, 'online'), once(own, 'online')]);
      assert.equal(w.resourceLimits?.maxYoungGenerationSizeMb, YOUNG_GENERATION_MB);
      assert.equal(own.resourceLimits?.maxYoungGenerationSizeMb, 12);
    } finally {
      await Promise.all([w.terminate(), own.terminate()]);
    }
  });
});
