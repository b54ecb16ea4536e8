/**
 * Fault: SIGTERM while a caption is being generated. The node must publish the partial caption as
 * a caption with `cancelled: true` (and the text said so far), save the memory, and exit 0
 * (issue 9, "Faults"). The model is slowed to one token per 150 ms (fixtures/slow-tokens.ts) so the
 * signal lands mid-caption every time; the memory's periodic sync is set to 10 minutes, so episodes
 * on disk after the exit can only come from the flush at shutdown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEMORY_DB_FILE } from '../../src/memory/store.js';
import { SqliteEpisodicStore } from '../../src/memory/sqlite-store.js';
import { startBroker, unavailable, type TestBroker } from '../mqtt/helpers/brokers.js';
import { connectRecorder, json, type Received, type Recorder } from '../mqtt/helpers/clients.js';
import { killNow, spawnFaultyNode } from './fault-node.js';

const NODE_ID = 'fault-sigterm';

describe('faults: SIGTERM mid-generation', function () {
  this.timeout(300_000);
  let dir: string;
  let broker: TestBroker;
  let observer: Recorder;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bitmar-fault-sigterm-'));
    broker = await startBroker(unavailable('mosquitto') === undefined ? 'mosquitto' : 'aedes');
    observer = await connectRecorder(broker.url, [`bitmar/${NODE_ID}/caption`, `bitmar/${NODE_ID}/caption/partial`]);
  });
  after(async () => {
    await observer?.end();
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes the partial caption as cancelled, flushes memory, exits 0', async () => {
    const config = join(dir, 'bitmar.yaml');
    writeFileSync(config, 'memory:\n  syncIntervalMs: 600000\n  policy: fifo\n');
    const state = join(dir, 'state');
    const node = spawnFaultyNode(
      ['run', '--config', config, '--mqtt-url', broker.url, '--node-id', NODE_ID, '--metrics-port', '0', '--state-dir', state, '--fps', '10', '--duration', '120'],
      { BITMAR_FAULT_TOKEN_DELAY_MS: '150' },
    );
    try {
      const isCaption = (m: Received): boolean => m.topic === `bitmar/${NODE_ID}/caption`;
      const isPartial = (m: Received): boolean => m.topic === `bitmar/${NODE_ID}/caption/partial`;
      const finals = await observer.waitForCount((m) => isCaption(m) && json(m).cancelled === false, 2, 150_000);
      const lastFinal = Math.max(...finals.map((m) => json(m).seq as number));
      // The next caption's first token: it is now being generated, one token per 150 ms.
      const first = await observer.waitFor((m) => isPartial(m) && (json(m).seq as number) > lastFinal, 30_000);
      const seq = json(first).seq as number;
      node.child.kill('SIGTERM');
      const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.equal(code, 0, `exit ${String(code)}; stderr: ${node.stderr()}`);

      const cancelled = json(await observer.waitFor((m) => isCaption(m) && json(m).seq === seq, 10_000));
      assert.equal(cancelled.cancelled, true, `caption ${seq} after SIGTERM: ${JSON.stringify(cancelled)}`);
      const partials = observer.messages.filter((m) => isPartial(m) && json(m).seq === seq).map(json);
      const said = partials.reduce((a, b) => ((b.index as number) > (a.index as number) ? b : a));
      assert.ok(String(cancelled.text).length > 0, 'the cancelled caption lost the text said so far');
      assert.equal(cancelled.text, said.text, 'the cancelled caption must carry the text streamed so far');
      assert.ok(!observer.messages.some((m) => isCaption(m) && json(m).seq === seq && json(m).cancelled === false), 'the interrupted caption was also published as final');

      // Episodes of the finished captions are on disk: only the shutdown flush could have put them there.
      const store = SqliteEpisodicStore.open({ path: join(state, MEMORY_DB_FILE), readOnly: true });
      try {
        assert.ok(store.stats().used >= finals.length, `memory holds ${store.stats().used} episodes after exit, expected ≥ ${finals.length}`);
      } finally {
        store.close();
      }
      assert.doesNotMatch(node.stderr(), /"level":(50|60)/, `errors logged: ${node.stderr()}`);
    } finally {
      killNow(node);
    }
  });
});
