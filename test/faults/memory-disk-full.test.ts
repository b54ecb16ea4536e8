/**
 * Fault: the disk under the memory store fills up while the node runs, then frees up again.
 * SQLite's own SQLITE_FULL is produced by pinning max_page_count (fixtures/sqlite-full.ts) while a
 * marker file exists. The node must keep captioning (the memory keeps working in RAM), say what is
 * wrong, write everything once there is space again, and stop cleanly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEMORY_DB_FILE } from '../../src/memory/store.js';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { killNow, spawnFaultyNode, terminalCaptions } from './fault-node.js';

const finals = (stdout: string): number => terminalCaptions(stdout).filter((c) => !c.cancelled).length;

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('faults: memory store on a full disk', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'bitmar-fault-disk-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps captioning with the memory in RAM, reports SQLITE_FULL, saves it all once there is space, exits 0', async () => {
    const config = join(dir, 'bitmar.yaml');
    // fifo: every episode takes a new slot, so every sync must grow the database.
    writeFileSync(config, 'memory:\n  syncIntervalMs: 200\n  policy: fifo\n');
    const state = join(dir, 'state');
    const marker = join(dir, 'disk-full');
    const node = spawnFaultyNode(['run', '--config', config, '--no-mqtt', '--metrics-port', '0', '--state-dir', state, '--fps', '10', '--duration', '120'], {
      BITMAR_FAULT_SQLITE_FULL: marker,
    });
    try {
      await until('2 captions', () => finals(node.stdout()) >= 2, 150_000);
      writeFileSync(marker, '');
      await until('the SQLITE_FULL warning', () => /memory store: could not save the memory .*SQLITE_FULL/.test(node.stderr()), 30_000);
      const atFault = finals(node.stdout());
      const fullSince = Date.now();
      await until('3 s and 3 more captions on the full disk', () => Date.now() - fullSince >= 3000 && finals(node.stdout()) >= atFault + 3, 60_000);
      assert.equal(node.child.exitCode, null, 'the node stopped on a full disk');
      const warnings = (node.stderr().match(/could not save the memory/g) ?? []).length;

      unlinkSync(marker);
      await until('space again', () => /fault: disk has space again/.test(node.stderr()), 10_000);
      await new Promise((r) => setTimeout(r, 1000)); // a few sync intervals
      node.child.kill('SIGINT');
      const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.equal(code, 0, `exit ${String(code)}; stderr: ${node.stderr().slice(-2000)}`);

      const captions = finals(node.stdout());
      const store = SqliteEpisodicStore.open({ path: join(state, MEMORY_DB_FILE), readOnly: true });
      try {
        // Each final caption wrote at least one episode, each into a new slot (fifo, 512 slots).
        assert.ok(store.stats().used >= captions, `memory holds ${store.stats().used} episodes; ${captions} captions were made`);
      } finally {
        store.close();
      }
      process.stdout.write(`      disk full: ${captions} captions, ${warnings} warnings while full (one per failed sync)\n`);
    } finally {
      killNow(node);
      try {
        unlinkSync(marker);
      } catch {
        // already gone
      }
    }
  });
});
