/** kill -9 during writes (short form: 5 kills; bench/memory.ts runs 50). */
import assert from 'node:assert/strict';
import { crashRounds } from './crash-harness.js';
import { removeTempDirs, tempDir } from './helpers.js';

describe('SqliteEpisodicStore under kill -9', function () {
  this.timeout(60_000);
  after(removeTempDirs);

  it('always reopens, loses nothing older than the sync interval, duplicates nothing', async () => {
    const syncIntervalMs = 200;
    const rounds = await crashRounds({ dir: tempDir('bitmar-crash-'), kills: 5, syncIntervalMs, slackMs: 400, seed: 6, maxRunMs: 900 });
    for (const r of rounds) {
      assert.ok(r.opened, r.problem ?? 'did not open');
      assert.equal(r.problem, null);
    }
    assert.ok(rounds.some((r) => r.phase === 'running' && r.persisted > 0), 'some rounds saved episodes');
  });
});
