import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboundMessage } from '../../../src/sinks/mqtt/offline-queue.js';
import { FileOutgoingStore, MemoryOutgoingStore, type OutgoingStore, type OutgoingStoreOptions } from '../../../src/sinks/mqtt/outgoing-store.js';

const msg = (i: number, bytes = 10): OutboundMessage => ({
  topic: `bitmar/n/caption`,
  payload: Buffer.alloc(bytes, i),
  qos: 1,
  retain: false,
  properties: { contentType: 'application/json', correlationData: Buffer.from([i]), userProperties: { seq: String(i) } },
});

describe('outgoing store', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'bitmar-store-test-'));
    dirs.push(d);
    return d;
  };

  /** The contract every outgoing store meets. */
  function contract(name: string, open: (o?: OutgoingStoreOptions) => OutgoingStore): void {
    describe(`${name} (OutgoingStore contract)`, () => {
      it('returns what was stored, oldest first, until removed', () => {
        const s = open();
        const ids = [1, 2, 3].map((i) => s.append(msg(i)).id);
        assert.deepEqual([...s.ids()], ids);
        assert.deepEqual(s.read(ids[1]!), msg(2));
        s.remove(ids[0]!);
        assert.deepEqual([...s.ids()], ids.slice(1));
        assert.equal(s.size, 2);
        assert.equal(s.bytes, 20);
        s.remove(12345); // unknown ids are ignored
      });

      it('drops the oldest beyond maxMessages and maxBytes, and reports how many', () => {
        const s = open({ maxMessages: 2, maxBytes: 1000 });
        s.append(msg(1));
        s.append(msg(2));
        assert.equal(s.append(msg(3)).evicted, 1);
        assert.deepEqual([...s.ids()].map((id) => s.read(id)?.payload[0]), [2, 3]);
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
  contract('FileOutgoingStore', (o) => new FileOutgoingStore(tempDir(), { fsync: false, ...o }));

  describe('FileOutgoingStore across processes', () => {
    it('reopens what a previous process left, in order, and continues the ids', () => {
      const dir = tempDir();
      const a = new FileOutgoingStore(dir);
      a.append(msg(1));
      const second = a.append(msg(2)).id;
      a.append(msg(3));
      a.remove(second);
      const b = new FileOutgoingStore(dir);
      assert.deepEqual([...b.ids()].map((id) => b.read(id)?.payload[0]), [1, 3]);
      assert.deepEqual(b.read([...b.ids()][0]!)?.properties?.correlationData, Buffer.from([1]));
      assert.ok(b.append(msg(4)).id > Math.max(...[...b.ids()].slice(0, 2)));
    });

    it('removes half-written temp files and counts corrupt messages instead of failing', () => {
      const dir = tempDir();
      const a = new FileOutgoingStore(dir);
      a.append(msg(1));
      writeFileSync(join(dir, '.tmp-99'), '{"v":1,');
      writeFileSync(join(dir, '0000000000000050.msg'), 'not json');
      writeFileSync(join(dir, 'README'), 'ignored');
      const b = new FileOutgoingStore(dir);
      assert.equal(b.size, 1);
      assert.equal(b.corrupt, 1);
      assert.deepEqual(readdirSync(dir).sort(), ['0000000000000001.msg', 'README']);
    });
  });
});
