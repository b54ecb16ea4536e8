import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { spawnCli } from '../helpers/spawn-node.js';

/**
 * The first end-to-end test: the real node on the synthetic camera, its embedded broker, and an
 * independent mqtt.js client that must see caption JSON with the documented fields.
 */
describe('bitmar-node run (end to end, synthetic camera → embedded MQTT broker)', function () {
  this.timeout(120_000);

  it('streams captions to the terminal and publishes caption JSON on bitmar/<node-id>/caption', async () => {
    const state = mkdtempSync(join(tmpdir(), 'bitmar-e2e-'));
    const node = spawnCli(['run', '--duration', '40', '--mqtt-port', '0', '--metrics-port', '0', '--state-dir', state, '--node-id', 'e2e-node', '--fps', '20']);
    try {
      const m = await node.waitFor(/embedded MQTT broker at (mqtt:\/\/[0-9.]+:\d+)/);
      const client = await mqtt.connectAsync(m[1]!, { protocolVersion: 4, clientId: 'e2e-observer' });
      const captions: Record<string, unknown>[] = [];
      const partials: Record<string, unknown>[] = [];
      let status: Record<string, unknown> | null = null;
      client.on('message', (topic, payload) => {
        const json = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
        if (topic === 'bitmar/e2e-node/caption') captions.push(json);
        else if (topic === 'bitmar/e2e-node/caption/partial') partials.push(json);
        else if (topic === 'bitmar/e2e-node/status') status = json;
      });
      await client.subscribeAsync('bitmar/e2e-node/#', { qos: 1 });
      const t0 = Date.now();
      while (captions.length < 3 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 100));
      assert.ok(captions.length >= 3, `expected captions, got ${captions.length}; stderr: ${node.stderr()}`);
      const c = captions[0]!;
      for (const key of ['seq', 'text', 'tokenIds', 'prompt', 'isFinal', 'frame', 'latencyMs', 'model']) assert.ok(key in c, `caption JSON lacks ${key}`);
      assert.equal(typeof c.text, 'string');
      assert.equal(c.isFinal, true);
      assert.ok(Array.isArray(c.tokenIds));
      assert.ok(partials.length > 0, 'no partial tokens streamed');
      assert.deepEqual((status as Record<string, unknown> | null)?.state, 'online');
      // Terminal shows the captions too (the embedded aedes broker speaks MQTT 3.1.1; see docs/mqtt.md).
      assert.match(node.stdout(), /\[\d+\] .+ — [0-9.]+ ms, frame \d+/);
      await client.endAsync();
      node.child.kill('SIGINT');
      assert.equal(await node.exited, 0);
    } finally {
      node.child.kill('SIGKILL');
    }
  });
});
