import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import {
  formatStatus,
  loadNotifyAddon,
  loadNotifyTransport,
  noopTransport,
  type NotifierTimers,
  type NotifyTransport,
  SystemdNotifier,
  watchdogUsecFromEnv,
} from '../../src/service/sd-notify.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A transport that records, and timers the test fires by hand. */
function harness(env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '30000000' }) {
  const sent: string[] = [];
  const transport: NotifyTransport = {
    kind: 'addon',
    reason: 'test',
    send: (state) => {
      sent.push(state);
      return Promise.resolve(true);
    },
  };
  const intervals: { callback: () => void; periodMs: number; isCleared: boolean }[] = [];
  const timers: NotifierTimers = {
    setInterval: (callback, periodMs) => {
      const entry = { callback, periodMs, isCleared: false };
      intervals.push(entry);
      return entry;
    },
    clearInterval: (handle) => {
      (handle as { isCleared: boolean }).isCleared = true;
    },
  };
  const logs: string[] = [];
  const notifier = new SystemdNotifier({ transport, env, pid: 4242, timers, monotonicUsec: () => 123456789n, log: (l) => logs.push(l) });
  const tick = (): void => {
    for (const entry of intervals) if (!entry.isCleared) entry.callback();
  };
  const pings = (): number => sent.filter((s) => s === 'WATCHDOG=1').length;
  return { notifier, sent, intervals, tick, pings, logs };
}

describe('service/sd-notify: SystemdNotifier', () => {
  it('sends READY=1 with a status and pings at half WATCHDOG_USEC', () => {
    const h = harness();
    assert.equal(h.notifier.watchdogIntervalMs, 15_000);
    assert.equal(h.intervals.length, 0, 'no watchdog timer before ready()');
    h.notifier.ready('model loaded');
    assert.deepEqual(h.sent, ['READY=1\nSTATUS=model loaded']);
    assert.equal(h.intervals.length, 1);
    assert.equal(h.intervals[0]!.periodMs, 15_000);
    h.notifier.ready(); // again after a reload: still one timer
    assert.equal(h.intervals.length, 1);
    assert.match(h.logs[0]!, /^systemd notify: addon \(test\)$/);
  });

  it('pings only when the loop kicked since the last ping', () => {
    const h = harness();
    h.notifier.ready();
    h.tick();
    assert.equal(h.pings(), 0, 'no kick yet');
    h.notifier.kick(); // progress after a tick that found none: ping at once
    assert.equal(h.pings(), 1);
    h.notifier.kick();
    h.notifier.kick();
    h.tick();
    assert.equal(h.pings(), 2, 'many kicks, one ping per tick');
    h.tick();
    h.tick();
    assert.equal(h.pings(), 2, 'a stalled loop stops the pings');
    assert.equal(h.notifier.watchdogPings, 2);
  });

  it('keeps pinging while the loop says it is idle, and stops when it is busy again', () => {
    const h = harness();
    h.notifier.ready();
    h.notifier.setIdle(true);
    h.tick();
    h.tick();
    assert.equal(h.pings(), 2);
    h.notifier.setIdle(false);
    h.tick();
    assert.equal(h.pings(), 2);
    h.notifier.setIdle(true); // overdue: pings at once
    assert.equal(h.pings(), 3);
  });

  it('has no watchdog without WATCHDOG_USEC or when WATCHDOG_PID names another process', () => {
    for (const env of [{}, { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }]) {
      const h = harness(env);
      assert.equal(h.notifier.watchdogIntervalMs, null);
      h.notifier.ready();
      h.notifier.kick();
      assert.equal(h.intervals.length, 0);
      assert.equal(h.pings(), 0);
    }
    assert.equal(watchdogUsecFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 4242), 30_000_000n);
    assert.throws(() => watchdogUsecFromEnv({ WATCHDOG_USEC: '30s' }, 1), RangeError);
    assert.throws(() => watchdogUsecFromEnv({ WATCHDOG_USEC: '0' }, 1), RangeError);
  });

  it('reports RELOADING=1 with MONOTONIC_USEC, then READY=1', () => {
    const h = harness();
    h.notifier.ready();
    h.notifier.reloading();
    h.notifier.ready('running');
    assert.deepEqual(h.sent.slice(1), [
      'RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading configuration',
      'READY=1\nSTATUS=running',
    ]);
  });

  it('sends STOPPING=1 and no pings after it', () => {
    const h = harness();
    h.notifier.ready();
    h.notifier.stopping();
    assert.equal(h.sent.at(-1), 'STOPPING=1\nSTATUS=stopping');
    assert.equal(h.intervals[0]!.isCleared, true);
    h.notifier.kick();
    h.notifier.ready();
    assert.equal(h.pings(), 0);
    assert.equal(h.intervals.length, 1, 'ready() after stopping() does not restart the watchdog');
  });

  it('puts status on one line and does not resend an unchanged one', () => {
    const h = harness();
    h.notifier.status('a\nb');
    h.notifier.status('a\nb');
    h.notifier.status(formatStatus({ fps: 12.345, latencyMs: 84.6, drops: 4, queueDepth: 1 }));
    assert.deepEqual(h.sent, ['STATUS=a b', 'STATUS=12.3 fps, latency 85 ms, 4 dropped, queue 1']);
  });

  it('logs one line when a notification is not delivered', async () => {
    const logs: string[] = [];
    const failing: NotifyTransport = { kind: 'systemd-notify', reason: 'test', send: () => Promise.resolve(false) };
    const notifier = new SystemdNotifier({ transport: failing, env: {}, log: (l) => logs.push(l) });
    notifier.ready();
    notifier.status('x');
    await notifier.flush();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(logs.filter((l) => l.includes('not delivered')).length, 1);
  });

  it('accepts a pino-style logger', () => {
    const lines: string[] = [];
    const notifier = new SystemdNotifier({ transport: noopTransport('off'), env: {}, log: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) } });
    notifier.ready();
    assert.deepEqual(lines, ['info systemd notify: none (off)']);
  });
});

describe('service/sd-notify: transport choice', () => {
  it('is a no-op with a reason when NOTIFY_SOCKET is unset', () => {
    const transport = loadNotifyTransport({ env: {} });
    assert.equal(transport.kind, 'none');
    assert.match(transport.reason, /NOTIFY_SOCKET is not set/);
  });

  it('falls back to systemd-notify when the addon is missing, or says why there is nothing', () => {
    const emptyRoot = mkdtempSync(join(tmpdir(), 'bitmar-noaddon-'));
    try {
      assert.match(String(loadNotifyAddon(emptyRoot)), /not built/);
      const bin = join(emptyRoot, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'systemd-notify'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const fallback = loadNotifyTransport({ env: { NOTIFY_SOCKET: '/run/x', PATH: bin }, packageRoot: emptyRoot });
      assert.equal(fallback.kind, 'systemd-notify');
      assert.match(fallback.reason, /NotifyAccess=all/);
      const none = loadNotifyTransport({ env: { NOTIFY_SOCKET: '/run/x', PATH: join(emptyRoot, 'nowhere') }, packageRoot: emptyRoot });
      assert.equal(none.kind, 'none');
      assert.match(none.reason, /not built.*systemd-notify is not on PATH/);
      assert.equal(loadNotifyTransport({ env: { NOTIFY_SOCKET: '/run/x', BITMAR_NOTIFY: 'bogus' } }).kind, 'none');
    } finally {
      rmSync(emptyRoot, { recursive: true, force: true });
    }
  });
});

// The C++ side, when the addon is built: datagrams to a path socket and to an abstract socket.
// BITMAR_TEST_ADDON=/path/to/bitmar_native.node tests another build (e.g. a standalone one).
describe('native/notify/sd_notify.cc (built addon)', function () {
  const addonFile = process.env.BITMAR_TEST_ADDON ?? join(PACKAGE_ROOT, 'build', 'Release', 'bitmar_native.node');

  before(function () {
    if (!existsSync(addonFile) || typeof loadNotifyAddon(dirname(dirname(dirname(addonFile)))) === 'string') {
      console.log(`      skipped: ${addonFile} is not built or has no sdNotify (npx node-gyp rebuild -j 1)`);
      this.skip();
    }
  });

  for (const kind of ['path', 'abstract'] as const) {
    it(`sends one datagram to a ${kind} NOTIFY_SOCKET and returns false when it is unset`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'bitmar-sdn-'));
      const name = kind === 'path' ? join(dir, 'n.sock') : `@bitmar-test-${process.pid}-${Date.now()}`;
      const listener = spawn('python3', [join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'notify-listener.py'), name], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: listener.stdout! })[Symbol.asyncIterator]();
      try {
        assert.match(String((await lines.next()).value), /listening/);
        // A child process, so NOTIFY_SOCKET is set the way systemd sets it: in the environment at start.
        const script = `const a = require(${JSON.stringify(addonFile)}); console.log(JSON.stringify([a.sdNotify('READY=1\\nSTATUS=é'), (() => { try { a.sdNotify(1); } catch (e) { return e.name + ':' + e.code; } })()]));`;
        const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, NOTIFY_SOCKET: name }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
        await new Promise((resolve) => child.once('close', resolve));
        assert.deepEqual(JSON.parse(out), [true, 'TypeError:BITMAR_ERR_NATIVE_ARGUMENT']);
        const record = JSON.parse(String((await lines.next()).value)) as { state: string };
        assert.equal(record.state, 'READY=1\nSTATUS=é');
      } finally {
        listener.stdin!.end();
        rmSync(dir, { recursive: true, force: true });
      }
      const require = createRequire(import.meta.url);
      const addon = require(addonFile) as { sdNotify(s: string): boolean };
      const saved = process.env.NOTIFY_SOCKET;
      delete process.env.NOTIFY_SOCKET;
      try {
        assert.equal(addon.sdNotify('READY=1'), false);
      } finally {
        if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
      }
    });
  }
});
