import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboundMessage } from '../../../src/sinks/mqtt/offline-queue.js';
import { FileOutgoingStore, MemoryOutgoingStore, type OutgoingStore, type OutgoingStoreListener, type OutgoingStoreOptions } from '../../../src/sinks/mqtt/outgoing-store.js';

const msg = (i: number, bytes = 10): OutboundMessage => ({
  topic: `bitmar/n/caption`,
  payload: Buffer.alloc(bytes, i),
  qos: 1,
  retain: false,
  properties: { contentType: 'application/json', correlationData: Buffer.from([i]), userProperties: { seq: String(i) } },
});

/** A rename that waits until `open()`: the test decides when a message becomes durable. */
function heldRename(): { rename: (from: string, to: string) => Promise<void>; open: () => void; renamed: string[] } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const renamed: string[] = [];
  return {
    rename: async (from, to) => {
      await gate;
      await rename(from, to);
      renamed.push(to);
    },
    open: () => release(),
    renamed,
  };
}

/** Records what a store tells its owner. */
function recording(): OutgoingStoreListener & { readonly log: string[]; readonly failed: OutboundMessage[] } {
  const log: string[] = [];
  const failed: OutboundMessage[] = [];
  return {
    log,
    failed,
    ready: (id) => log.push(`ready ${id}`),
    writeFailed: (id, m, e) => {
      log.push(`failed ${id} ${(e as NodeJS.ErrnoException).code}`);
      failed.push(m);
    },
    corrupt: (id) => log.push(`corrupt ${id}`),
  };
}

const msgFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.msg')).sort();

describe('outgoing store', () => {
  const dirs: string[] = [];
  const stores: OutgoingStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.settled();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'bitmar-store-test-'));
    dirs.push(d);
    return d;
  };
  const fileStore = (dir: string, o: OutgoingStoreOptions = {}): FileOutgoingStore => {
    const s = new FileOutgoingStore(dir, o);
    stores.push(s);
    return s;
  };

  /** The contract every outgoing store meets. */
  function contract(name: string, open: (o?: OutgoingStoreOptions) => OutgoingStore): void {
    describe(`${name} (OutgoingStore contract)`, () => {
      it('returns what was stored, oldest first, until removed', async () => {
        const s = open();
        const ids = [1, 2, 3].map((i) => s.append(msg(i)).id);
        assert.deepEqual([...s.ids()], ids);
        assert.deepEqual(s.read(ids[1]!), msg(2), 'in memory at once, written or not');
        await s.settled();
        assert.ok(ids.every((id) => s.persisted(id)));
        assert.deepEqual(await s.load(ids[2]!), msg(3));
        s.remove(ids[0]!);
        assert.deepEqual([...s.ids()], ids.slice(1));
        assert.equal(s.size, 2);
        assert.equal(s.bytes, 20);
        assert.equal(s.persisted(ids[0]!), false);
        s.remove(12345); // unknown ids are ignored
        await s.settled();
      });

      it('drops the oldest beyond maxMessages and maxBytes, and reports how many', async () => {
        const s = open({ maxMessages: 2, maxBytes: 1000 });
        s.append(msg(1));
        s.append(msg(2));
        assert.equal(s.append(msg(3)).evicted, 1);
        await s.settled();
        assert.deepEqual((await Promise.all([...s.ids()].map((id) => s.load(id)))).map((m) => m?.payload[0]), [2, 3]);
        const b = open({ maxMessages: 100, maxBytes: 25 });
        b.append(msg(1));
        b.append(msg(2));
        assert.equal(b.append(msg(3)).evicted, 1);
        assert.ok(b.bytes <= 25);
        assert.throws(() => b.append(msg(4, 26)), RangeError);
      });
    });
  }

  contract('MemoryOutgoingStore', (o) => new MemoryOutgoingStore(o ?? {}));
  contract('FileOutgoingStore', (o) => fileStore(tempDir(), { fsync: false, ...o }));

  it('MemoryOutgoingStore: persisted at once', () => {
    const s = new MemoryOutgoingStore({});
    const { id } = s.append(msg(1));
    assert.equal(s.persisted(id), true);
    assert.deepEqual(s.read(id), msg(1));
    assert.deepEqual(s.read(id), msg(1), 'still in memory: it is the only copy');
  });

  describe('FileOutgoingStore: asynchronous file work', () => {
    it('writes in the background; a message is persisted (ready) only once its file is in place', async () => {
      const dir = tempDir();
      const held = heldRename();
      const s = fileStore(dir, { io: { rename: held.rename } });
      const l = recording();
      s.listener = l;
      const { id } = s.append(msg(1));
      assert.equal(s.size, 1, 'bookkeeping is synchronous');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.persisted(id), false);
      assert.deepEqual(msgFiles(dir), [], 'not in place before the rename');
      assert.deepEqual(l.log, []);
      held.open();
      await s.settled();
      assert.equal(s.persisted(id), true);
      assert.deepEqual(msgFiles(dir), ['0000000000000001.msg']);
      assert.deepEqual(l.log, [`ready ${id}`]);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), []);
    });

    it('flushes the directory after renames when fsync is on, before the message is ready; not at all with fsync off', async () => {
      const events: string[] = [];
      const io = {
        rename: async (from: string, to: string) => {
          await rename(from, to);
          events.push('rename');
        },
        syncDir: async (d: string) => {
          assert.ok(existsSync(d));
          events.push('syncDir');
        },
      };
      const s = fileStore(tempDir(), { io });
      s.listener = { ...recording(), ready: () => events.push('ready') };
      s.append(msg(1));
      await s.settled();
      assert.deepEqual(events, ['rename', 'syncDir', 'ready']);
      events.length = 0;
      const off = fileStore(tempDir(), { fsync: false, io });
      off.append(msg(2));
      await off.settled();
      assert.deepEqual(events, ['rename']);
    });

    it('a remove before the write lands leaves no file behind (write in progress, or not yet begun)', async () => {
      const dir = tempDir();
      const held = heldRename();
      const s = fileStore(dir, { io: { rename: held.rename } });
      const l = recording();
      s.listener = l;
      const a = s.append(msg(1)).id;
      await new Promise((r) => setTimeout(r, 50)); // a's write is under way, held at its rename
      const b = s.append(msg(2)).id; // queued behind a's batch
      const c = s.append(msg(3)).id;
      s.remove(a); // acknowledged while being written: erased after the write
      s.remove(b); // removed before its write began: never written
      held.open();
      await s.settled();
      assert.deepEqual([...s.ids()], [c]);
      assert.deepEqual(msgFiles(dir), ['0000000000000003.msg']);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), []);
      assert.equal(held.renamed.length, 2, 'b was never written');
      assert.deepEqual(l.log, [`ready ${c}`]);
    });

    it('a write the disk refuses hands the message back, forgets it, and keeps working', async () => {
      const dir = tempDir();
      const s = fileStore(dir, { fsync: false });
      const l = recording();
      s.listener = l;
      rmSync(dir, { recursive: true }); // the directory vanished (unmounted card, rm -rf)
      const { id } = s.append(msg(1));
      assert.equal(s.size, 1);
      await s.settled();
      assert.deepEqual(l.log, [`failed ${id} ENOENT`]);
      assert.deepEqual(l.failed, [msg(1)]);
      assert.equal(s.size, 0);
      assert.equal(s.bytes, 0);
      assert.equal(s.persisted(id), false);
      // The directory is back: the next message is stored again.
      mkdirSync(dir);
      const next = s.append(msg(2)).id;
      await s.settled();
      assert.equal(s.persisted(next), true);
      assert.deepEqual(msgFiles(dir), [`${String(next).padStart(16, '0')}.msg`]);
    });

    it('bounds what stays in memory: written messages beyond maxMemoryBytes are read back from disk, in order', async () => {
      const dir = tempDir();
      // Reads of later messages finish first: the store must not mix up what it reads back.
      let reads = 0;
      const s = fileStore(dir, {
        fsync: false,
        maxMemoryBytes: 25,
        io: {
          readFile: async (path) => {
            reads++;
            const id = Number.parseInt(path.slice(-20, -4), 10);
            await new Promise((r) => setTimeout(r, 60 - id * 5));
            return readFile(path, 'utf8');
          },
        },
      });
      const l = recording();
      s.listener = l;
      const ids = [1, 2, 3, 4, 5].map((i) => s.append(msg(i)).id);
      await s.settled();
      assert.deepEqual(l.log, ids.map((id) => `ready ${id}`));
      assert.deepEqual(s.read(ids[0]!), msg(1), 'kept in memory (within 25 bytes)');
      assert.deepEqual(s.read(ids[1]!), msg(2));
      assert.equal(s.read(ids[0]!), undefined, 'dropped from memory by its first read: a resend reads the file');
      assert.equal(s.read(ids[2]!), undefined, 'beyond maxMemoryBytes: on disk only');
      l.log.length = 0;
      await s.settled();
      // The one asked for, and the ones after it (read ahead: a resend sends them next).
      assert.deepEqual(l.log.sort(), ids.map((id) => `ready ${id}`));
      assert.deepEqual(
        ids.map((id) => s.read(id)?.payload[0]),
        [1, 2, 3, 4, 5],
      );
      assert.equal(reads, 5);
    });

    it('a message unreadable when read back is removed and reported as corrupt', async () => {
      const dir = tempDir();
      const s = fileStore(dir, { fsync: false, maxMemoryBytes: 1 });
      const l = recording();
      s.listener = l;
      const { id } = s.append(msg(1));
      await s.settled();
      writeFileSync(join(dir, msgFiles(dir)[0]!), 'garbage');
      assert.equal(s.read(id), undefined);
      await s.settled();
      assert.deepEqual(l.log, [`ready ${id}`, `corrupt ${id}`]);
      assert.equal(s.size, 0);
      assert.equal(s.corrupt, 1);
      assert.deepEqual(msgFiles(dir), []);
    });
  });

  describe('FileOutgoingStore across processes', () => {
    it('reopens what a previous process left (settled, never closed: as after kill -9), in order, and continues the ids', async () => {
      const dir = tempDir();
      const a = fileStore(dir);
      a.append(msg(1));
      const second = a.append(msg(2)).id;
      a.append(msg(3));
      a.remove(second);
      await a.settled();
      const b = fileStore(dir);
      assert.equal(b.size, 2);
      assert.ok([...b.ids()].every((id) => b.persisted(id)));
      assert.deepEqual((await Promise.all([...b.ids()].map((id) => b.load(id)))).map((m) => m?.payload[0]), [1, 3]);
      assert.deepEqual((await b.load([...b.ids()][0]!))?.properties?.correlationData, Buffer.from([1]));
      assert.ok(b.append(msg(4)).id > Math.max(...[...b.ids()].slice(0, 2)));
    });

    it('finds every appended message once settled, byte for byte', async () => {
      const dir = tempDir();
      const a = fileStore(dir);
      for (let i = 1; i <= 20; i++) a.append(msg(i, 100));
      await a.settled();
      assert.ok(!existsSync(join(dir, '.tmp-20')));
      const b = fileStore(dir);
      assert.equal(b.size, 20);
      assert.equal(b.bytes, 2000);
      const got = await Promise.all([...b.ids()].map((id) => b.load(id)));
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => msg(i + 1, 100)));
    });

    it('removes half-written temp files and counts corrupt messages instead of failing', async () => {
      const dir = tempDir();
      const a = fileStore(dir);
      a.append(msg(1));
      await a.settled();
      writeFileSync(join(dir, '.tmp-99'), '{"v":1,');
      writeFileSync(join(dir, '0000000000000050.msg'), 'not json');
      writeFileSync(join(dir, 'README'), 'ignored');
      const b = fileStore(dir);
      assert.equal(b.size, 1);
      assert.equal(b.corrupt, 1);
      assert.deepEqual(readdirSync(dir).sort(), ['0000000000000001.msg', 'README']);
    });
  });
});
