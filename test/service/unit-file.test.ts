/**
 * systemd/bitmar-node.service, rendered as the installer renders it: `systemd-analyze verify` must
 * pass, `systemd-analyze security --offline` must rate it ≤ 3.0, it must carry the directives the
 * service depends on, and none of the hardening that breaks Node, DDS or the Jetson GPU.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { applyPlan, planInstall, renderUnit, SERVICE_PATHS } from '../../src/service/installer.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEMPLATE = readFileSync(join(PACKAGE_ROOT, 'systemd', 'bitmar-node.service'), 'utf8');
const MAX_EXPOSURE = 3.0;

function primaryGroup(): string {
  const result = spawnSync('id', ['-gn'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : userInfo().username;
}

/** The directives of a unit (comments dropped), as [key, value] in order. */
function directives(unit: string): [string, string][] {
  return unit
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('['))
    .map((line) => {
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1)];
    });
}

describe('systemd/bitmar-node.service', function () {
  this.timeout(30_000);
  let root = '';
  let unitFile = '';
  let unit = '';

  before(() => {
    // Install into a temporary root, then render the unit once more with the launcher's real path
    // there: verify checks that ExecStart exists and is executable.
    root = mkdtempSync(join(tmpdir(), 'bitmar-unit-'));
    applyPlan(planInstall({ root, user: userInfo().username, group: primaryGroup(), notifyAccess: 'main', env: {} }));
    unit = renderUnit(TEMPLATE, {
      user: userInfo().username,
      group: primaryGroup(),
      supplementaryGroups: ['video'],
      launcherPath: join(root, SERVICE_PATHS.launcher),
      notifyAccess: 'main',
    });
    unitFile = join(root, 'bitmar-node.service'); // the file name is the unit name systemd-analyze reports
    writeFileSync(unitFile, unit);
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('has the lifecycle, restart and directory settings the node depends on', () => {
    const map = new Map(directives(unit));
    const expected: Record<string, string> = {
      Type: 'notify',
      NotifyAccess: 'main',
      WatchdogSec: '30',
      Restart: 'on-failure',
      RestartSec: '5',
      StartLimitIntervalSec: '300',
      StartLimitBurst: '5',
      StateDirectory: 'bitmar-node',
      ConfigurationDirectory: 'bitmar-node',
      LogsDirectory: 'bitmar-node',
      EnvironmentFile: '-/etc/bitmar-node/bitmar-node.env',
      SupplementaryGroups: 'video',
      ExecStart: join(root, SERVICE_PATHS.launcher),
      ExecReload: '/bin/kill -HUP $MAINPID',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ReadWritePaths: '/var/lib/bitmar-node /var/log/bitmar-node',
      PrivateTmp: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      LockPersonality: 'yes',
      RestrictRealtime: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      CapabilityBoundingSet: '',
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(map.get(key), value, key);
  });

  it('has none of the hardening that breaks V8, DDS shared memory or the Jetson GPU', () => {
    const keys = new Set(directives(TEMPLATE).map(([key]) => key));
    for (const harmful of ['MemoryDenyWriteExecute', 'PrivateDevices', 'DevicePolicy', 'DeviceAllow', 'ProtectClock', 'PrivateIPC', 'RemoveIPC', 'PrivateNetwork', 'IPAddressDeny', 'PrivateUsers', 'ProcSubset', 'InaccessiblePaths']) {
      assert.ok(!keys.has(harmful), `${harmful}= must not be set`);
      assert.match(TEMPLATE, new RegExp(`^# .*${harmful}`, 'm'), `a comment says why ${harmful}= is absent`);
    }
  });

  it('passes systemd-analyze verify', function () {
    const analyze = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
    if (analyze.error !== undefined) {
      console.log('      skipped: systemd-analyze is not installed');
      this.skip();
    }
    const complaints = analyze.stderr.split('\n').filter((line) => line.includes('bitmar-node'));
    assert.equal(analyze.status, 0, analyze.stderr);
    assert.deepEqual(complaints, [], analyze.stderr);
  });

  it(`rates ≤ ${MAX_EXPOSURE} in systemd-analyze security --offline`, function () {
    const analyze = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unitFile], { encoding: 'utf8' });
    if (analyze.error !== undefined) {
      console.log('      skipped: systemd-analyze is not installed');
      this.skip();
    }
    const match = /Overall exposure level for bitmar-node\.service: ([0-9.]+)/.exec(analyze.stdout);
    if (match === null && /unrecognized option|offline/i.test(analyze.stderr)) {
      console.log(`      skipped: this systemd-analyze has no --offline (systemd < 250): ${analyze.stderr.trim()}`);
      this.skip();
    }
    assert.ok(match !== null, `${analyze.stdout}\n${analyze.stderr}`);
    const exposure = Number(match[1]);
    console.log(`      exposure ${exposure} (bar ≤ ${MAX_EXPOSURE}); not set: ${analyze.stdout.split('\n').filter((l) => l.startsWith('✗')).map((l) => l.slice(2).split(/\s+/)[0]).join(' ')}`);
    assert.ok(exposure <= MAX_EXPOSURE, analyze.stdout);
  });
});
