/**
 * The sd_notify protocol end to end: this test is systemd. It binds its own NOTIFY_SOCKET, sets
 * WATCHDOG_USEC, runs a real child process and checks what arrives: READY=1 after the model loads,
 * WATCHDOG=1 at half WATCHDOG_USEC, no pings once inference stalls, SIGHUP → RELOADING=1 then
 * READY=1, SIGTERM → STOPPING=1 and exit 0.
 *
 * The child is test/service/fixtures/inference-loop.ts (the real SystemdNotifier and signal
 * handling around a simulated inference loop), once per transport; and `bitmar-node run` itself
 * when it is built.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadNotifyAddon } from '../../src/service/sd-notify.js';
import { collectNotifications, type Notification, withField } from './notify-collector.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE_ROOT = join(HERE, '..', '..');
const FIXTURE = join(HERE, 'fixtures', 'inference-loop.ts');
const WATCHDOG_USEC = 600_000; // pings expected every 300 ms
const HALF_MS = WATCHDOG_USEC / 2000;
const LOAD_MS = 300;

function gaps(messages: readonly Notification[]): number[] {
  return messages.slice(1).map((m, i) => m.atMs - messages[i]!.atMs);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function fixtureArgs(): string[] {
  return ['--import', 'tsx', FIXTURE];
}

const transports: { name: 'addon' | 'systemd-notify'; unavailable: () => string | null }[] = [
  {
    name: 'addon',
    unavailable: () => {
      const addon = loadNotifyAddon(PACKAGE_ROOT);
      return typeof addon === 'string' ? addon : null;
    },
  },
  {
    name: 'systemd-notify',
    unavailable: () => (spawnSync('systemd-notify', ['--help']).error === undefined ? null : 'systemd-notify is not installed'),
  },
];

describe('service: sd_notify protocol with a real child process', function () {
  this.timeout(30_000);

  before(function () {
    if (spawnSync('python3', ['--version']).error !== undefined) {
      console.log('      skipped: python3 is needed to bind the AF_UNIX datagram socket');
      this.skip();
    }
  });

  for (const transport of transports) {
    it(`${transport.name}: READY after load, pings at half WATCHDOG_USEC, SIGHUP reloads, SIGTERM stops with exit 0`, async function () {
      const reason = transport.unavailable();
      if (reason !== null) {
        console.log(`      skipped: ${reason}`);
        this.skip();
      }
      let hasSentHangup = false;
      let hasSentTerm = false;
      const run = await collectNotifications(
        process.execPath,
        fixtureArgs(),
        { WATCHDOG_USEC: String(WATCHDOG_USEC), BITMAR_NOTIFY: transport.name, FIXTURE_LOAD_MS: String(LOAD_MS) },
        20_000,
        {
          cwd: PACKAGE_ROOT,
          onMessage: (message, child, all) => {
            if (message.fields.READY !== '1') return;
            if (!hasSentHangup) {
              hasSentHangup = true;
              setTimeout(() => child.kill('SIGHUP'), 6 * HALF_MS);
            } else if (!hasSentTerm && all.some((m) => m.fields.RELOADING === '1')) {
              hasSentTerm = true;
              setTimeout(() => child.kill('SIGTERM'), 3 * HALF_MS);
            }
          },
        },
      );
      const trace = run.messages.map((m) => `${m.atMs.toFixed(0)}ms ${m.state.replace(/\n/g, ' | ')}`).join('\n');
      assert.equal(run.timedOut, false, `the child did not exit:\n${trace}\n${run.stderr}`);
      assert.equal(run.exitCode, 0, `exit ${run.exitCode}:\n${run.stderr}`);
      assert.ok(run.stderr.includes(`systemd notify: ${transport.name}`), run.stderr);

      const states = run.messages.map((m) => m.state);
      const firstReady = run.messages.find((m) => m.fields.READY === '1');
      assert.ok(firstReady !== undefined, trace);
      assert.equal(run.messages[0], firstReady, 'nothing before READY=1');
      assert.equal(firstReady.fields.STATUS, 'model loaded');
      assert.ok(firstReady.atMs >= LOAD_MS, 'READY=1 only after the model load');

      // Watchdog: every ping within WATCHDOG_USEC of the previous one (systemd's deadline), at about half of it.
      const pings = withField(run.messages, 'WATCHDOG');
      assert.ok(pings.length >= 6, `${pings.length} pings:\n${trace}`);
      const pingGaps = gaps([firstReady, ...pings]);
      assert.ok(Math.max(...pingGaps) < WATCHDOG_USEC / 1000, `a gap of ${Math.max(...pingGaps).toFixed(0)} ms would trip the watchdog:\n${trace}`);
      const typical = median(pingGaps);
      assert.ok(typical > 0.7 * HALF_MS && typical < 1.4 * HALF_MS, `median ping gap ${typical.toFixed(0)} ms, expected ~${HALF_MS}`);

      // SIGHUP: RELOADING=1 with a CLOCK_MONOTONIC timestamp, then READY=1 again.
      const reloadIndex = run.messages.findIndex((m) => m.fields.RELOADING === '1');
      assert.ok(reloadIndex > 0, trace);
      const reload = run.messages[reloadIndex]!;
      const monotonicMs = Number(reload.fields.MONOTONIC_USEC) / 1000 - run.startMonotonicMs;
      assert.ok(Math.abs(monotonicMs - reload.atMs) < 1000, `MONOTONIC_USEC is ${monotonicMs.toFixed(0)} ms, received at ${reload.atMs.toFixed(0)} ms`);
      const readyAgain = run.messages.slice(reloadIndex + 1).find((m) => m.fields.READY === '1');
      assert.ok(readyAgain !== undefined, `no READY=1 after RELOADING=1:\n${trace}`);
      assert.ok(withField(run.messages, 'WATCHDOG').some((m) => m.atMs > readyAgain.atMs), 'pings continue after the reload');

      // SIGTERM: STOPPING=1 is the last word.
      assert.match(states.at(-1)!, /^STOPPING=1/, trace);
    });
  }

  it('a stalled inference step stops the pings', async function () {
    const stallAfterMs = 4 * HALF_MS;
    const quietMs = 4 * HALF_MS; // longer than WATCHDOG_USEC: systemd would have restarted the node
    let readyAtMs = 0;
    const run = await collectNotifications(
      process.execPath,
      fixtureArgs(),
      { WATCHDOG_USEC: String(WATCHDOG_USEC), FIXTURE_LOAD_MS: '100', FIXTURE_STALL_AFTER_MS: String(stallAfterMs) },
      20_000,
      {
        cwd: PACKAGE_ROOT,
        onMessage: (message, child) => {
          if (message.fields.READY !== '1') return;
          readyAtMs = message.atMs;
          setTimeout(() => child.kill('SIGTERM'), stallAfterMs + quietMs);
        },
      },
    );
    const trace = run.messages.map((m) => `${m.atMs.toFixed(0)}ms ${m.state.replace(/\n/g, ' | ')}`).join('\n');
    assert.equal(run.exitCode, 0, `a stalled node still stops cleanly on SIGTERM:\n${run.stderr}`);
    const pings = withField(run.messages, 'WATCHDOG');
    assert.ok(pings.length >= 2, `pings before the stall:\n${trace}`);
    const lastPing = pings.at(-1)!;
    // The last ping can only come from progress made before the stall (plus one timer period).
    assert.ok(lastPing.atMs <= readyAtMs + stallAfterMs + HALF_MS + 150, `a ping at ${lastPing.atMs.toFixed(0)} ms, after the stall:\n${trace}`);
    const stopping = run.messages.at(-1)!;
    assert.match(stopping.state, /^STOPPING=1/);
    assert.ok(stopping.atMs - lastPing.atMs > WATCHDOG_USEC / 1000, `silence of ${(stopping.atMs - lastPing.atMs).toFixed(0)} ms is shorter than WATCHDOG_USEC:\n${trace}`);
  });

  // The real node, once the lead's `bitmar-node run` is built.
  it('bitmar-node run --frames 50: READY=1, then STOPPING=1 and exit 0', async function () {
    const bin = join(PACKAGE_ROOT, 'bin', 'bitmar-node.js');
    if (!existsSync(bin)) {
      console.log('      skipped: bin/bitmar-node.js does not exist yet');
      this.skip();
    }
    const help = spawnSync(process.execPath, [bin, 'run', '--help'], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 20_000 });
    if (help.status !== 0 || !help.stdout.includes('--frames')) {
      console.log(`      skipped: \`bitmar-node run --help\` does not offer --frames (${(help.stderr || help.stdout).trim().split('\n')[0] ?? 'no output'})`);
      this.skip();
    }
    const args = [bin, 'run', '--frames', '50', '--source', 'synthetic', '--no-mqtt'];
    if (help.stdout.includes('--metrics-port')) args.push('--metrics-port', '0');
    const stateDir = mkdtempSync(join(tmpdir(), 'bitmar-run-state-'));
    if (help.stdout.includes('--state-dir')) args.push('--state-dir', stateDir);
    const watchdogUsec = 2_000_000;
    const run = await collectNotifications(process.execPath, args, { WATCHDOG_USEC: String(watchdogUsec) }, 25_000, { cwd: PACKAGE_ROOT });
    rmSync(stateDir, { recursive: true, force: true });
    const trace = run.messages.map((m) => `${m.atMs.toFixed(0)}ms ${m.state.replace(/\n/g, ' | ')}`).join('\n');
    assert.equal(run.timedOut, false, `did not finish 50 frames in 25 s:\n${trace}\n${run.stderr.slice(-2000)}`);
    assert.equal(run.exitCode, 0, `exit ${run.exitCode}:\n${run.stderr.slice(-2000)}`);
    const readyIndex = run.messages.findIndex((m) => m.fields.READY === '1');
    assert.ok(readyIndex >= 0, `no READY=1:\n${trace}`);
    assert.match(run.messages.at(-1)!.state, /^STOPPING=1/, trace);
    const pings = withField(run.messages, 'WATCHDOG');
    const span = run.messages.at(-1)!.atMs - run.messages[readyIndex]!.atMs;
    console.log(`      real node: ${run.messages.length} notifications, ${pings.length} pings over ${span.toFixed(0)} ms`);
    if (span > watchdogUsec / 1000) assert.ok(pings.length >= 1, `ran ${span.toFixed(0)} ms past READY without a ping:\n${trace}`);
  });
});
