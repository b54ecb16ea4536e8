/** `bitmar-node memory …` (src/cli/memory.ts) with an injected embedder in place of the model. */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { memoryDbPath, registerMemoryCommand, type Embedders } from '../../src/cli/memory.js';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { removeTempDirs, tempDir } from './helpers.js';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** A toy embedder: one axis per known word. */
const WORDS = ['red', 'blue', 'circle', 'square'];
const embed = (text: string): Float32Array => Float32Array.from(WORDS, (w) => (text.includes(w) ? 1 : 0));

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: string; err: string; code: number; embedded: string[] }> {
  const out = new Sink();
  const err = new Sink();
  let code = 0;
  const embedded: string[] = [];
  const embedders = async (): Promise<Embedders> => ({
    embedText: async (t) => {
      embedded.push(t);
      return embed(t);
    },
  });
  const program = new Command('bitmar-node').exitOverride();
  registerMemoryCommand(program, { out, err, env, embedders, setExitCode: (c) => (code = c), defaultStateDir: () => '/nonexistent-default' });
  await program.parseAsync(['node', 'bitmar-node', ...args]);
  return { out: out.text, err: err.text, code, embedded };
}

describe('bitmar-node memory (CLI)', () => {
  after(removeTempDirs);

  it('resolves the database: --db, else --state-dir, else $BITMAR_STATE_DIR, else the default', () => {
    assert.equal(memoryDbPath({ db: '/x/y.sqlite' }), '/x/y.sqlite');
    assert.equal(memoryDbPath({ stateDir: '/s' }, { env: { BITMAR_STATE_DIR: '/e' } }), '/s/memory.sqlite');
    assert.equal(memoryDbPath({}, { env: { BITMAR_STATE_DIR: '/e' } }), '/e/memory.sqlite');
    assert.equal(memoryDbPath({}, { env: {}, defaultStateDir: () => '/d' }), '/d/memory.sqlite');
  });

  it('stats, query, export, import and clear on a real store', async () => {
    const dir = tempDir();
    const store = SqliteEpisodicStore.open({ path: join(dir, 'memory.sqlite'), width: 4, slots: 2, policy: 'lru' });
    store.write({ vector: embed('red circle'), caption: 'a red circle', source: '/cam', pose: { x: 1, y: 2, z: 0, qx: 0, qy: 0, qz: 0, qw: 1, frame: 'map' } });
    store.write({ vector: embed('blue square'), caption: 'a blue square', source: '/cam' });
    store.write({ vector: embed('blue circle'), caption: 'a blue circle', source: '/cam' });
    store.close();

    const stats = await cli(['memory', 'stats', '--json', '--state-dir', dir]);
    const s = JSON.parse(stats.out) as Record<string, unknown>;
    assert.deepEqual([s['slots'], s['used'], s['archiveSize'], s['path']], [2, 2, 1, join(dir, 'memory.sqlite')]);
    assert.match((await cli(['memory', 'stats'], { BITMAR_STATE_DIR: dir })).out, /2 \/ 2 used/);

    const q = await cli(['memory', 'query', 'red', 'circle', '--k', '2', '--json', '--db', join(dir, 'memory.sqlite')]);
    assert.deepEqual(q.embedded, ['red circle']);
    const hits = JSON.parse(q.out) as { caption: string; score: number; archiveId?: number; pose: unknown }[];
    assert.equal(hits.length, 2);
    assert.equal(hits[0]!.caption, 'a red circle');
    assert.ok(hits[0]!.archiveId !== undefined, 'found in the archive');
    assert.ok(Math.abs(hits[0]!.score - 1) < 1e-6);
    assert.match((await cli(['memory', 'query', 'red', '--state-dir', dir])).out, /a red circle.*at \(1\.00, 2\.00, 0\.00\) map/);
    const liveOnly = JSON.parse((await cli(['memory', 'query', 'red', '--live-only', '--json', '--state-dir', dir])).out) as { slot?: number }[];
    assert.ok(liveOnly.every((h) => h.slot !== undefined));

    const file = join(dir, 'export.jsonl');
    const ex = await cli(['memory', 'export', file, '--state-dir', dir]);
    assert.match(ex.out, /exported 2 live and 1 archived/);

    const other = tempDir();
    const im = await cli(['memory', 'import', file, '--state-dir', other]);
    assert.equal(im.code, 0, im.err);
    assert.match(im.out, /imported 2 live and 1 archived/);
    const s2 = JSON.parse((await cli(['memory', 'stats', '--json', '--state-dir', other])).out) as Record<string, unknown>;
    assert.deepEqual([s2['slots'], s2['used'], s2['archiveSize']], [2, 2, 1]);

    const refused = await cli(['memory', 'clear', '--state-dir', dir]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /--yes/);
    assert.equal((await cli(['memory', 'clear', '--yes', '--keep-archive', '--state-dir', dir])).code, 0);
    const s3 = JSON.parse((await cli(['memory', 'stats', '--json', '--state-dir', dir])).out) as Record<string, unknown>;
    assert.deepEqual([s3['used'], s3['archiveSize']], [0, 1]);
    await cli(['memory', 'clear', '--yes', '--state-dir', dir]);
    assert.equal((JSON.parse((await cli(['memory', 'stats', '--json', '--state-dir', dir])).out) as Record<string, unknown>)['archiveSize'], 0);
  });

  it('reports a missing store without creating one, and errors with a code and exit status 1', async () => {
    const dir = join(tempDir(), 'none');
    const st = await cli(['memory', 'stats', '--json', '--state-dir', dir]);
    assert.deepEqual(JSON.parse(st.out), { path: join(dir, 'memory.sqlite'), exists: false, slots: 0, used: 0, archiveSize: 0 });
    assert.equal(existsSync(dir), false);
    const q = await cli(['memory', 'query', 'red', '--state-dir', dir]);
    assert.equal(q.code, 1);
    assert.match(q.err, /BITMAR_ERR_MEMORY_OPEN/);
    const junk = join(tempDir(), 'junk.jsonl');
    writeFileSync(junk, 'not an export');
    const im = await cli(['memory', 'import', junk, '--state-dir', tempDir()]);
    assert.equal(im.code, 1);
    assert.match(im.err, /BITMAR_ERR_MEMORY_IMPORT/);
    const corrupt = join(tempDir(), 'memory.sqlite');
    writeFileSync(corrupt, 'garbage garbage garbage garbage');
    const bad = await cli(['memory', 'stats', '--db', corrupt]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /corrupt or not a database/);
  });
});
