import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';

import { type NotifyTransport, SystemdNotifier } from '../../src/service/sd-notify.js';
import { handleServiceSignals, type SignalSource } from '../../src/service/signals.js';

function setup(reload?: () => Promise<void>) {
  const sent: string[] = [];
  const transport: NotifyTransport = { kind: 'addon', reason: 'test', send: (s) => (sent.push(s.split('\n')[0]!), Promise.resolve(true)) };
  const notifier = new SystemdNotifier({ transport, env: {}, log: () => {} });
  const source = new EventEmitter();
  const stops: string[] = [];
  const logs: string[] = [];
  const remove = handleServiceSignals(
    notifier,
    { reload, stop: (signal) => void stops.push(signal), log: (l) => logs.push(l) },
    source as unknown as SignalSource,
  );
  return { sent, source, stops, logs, remove };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe('service/signals', () => {
  it('SIGHUP: RELOADING=1, the reload, READY=1; a failed reload keeps running', async () => {
    let reloads = 0;
    const s = setup(async () => {
      reloads += 1;
      if (reloads === 2) throw new Error('bad yaml');
    });
    s.source.emit('SIGHUP');
    s.source.emit('SIGHUP'); // while the first reload runs: ignored
    await settle();
    assert.deepEqual(s.sent, ['RELOADING=1', 'READY=1']);
    s.source.emit('SIGHUP');
    await settle();
    assert.equal(reloads, 2);
    assert.deepEqual(s.sent.slice(2), ['RELOADING=1', 'READY=1']);
    assert.match(s.logs[0]!, /reload failed, keeping the previous configuration: bad yaml/);
  });

  it('SIGHUP without a reload handler is acknowledged instead of killing the node', async () => {
    const s = setup();
    s.source.emit('SIGHUP');
    await settle();
    assert.deepEqual(s.sent, ['RELOADING=1', 'READY=1']);
  });

  it('SIGTERM and SIGINT: STOPPING=1 once, then stop once', async () => {
    const s = setup();
    s.source.emit('SIGTERM');
    s.source.emit('SIGINT');
    s.source.emit('SIGHUP'); // no reload while stopping
    await settle();
    assert.deepEqual(s.sent, ['STOPPING=1']);
    assert.deepEqual(s.stops, ['SIGTERM']);
    s.remove();
    assert.equal(s.source.listenerCount('SIGTERM'), 0);
  });
});
