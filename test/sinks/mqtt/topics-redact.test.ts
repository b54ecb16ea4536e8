import assert from 'node:assert/strict';
import { redact, redactUrl, scrub } from '../../../src/sinks/mqtt/redact.js';
import { deviceIdOf, sanitizeNodeId, shareFilter, stripShare, topicMatches } from '../../../src/sinks/mqtt/topics.js';

describe('MQTT topics', () => {
  it('sanitizes node ids into one lower-case topic level', () => {
    assert.equal(sanitizeNodeId('Jetson-Orin.local'), 'jetson-orin-local');
    assert.equal(sanitizeNodeId('a/b+#c'), 'a-b-c');
    assert.equal(sanitizeNodeId('///'), 'node');
    assert.equal(sanitizeNodeId('x'.repeat(100)).length, 64);
    assert.match(sanitizeNodeId(), /^[a-z0-9_-]+$/);
  });

  it('matches filters with + and #, shared subscriptions, and $ topics (MQTT 5.0 §4.7)', () => {
    assert.ok(topicMatches('bitmar/+/image', 'bitmar/cam1/image'));
    assert.ok(!topicMatches('bitmar/+/image', 'bitmar/cam1/image/raw'));
    assert.ok(topicMatches('bitmar/#', 'bitmar'));
    assert.ok(topicMatches('bitmar/n/request/+', 'bitmar/n/request/describe'));
    assert.ok(topicMatches('$share/g/bitmar/+/image', 'bitmar/cam2/image'));
    assert.ok(!topicMatches('#', '$SYS/broker'));
    assert.ok(!topicMatches('bitmar/n/image', 'bitmar/n'));
    assert.equal(stripShare('$share/g/a/b'), 'a/b');
    assert.equal(shareFilter('g', 'a/+'), '$share/g/a/+');
    assert.throws(() => shareFilter('a/b', 'x'), TypeError);
    assert.equal(deviceIdOf('bitmar', 'bitmar/cam1/image'), 'cam1');
    assert.equal(deviceIdOf('bitmar', 'other/cam1/image'), undefined);
  });
});

describe('redact', () => {
  it('hides passwords in URLs, option objects and messages', () => {
    assert.equal(redactUrl('mqtt://user:hunter22@broker:1883'), 'mqtt://user:***@broker:1883');
    assert.equal(redactUrl('mqtt://broker:1883'), 'mqtt://broker:1883');
    const r = redact({ url: 'mqtts://u:pw123@h', username: 'u', password: 'pw123', tls: { key: 'PEM', ca: '/ca.pem' }, token: 'abc', n: 1, data: Buffer.alloc(3) });
    assert.deepEqual(r, { url: 'mqtts://u:***@h', username: 'u', password: '***', tls: { key: '***', ca: '/ca.pem' }, token: '***', n: 1, data: '<3 bytes>' });
    assert.equal(scrub('bad password hunter22 for u', ['hunter22', undefined]), 'bad password *** for u');
  });
});
