import assert from 'node:assert/strict';
import { OfflineQueue, type OutboundMessage } from '../../../src/sinks/mqtt/offline-queue.js';

const msg = (topic: string, qos: 0 | 1, bytes = 10): OutboundMessage => ({ topic, payload: Buffer.alloc(bytes), qos, retain: false });

describe('OfflineQueue', () => {
  it('keeps at most maxQoS0 QoS 0 messages, dropping the oldest', () => {
    const q = new OfflineQueue({ maxQoS0: 2 });
    const reasons = ['a', 'b', 'c', 'd'].flatMap((t) => q.push(msg(t, 0)).dropped);
    assert.deepEqual(reasons, ['offline_qos0_cap', 'offline_qos0_cap']);
    assert.deepEqual([q.shift()?.topic, q.shift()?.topic, q.shift()], ['c', 'd', undefined]);
  });

  it('keeps no QoS 0 at all with maxQoS0 0, and QoS 1 still', () => {
    const q = new OfflineQueue({ maxQoS0: 0 });
    assert.deepEqual(q.push(msg('a', 0)), { accepted: false, dropped: ['offline_qos0_cap'] });
    assert.deepEqual(q.push(msg('b', 1)), { accepted: true, dropped: [] });
    assert.equal(q.length, 1);
  });

  it('bounds messages and bytes, oldest out first, and refuses one message larger than maxBytes', () => {
    const q = new OfflineQueue({ maxMessages: 3, maxBytes: 100 });
    for (const t of ['a', 'b', 'c', 'd']) q.push(msg(t, 1, 10));
    assert.equal(q.length, 3);
    assert.equal(q.shift()?.topic, 'b');
    q.push(msg('big', 1, 90));
    assert.ok(q.bytes <= 100);
    assert.deepEqual(q.push(msg('huge', 1, 101)), { accepted: false, dropped: ['offline_queue_full'] });
  });

  it('puts a message back at the head unless full, with bytes and QoS 0 counts kept exact', () => {
    const q = new OfflineQueue({ maxMessages: 2 });
    q.push(msg('a', 1));
    assert.deepEqual(q.unshift(msg('z', 1)), []);
    assert.deepEqual(q.unshift(msg('y', 1)), ['offline_queue_full']);
    assert.equal(q.shift()?.topic, 'z');
    assert.equal(q.bytes, 10);
    q.clear();
    assert.equal(q.length + q.bytes, 0);
  });

  it('rejects negative caps', () => {
    assert.throws(() => new OfflineQueue({ maxMessages: -1 }), RangeError);
  });
});
