import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { isBitmarError } from '../../../src/errors.js';
import { startEmbeddedBroker } from '../../../src/sinks/mqtt/embedded-broker.js';
import { connectRecorder } from '../../mqtt/helpers/clients.js';

describe('startEmbeddedBroker', () => {
  let blocker: Server;
  let taken: number;
  before(async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    taken = (blocker.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => blocker.close(() => r())));

  it('binds the port asked for, on loopback by default, and serves MQTT', async () => {
    const b = await startEmbeddedBroker({ port: 0 });
    try {
      assert.equal(b.host, '127.0.0.1');
      assert.equal(b.url, `mqtt://127.0.0.1:${b.port}`);
      assert.equal(b.portInUse, false);
      const c = await connectRecorder(b.url, ['t']);
      await c.client.publishAsync('t', 'hi');
      assert.equal((await c.waitFor(() => true)).payload.toString(), 'hi');
      assert.equal(b.clients, 1);
      await c.end();
    } finally {
      await b.close();
      await b.close(); // idempotent
    }
  });

  it('binds a free port and says so when the port is in use', async () => {
    const b = await startEmbeddedBroker({ port: taken });
    try {
      assert.equal(b.portInUse, true);
      assert.notEqual(b.port, taken);
      assert.match(b.message ?? '', new RegExp(`Port ${taken} on 127.0.0.1 is in use.*listens on 127.0.0.1:${b.port}`));
    } finally {
      await b.close();
    }
  });

  it('fails with BITMAR_ERR_MQTT_PORT_IN_USE when falling back is off', async () => {
    await assert.rejects(startEmbeddedBroker({ port: taken, fallbackToFreePort: false }), (e: unknown) => isBitmarError(e, 'BITMAR_ERR_MQTT_PORT_IN_USE'));
  });
});
