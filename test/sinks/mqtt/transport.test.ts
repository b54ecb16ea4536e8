/** MqttTransport behaviour that needs no broker, or only the embedded one it is tested against. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isBitmarError } from '../../../src/errors.js';
import { startEmbeddedBroker } from '../../../src/sinks/mqtt/embedded-broker.js';
import { silentLogger, type MqttLogger } from '../../../src/sinks/mqtt/logger.js';
import { MqttTransport, type MqttTransportOptions } from '../../../src/sinks/mqtt/transport.js';
import { freePort } from '../../mqtt/helpers/brokers.js';
import { connectRecorder, json, until } from '../../mqtt/helpers/clients.js';

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

  it('close() before any connection resolves and rejects pending whenConnected', async () => {
    const t = make({ url: await nowhere() });
    t.start();
    const waiting = t.whenConnected(5000);
    await t.close();
    await assert.rejects(waiting, (e: unknown) => isBitmarError(e, 'BITMAR_ERR_MQTT_CONNECT'));
    assert.equal(t.publish('x/y', 'z', { qos: 1 }), true, 'still accepted into the queue, never sent');
  });
});
