/** MqttTransport behaviour that needs no broker, or only the embedded one it is tested against. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isBitmarError } from '../../../src/errors.js';
import { startEmbeddedBroker } from '../../../src/sinks/mqtt/embedded-broker.js';
import { silentLogger, type MqttLogger } from '../../../src/sinks/mqtt/logger.js';
import { MqttTransport, type MqttTransportOptions } from '../../../src/sinks/mqtt/transport.js';
import { freePort } from '../../mqtt/helpers/brokers.js';
import { connectRecorder, json, sleep, until, type Recorder } from '../../mqtt/helpers/clients.js';

describe('MqttTransport', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const make = (over: Partial<MqttTransportOptions> & { url: string }): MqttTransport => {
    const t = new MqttTransport({ nodeId: 'unit', logger: silentLogger, backoff: { initialMs: 20, maxMs: 80 }, connectTimeoutMs: 2000, ...over });
    cleanups.push(() => t.destroy());
    return t;
  };
  const nowhere = async (): Promise<string> => `mqtt://127.0.0.1:${await freePort()}`;

  it('rejects invalid options with BITMAR_ERR_CONFIG_INVALID and unreadable TLS files with BITMAR_ERR_MQTT_CONNECT', () => {
    assert.throws(() => new MqttTransport({ url: 'http://x' }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
    assert.throws(() => new MqttTransport({ url: 'mqtt://x', prefix: 'a/b' }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
    assert.throws(() => new MqttTransport({ url: 'mqtt://x', maxPayloadBytes: 0 }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
    assert.throws(
      () => new MqttTransport({ url: 'mqtts://x', tls: { ca: '/nonexistent/ca.pem' } }),
      (e: unknown) => isBitmarError(e, 'BITMAR_ERR_MQTT_CONNECT') && /ca file \/nonexistent\/ca.pem/.test(e.message),
    );
    const t = new MqttTransport({ url: 'mqtt://x', nodeId: 'Cam.One', logger: silentLogger });
    assert.equal(t.topic('caption'), 'bitmar/cam-one/caption');
    assert.match(t.clientId, /^bitmar-cam-one-[0-9a-f]{6}$/);
  });

  it('while offline keeps only a few QoS 0 messages, bounds QoS 1, and counts every drop', async () => {
    const t = make({ url: await nowhere(), offlineQueue: { maxQoS0: 4, maxMessages: 10 } });
    t.start();
    for (let i = 0; i < 100; i++) t.publish('bitmar/unit/caption/partial', `{"i":${i}}`, { qos: 0 });
    for (let i = 0; i < 8; i++) t.publish('bitmar/unit/memory/event', `{"i":${i}}`, { qos: 1 });
    assert.equal(t.publish('bitmar/unit/metrics', Buffer.alloc(11 * 1024 * 1024), { qos: 0 }), false);
    const s = t.stats();
    assert.equal(s.dropped.offline_qos0_cap, 96);
    assert.equal(s.dropped.offline_queue_full, 2, 'two QoS 0 pushed out by QoS 1 beyond maxMessages');
    assert.equal(s.dropped.too_large, 1);
    assert.equal(s.queued.offline, 10);
    assert.equal(s.connected, false);
  });

  it('retries with backoff, reports each distinct connection error once in the log, and flushes the queue on connect', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const logger: MqttLogger = { info: () => {}, warn: (_o, m) => lines.push(m), error: (_o, m) => lines.push(m) };
    const t = make({ url: `mqtt://127.0.0.1:${port}`, logger, offlineQueue: { maxQoS0: 2 } });
    const errors: string[] = [];
    t.on('connectionError', (e) => errors.push(e.code));
    t.start();
    for (let i = 0; i < 5; i++) t.publish('bitmar/unit/memory/event', `{"i":${i}}`, { qos: 1 });
    for (let i = 0; i < 5; i++) t.publish('bitmar/unit/caption/partial', `{"p":${i}}`, { qos: 0 });
    await until(() => errors.length >= 3, 3000, 'three connection attempts');
    assert.ok(errors.every((c) => c === 'BITMAR_ERR_MQTT_CONNECT'));
    assert.equal(lines.filter((l) => l.startsWith('Cannot connect')).length, 1, lines.join('\n'));
    const broker = await startEmbeddedBroker({ port, fallbackToFreePort: false });
    cleanups.push(() => broker.close());
    const rec = await connectRecorder(broker.url, ['bitmar/unit/#']);
    cleanups.push(() => rec.end());
    await t.whenConnected(3000);
    const got = await rec.waitForCount((m) => m.topic !== 'bitmar/unit/status', 7);
    // QoS 1 in order; only the newest QoS 0 survived (brokers may interleave the two QoS levels).
    assert.deepEqual(got.filter((m) => m.packet.qos === 1).map((m) => json(m).i), [0, 1, 2, 3, 4]);
    assert.deepEqual(got.filter((m) => m.packet.qos === 0).map((m) => json(m).p), [3, 4]);
    assert.equal(t.protocolVersion, 4, 'fell back to 3.1.1 on aedes');
    assert.ok(lines.some((l) => /refused MQTT 5/.test(l)));
  });

  it('sends a caption that does not fit the durable store without it, and counts store_error', async () => {
    const t = make({ url: await nowhere(), store: { maxBytes: 100 } });
    assert.equal(t.publishDurable('bitmar/unit/caption', Buffer.alloc(200, 0x20)), true);
    assert.equal(t.stats().dropped.store_error, 1);
    assert.deepEqual(t.stats().queued, { offline: 1, offlineBytes: 200, durable: 0, durableBytes: 0 });
    const file = join(mkdtempSync(join(tmpdir(), 'bitmar-t-')), 'a-file');
    writeFileSync(file, '');
    cleanups.push(() => rmSync(dirname(file), { recursive: true, force: true }));
    assert.throws(() => make({ url: 'mqtt://x', store: { dir: join(file, 'store') } }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID') && /cannot be used/.test(e.message));
  });

  describe('durable store: file work off the event loop', () => {
    const tempDir = (): string => {
      const d = mkdtempSync(join(tmpdir(), 'bitmar-t-store-'));
      cleanups.push(() => rmSync(d, { recursive: true, force: true }));
      return d;
    };
    const broker = async (port = 0): Promise<string> => {
      const b = await startEmbeddedBroker({ port, fallbackToFreePort: false });
      cleanups.push(() => b.close());
      return b.url;
    };
    const recorder = async (url: string): Promise<Recorder> => {
      const r = await connectRecorder(url, ['bitmar/unit/caption']);
      cleanups.push(() => r.end());
      return r;
    };
    const captions = (r: Recorder): number[] => r.messages.filter((m) => m.topic === 'bitmar/unit/caption').map((m) => json(m).i as number);
    /** Waits for the store's file work before the directory is removed. */
    const settleLater = (t: MqttTransport): void => {
      cleanups.push(() => t.settled());
    };

    it('sends a durable caption only once its file is in place', async () => {
      const url = await broker();
      const rec = await recorder(url);
      const dir = tempDir();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let renamed = false;
      const t = make({
        url,
        store: {
          dir,
          io: {
            rename: async (from, to) => {
              await gate;
              await rename(from, to);
              renamed = true;
            },
          },
        },
      });
      settleLater(t);
      cleanups.push(() => release()); // runs before settleLater's wait, should an assertion fail first
      t.start();
      await t.whenConnected(3000);
      let sentBeforeFile = false;
      rec.client.on('message', () => (sentBeforeFile ||= !renamed));
      assert.equal(t.publishDurable('bitmar/unit/caption', '{"i":1}'), true);
      await sleep(300);
      assert.deepEqual(captions(rec), [], 'nothing reaches the broker before the file is in place');
      assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.msg')), []);
      assert.equal(t.stats().queued.durable, 1);
      release();
      await rec.waitFor((m) => m.topic === 'bitmar/unit/caption');
      assert.equal(sentBeforeFile, false);
      await until(() => t.stats().queued.durable === 0, 3000, 'the PUBACK to empty the store');
      await t.settled();
      assert.deepEqual(readdirSync(dir), [], 'removed after its PUBACK');
    });

    it('keeps the event loop ticking while fsyncs take 200 ms each', async () => {
      const url = await broker();
      const rec = await recorder(url);
      let fsyncs = 0;
      const t = make({
        url,
        store: {
          dir: tempDir(),
          fsync: true,
          io: {
            fsync: async (file) => {
              await file.sync();
              await sleep(200); // a slow device, off the event loop
              fsyncs++;
            },
          },
        },
      });
      settleLater(t);
      t.start();
      await t.whenConnected(3000);
      let last = performance.now();
      let maxGap = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 5);
      try {
        for (let i = 1; i <= 20; i++) {
          const before = performance.now();
          t.publishDurable('bitmar/unit/caption', `{"i":${i}}`);
          assert.ok(performance.now() - before < 50, 'publishDurable returns at once');
          await sleep(i % 5 === 0 ? 30 : 2); // several batches
        }
        await rec.waitForCount((m) => m.topic === 'bitmar/unit/caption', 20, 10_000);
      } finally {
        clearInterval(tick);
      }
      assert.equal(fsyncs, 20);
      assert.deepEqual(captions(rec), Array.from({ length: 20 }, (_, i) => i + 1), 'in order');
      assert.ok(maxGap < 50, `the event loop stalled for ${maxGap.toFixed(1)} ms`);
    });

    it('still delivers a caption whose file cannot be written (directory gone), plain QoS 1, counting store_error', async () => {
      const url = await broker();
      const rec = await recorder(url);
      const dir = tempDir();
      const t = make({ url, store: { dir, fsync: false } });
      t.start();
      await t.whenConnected(3000);
      const drops: string[] = [];
      t.on('drop', (d) => drops.push(`${d.reason}: ${d.detail ?? ''}`));
      rmSync(dir, { recursive: true });
      assert.equal(t.publishDurable('bitmar/unit/caption', '{"i":1}'), true);
      await t.settled();
      const got = await rec.waitFor((m) => m.topic === 'bitmar/unit/caption');
      assert.equal(got.packet.qos, 1);
      assert.equal(t.stats().dropped.store_error, 1);
      assert.match(drops[0] ?? '', /^store_error: not stored \(ENOENT.*\); sent without the durable store$/);
      assert.equal(t.stats().queued.durable, 0);
      assert.equal(t.stats().queued.durableBytes, 0);
      // And it keeps running: once the directory is back, captions are stored again.
      mkdirSync(dir);
      t.publishDurable('bitmar/unit/caption', '{"i":2}');
      await rec.waitForCount((m) => m.topic === 'bitmar/unit/caption', 2);
      assert.equal(t.stats().published.durable, 1);
      assert.equal(t.stats().dropped.store_error, 1);
    });

    it('sends what the previous process left oldest first, however the reads from disk finish', async () => {
      const port = await freePort();
      const dir = tempDir();
      // First process: the broker is down; its captions are written, then it dies (no close).
      const first = make({ url: `mqtt://127.0.0.1:${port}`, store: { dir, fsync: false } });
      first.start();
      for (let i = 1; i <= 10; i++) first.publishDurable('bitmar/unit/caption', `{"i":${i}}`);
      await first.settled();
      first.destroy();
      assert.equal(readdirSync(dir).length, 10);
      // Next process: later files are read back faster than earlier ones.
      const url = await broker(port);
      const rec = await recorder(url);
      const second = make({
        url,
        maxInflight: 4,
        store: {
          dir,
          fsync: false,
          io: {
            readFile: async (path) => {
              await sleep(60 - Number.parseInt(path.slice(-20, -4), 10) * 5);
              return readFile(path, 'utf8');
            },
          },
        },
      });
      settleLater(second);
      // Also new captions, kept in memory, must wait behind the stored ones.
      for (let i = 11; i <= 12; i++) second.publishDurable('bitmar/unit/caption', `{"i":${i}}`);
      second.start();
      await rec.waitForCount((m) => m.topic === 'bitmar/unit/caption', 12, 5000);
      assert.deepEqual(captions(rec), Array.from({ length: 12 }, (_, i) => i + 1));
      await until(() => second.stats().queued.durable === 0, 3000, 'the store to empty');
      await second.settled();
      assert.equal(existsSync(dir) && readdirSync(dir).length, 0);
    });

    it('after reconnecting, sends what it stored while offline oldest first, reading from disk what it does not hold in memory', async () => {
      const port = await freePort();
      const dir = tempDir();
      const t = make({ url: `mqtt://127.0.0.1:${port}`, store: { dir, fsync: false, maxMemoryBytes: 20 } });
      settleLater(t);
      t.start();
      // Stored while the broker is down: two stay in memory, the rest only on disk.
      for (let i = 1; i <= 8; i++) t.publishDurable('bitmar/unit/caption', `{"i":${i}}`);
      await t.settled();
      const url = await broker(port);
      const rec = await recorder(url);
      await t.whenConnected(3000);
      await rec.waitForCount((m) => m.topic === 'bitmar/unit/caption', 8, 5000);
      assert.deepEqual(captions(rec), [1, 2, 3, 4, 5, 6, 7, 8]);
      await until(() => t.stats().queued.durable === 0, 3000, 'the store to empty');
    });

    it('close() waits for captions still being written, and sends them', async () => {
      const url = await broker();
      const rec = await recorder(url);
      const dir = tempDir();
      const t = make({ url, store: { dir, fsync: true, io: { fsync: async (file) => { await file.sync(); await sleep(150); } } } });
      t.start();
      await t.whenConnected(3000);
      for (let i = 1; i <= 3; i++) t.publishDurable('bitmar/unit/caption', `{"i":${i}}`);
      await t.close(2000);
      assert.deepEqual(captions(rec).sort(), [1, 2, 3]);
      assert.equal(t.stats().published.durable, 3);
    });
  });

  it('close() before any connection resolves and rejects pending whenConnected', async () => {
    const t = make({ url: await nowhere() });
    t.start();
    const waiting = t.whenConnected(5000);
    await t.close();
    await assert.rejects(waiting, (e: unknown) => isBitmarError(e, 'BITMAR_ERR_MQTT_CONNECT'));
    assert.equal(t.publish('x/y', 'z', { qos: 1 }), true, 'still accepted into the queue, never sent');
  });
});
