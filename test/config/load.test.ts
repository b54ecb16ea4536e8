import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envNameOf, loadConfig } from '../../src/config/load.js';
import { DEFAULT_CONFIG, parameterDescriptors } from '../../src/config/schema.js';
import { isBitmarError } from '../../src/errors.js';

describe('config', () => {
  it('applies defaults < file < env < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitmar-cfg-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'pipeline:\n  batchSize: 2\n  queueLimit: 3\nmqtt:\n  url: mqtt://file\n');
    const cfg = loadConfig({
      file,
      env: { BITMAR_PIPELINE_QUEUE_LIMIT: '5', BITMAR_MQTT_URL: 'mqtt://env', BITMAR_NODE_ID: 'robot-1' },
      overrides: { 'mqtt.url': 'mqtt://flag' },
    });
    assert.equal(cfg.pipeline.batchSize, 2);
    assert.equal(cfg.pipeline.queueLimit, 5);
    assert.equal(cfg.mqtt.url, 'mqtt://flag');
    assert.equal(cfg.mqtt.nodeId, 'robot-1');
    assert.equal(cfg.pipeline.maxFrameAgeMs, DEFAULT_CONFIG.pipeline.maxFrameAgeMs);
    assert.ok(Object.isFrozen(cfg.pipeline));
  });

  it('reports every problem at once, naming key and allowed values', () => {
    try {
      loadConfig({ env: {}, overrides: { 'memory.policy': 'random', 'pipeline.batchSize': 0, 'nope.key': 1 } });
      assert.fail('should throw');
    } catch (e) {
      assert.ok(isBitmarError(e, 'BITMAR_ERR_CONFIG_INVALID'));
      assert.match(e.message, /memory\.policy: "random" is not allowed; use one of lru, lfu, fifo/);
      assert.match(e.message, /pipeline\.batchSize: must be ≥ 1/);
      assert.match(e.message, /unknown key\(s\) nope/);
    }
  });

  it('rejects bad environment values with the variable name', () => {
    assert.throws(() => loadConfig({ env: { BITMAR_PIPELINE_BATCH_SIZE: 'four' } }), /BITMAR_PIPELINE_BATCH_SIZE.*"four" is not a number/);
  });

  it('describes every leaf with a type and the env name', () => {
    const descs = parameterDescriptors();
    const batch = descs.find((d) => d.name === 'pipeline.batchSize')!;
    assert.equal(batch.type, 'integer');
    assert.equal(batch.min, 1);
    assert.equal(batch.max, 64);
    assert.ok(batch.runtime);
    const policy = descs.find((d) => d.name === 'memory.policy')!;
    assert.ok(policy.allowed?.includes('similarity-merge'));
    assert.equal(envNameOf('mqtt.nodeId'), 'BITMAR_MQTT_NODE_ID');
    assert.ok(descs.length > 40);
  });

  it('a broken YAML file names the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitmar-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'model: [unclosed\n');
    assert.throws(() => loadConfig({ file, env: {} }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_CONFIG_FILE') && e.message.includes('bad.yaml'));
  });
});
