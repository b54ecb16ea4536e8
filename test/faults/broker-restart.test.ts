/**
 * Fault: the MQTT broker goes down while the node captions, and comes back. Every final caption
 * (QoS 1, durable store) must reach a subscriber with a persistent session; none may be lost
 * (issue 9, "Faults"). The node talks to a Mosquitto it does not own (--mqtt-url); the broker is
 * stopped for at least 4 s (until the node has captioned without it) and started again on the same port with its persistence.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, unavailable, type TestBroker } from '../mqtt/helpers/brokers.js';
import { connectRecorder, json, type Recorder } from '../mqtt/helpers/clients.js';
import { killNow, spawnFaultyNode, terminalCaptions } from './fault-node.js';

const NODE_ID = 'fault-broker';
const CAPTIONS = `bitmar/${NODE_ID}/caption`;

describe('faults: MQTT broker down and back', function () {
  this.timeout(300_000);
  let dir: string;
  let broker: TestBroker | undefined;
  let observer: Recorder | undefined;

  before(function () {
    const why = unavailable('mosquitto');
    if (why !== undefined) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'bitmar-fault-broker-'));
  });
  after(async () => {
    await observer?.end();
    await broker?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('loses no final caption across a 4 s outage (QoS 1, durable store, persistent subscriber)', async () => {
    broker = await startBroker('mosquitto');
    // A persistent session (MQTT 5, session expiry 1 h): the broker keeps what arrives while we are away.
    observer = await connectRecorder(broker.url, [CAPTIONS], { clientId: 'fault-observer', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    const node = spawnFaultyNode(['run', '--mqtt-url', broker.url, '--node-id', NODE_ID, '--metrics-port', '0', '--state-dir', join(dir, 'state'), '--fps', '10', '--duration', '150']);
    try {
      const seqs = (): Set<number> => new Set(observer!.messages.filter((m) => m.topic === CAPTIONS).map((m) => json(m).seq as number));
      await observer.waitForCount((m) => m.topic === CAPTIONS, 3, 90_000);

      await broker.stop();
      // At least 4 s, and until the node has made 2 captions with the broker gone (a slow machine).
      const printedBefore = terminalCaptions(node.stdout()).length;
      const stoppedAt = Date.now();
      while ((Date.now() - stoppedAt < 4000 || terminalCaptions(node.stdout()).length - printedBefore < 2) && Date.now() - stoppedAt < 90_000) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const duringOutage = terminalCaptions(node.stdout()).length - printedBefore;
      assert.ok(duringOutage >= 2, `the node made ${duringOutage} captions in 90 s while the broker was down; it must keep going`);
      await broker.start();

      // Captions made after the outage arrive: the node reconnected and resent its store.
      const resumeFrom = Math.max(...terminalCaptions(node.stdout()).map((c) => c.seq));
      await observer.waitFor((m) => m.topic === CAPTIONS && (json(m).seq as number) > resumeFrom + 2, 60_000);
      node.child.kill('SIGINT');
      const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.equal(code, 0, `exit ${String(code)}; stderr: ${node.stderr().slice(-2000)}`);

      // Every final caption the node printed reached the subscriber (cancelled ones are not durable).
      const printed = terminalCaptions(node.stdout()).filter((c) => !c.cancelled);
      await new Promise((r) => setTimeout(r, 1000));
      const received = seqs();
      const lost = printed.filter((c) => !received.has(c.seq)).map((c) => c.seq);
      assert.deepEqual(lost, [], `final captions lost: ${lost.join(', ')} of ${printed.length}`);
      // And seq has no holes: nothing vanished between the pipeline and the terminal either.
      const max = Math.max(...received);
      const holes = Array.from({ length: max }, (_, i) => i + 1).filter((s) => !received.has(s) && !terminalCaptions(node.stdout()).some((c) => c.seq === s && c.cancelled));
      assert.deepEqual(holes, [], `seq numbers never seen: ${holes.join(', ')}`);
      process.stdout.write(`      broker outage: ${printed.length} final captions, ${duringOutage} made during the outage, all ${received.size} received\n`);
    } finally {
      killNow(node);
    }
  });
});
