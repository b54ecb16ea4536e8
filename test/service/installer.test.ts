/**
 * `bitmar-node service install|uninstall|status`: the --dry-run output through the real command
 * line, and an install into a temporary root checked file by file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';

import { registerServiceCommand } from '../../src/cli/service.js';
import { isBitmarError } from '../../src/errors.js';
import {
  applyPlan,
  describePlan,
  planInstall,
  planUninstall,
  renderUnit,
  SERVICE_PATHS,
  serviceStatus,
  setEnvVar,
  systemdQuote,
} from '../../src/service/installer.js';
import { loadNotifyAddon } from '../../src/service/sd-notify.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const USER = userInfo().username;
const GROUP = (() => {
  const result = spawnSync('id', ['-gn'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : USER;
})();

/** Runs `bitmar-node service ...` in-process; returns what it printed. */
async function cli(args: readonly string[]): Promise<string> {
  const program = new Command('bitmar-node').exitOverride();
  registerServiceCommand(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'bitmar-node', 'service', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

function mode(path: string): number {
  return statSync(path).mode & 0o7777;
}

describe('service/installer', function () {
  this.timeout(30_000);
  let root = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'bitmar-install-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('--dry-run prints every step and the unit, and changes nothing', async () => {
    const unitExisted = existsSync(SERVICE_PATHS.unit);
    const out = await cli(['install', '--dry-run', '--user', USER, '--ros-distro', 'humble']);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines[0], 'dry run: nothing is changed');
    for (const expected of [
      `mkdir   ${SERVICE_PATHS.stateDir} (0750)`,
      `mkdir   ${SERVICE_PATHS.logsDir} (0750)`,
      `mkdir   ${SERVICE_PATHS.configDir} (0755)`,
      `write   ${SERVICE_PATHS.launcher} (0755; runs ${process.execPath} ${join(PACKAGE_ROOT, 'bin', 'bitmar-node.js')} run)`,
      `chown   ${SERVICE_PATHS.stateDir} ${USER}:${GROUP}`,
      'run     systemctl daemon-reload',
      'run     systemctl enable bitmar-node.service',
      `--- ${SERVICE_PATHS.unit} ---`,
      `User=${USER}`,
      `ExecStart=${SERVICE_PATHS.launcher}`,
      'Type=notify',
    ]) {
      assert.ok(lines.includes(expected), `missing line "${expected}" in:\n${out}`);
    }
    assert.ok(lines.some((l) => l.startsWith(`write   ${SERVICE_PATHS.unit} (0644; User=${USER} Group=${GROUP} NotifyAccess=`)), out);
    assert.ok(lines.some((l) => l.startsWith(`write   ${SERVICE_PATHS.envFile} (0600;`) && l.includes('ROS_DISTRO=humble')), out);
    assert.ok(!lines.some((l) => l.startsWith('ROS_DOMAIN_ID')), 'the settings file (secrets) is not printed');
    assert.equal(existsSync(SERVICE_PATHS.unit), unitExisted, 'dry run wrote the unit');
    const withNow = await cli(['install', '--dry-run', '--user', USER, '--now']);
    assert.ok(withNow.includes('run     systemctl enable --now bitmar-node.service'), withNow);
    const uninstall = await cli(['uninstall', '--dry-run']);
    assert.ok(uninstall.includes('run     systemctl disable --now bitmar-node.service'), uninstall);
    assert.ok(uninstall.includes(`remove  ${SERVICE_PATHS.unit}`), uninstall);
  });

  it('installs into --root file by file, without systemctl', async () => {
    const workspace = join(root, 'home', 'jetson', 'ros2_ws');
    const out = await cli(['install', '--root', root, '--user', USER, '--ros-distro', 'jazzy', '--workspace', '/home/jetson/ros2_ws']);
    assert.ok(!out.includes('systemctl daemon-reload\n'), 'no systemctl step under --root');
    assert.ok(out.includes('systemctl was not called'), out);
    assert.ok(out.includes('/home/jetson/ros2_ws/install/setup.bash does not exist'), out);
    assert.equal(existsSync(workspace), false);

    // The unit: target paths (not the root), the user, NotifyAccess matching the addon.
    const unitPath = join(root, SERVICE_PATHS.unit);
    assert.equal(mode(unitPath), 0o644);
    const unit = readFileSync(unitPath, 'utf8');
    assert.match(unit, new RegExp(`^User=${USER}$`, 'm'));
    assert.match(unit, new RegExp(`^Group=${GROUP}$`, 'm'));
    assert.match(unit, /^ExecStart=\/usr\/local\/lib\/bitmar-node\/bitmar-node-launch\.sh$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/bitmar-node\/bitmar-node\.env$/m);
    const expectedAccess = typeof loadNotifyAddon(PACKAGE_ROOT) === 'string' ? 'all' : 'main';
    assert.match(unit, new RegExp(`^NotifyAccess=${expectedAccess}$`, 'm'));
    assert.doesNotMatch(unit, /@[A-Z_]+@/);
    assert.ok(!unit.includes(root), 'the unit names target paths, not the temporary root');

    // The launcher: executable, valid bash, with this node and this package's entry point.
    const launcherPath = join(root, SERVICE_PATHS.launcher);
    assert.equal(mode(launcherPath), 0o755);
    accessSync(launcherPath, constants.X_OK);
    const launcher = readFileSync(launcherPath, 'utf8');
    assert.ok(launcher.includes(`node_bin="\${BITMAR_NODE:-${process.execPath}}"`), launcher);
    assert.ok(launcher.includes(`entry="\${BITMAR_ENTRY:-${join(PACKAGE_ROOT, 'bin', 'bitmar-node.js')}}"`), launcher);
    assert.equal(spawnSync('bash', ['-n', launcherPath]).status, 0);

    // The settings file: private, from the example, with the ROS settings filled in.
    const envPath = join(root, SERVICE_PATHS.envFile);
    assert.equal(mode(envPath), 0o600);
    const envText = readFileSync(envPath, 'utf8');
    assert.match(envText, /^ROS_DISTRO=jazzy$/m);
    assert.match(envText, /^BITMAR_ROS_WORKSPACE=\/home\/jetson\/ros2_ws$/m);
    assert.match(envText, /^ROS_DOMAIN_ID=0$/m);

    // Directories: config world-readable, state and logs private to the service.
    assert.equal(mode(join(root, SERVICE_PATHS.configDir)), 0o755);
    assert.equal(mode(join(root, SERVICE_PATHS.stateDir)), 0o750);
    assert.equal(mode(join(root, SERVICE_PATHS.logsDir)), 0o750);
    assert.equal(mode(join(root, 'var')), 0o755, 'parents get ordinary modes');

    const status = serviceStatus({ root });
    assert.ok(status.includes(`unit      ${unitPath}: present (0644)`), status.join('\n'));
    assert.ok(status.some((l) => l.startsWith(`unit      User=${USER} NotifyAccess=${expectedAccess} WatchdogSec=30`)), status.join('\n'));
  });

  it('keeps an edited settings file on reinstall, updates only what is passed, replaces it with --env-file', async () => {
    await cli(['install', '--root', root, '--user', USER, '--ros-distro', 'humble']);
    const envPath = join(root, SERVICE_PATHS.envFile);
    writeFileSync(envPath, `${readFileSync(envPath, 'utf8')}MQTT_PASSWORD=secret\n`);
    const again = await cli(['install', '--root', root, '--user', USER]);
    assert.ok(again.includes(`keep    ${envPath} (exists; edit it by hand)`), again);
    assert.match(readFileSync(envPath, 'utf8'), /^MQTT_PASSWORD=secret$/m);

    await cli(['install', '--root', root, '--user', USER, '--ros-distro', 'jazzy']);
    const updated = readFileSync(envPath, 'utf8');
    assert.match(updated, /^ROS_DISTRO=jazzy$/m);
    assert.doesNotMatch(updated, /^ROS_DISTRO=humble$/m);
    assert.match(updated, /^MQTT_PASSWORD=secret$/m);

    const mine = join(root, 'mine.env');
    writeFileSync(mine, 'ROS_DOMAIN_ID=7\n');
    await cli(['install', '--root', root, '--user', USER, '--env-file', mine]);
    assert.equal(readFileSync(envPath, 'utf8'), 'ROS_DOMAIN_ID=7\n');
    assert.equal(mode(envPath), 0o600);
  });

  it('uninstalls from --root, keeping settings, state and logs', async () => {
    await cli(['install', '--root', root, '--user', USER]);
    const out = await cli(['uninstall', '--root', root]);
    assert.ok(!out.includes('systemctl'), out.split('\n').filter((l) => l.startsWith('run')).join('\n'));
    assert.equal(existsSync(join(root, SERVICE_PATHS.unit)), false);
    assert.equal(existsSync(join(root, SERVICE_PATHS.launcher)), false);
    assert.equal(existsSync(dirname(join(root, SERVICE_PATHS.launcher))), false);
    for (const kept of [SERVICE_PATHS.envFile, SERVICE_PATHS.stateDir, SERVICE_PATHS.logsDir]) assert.ok(existsSync(join(root, kept)), kept);
    assert.ok(serviceStatus({ root }).some((l) => l.includes(': missing')));
  });

  it('rejects bad names and unknown users with BITMAR_ERR_SERVICE_INSTALL', () => {
    const template = readFileSync(join(PACKAGE_ROOT, 'systemd', 'bitmar-node.service'), 'utf8');
    const values = { user: 'jetson', group: 'jetson', supplementaryGroups: ['video'], launcherPath: '/x/launch.sh', notifyAccess: 'main' as const };
    assert.throws(() => renderUnit(template, { ...values, user: 'a b\nExecStartPre=/bin/rm' }), (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL'));
    assert.throws(() => renderUnit(template, { ...values, launcherPath: 'relative.sh' }), (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL'));
    assert.throws(() => planInstall({ user: 'no-such-user-bitmar', env: {} }), (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL') && /does not exist/.test(e.message));
    assert.throws(() => planInstall({ root, user: USER, rosDistro: 'Humble;rm', env: {} }), (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL'));
    assert.throws(() => planInstall({ root, user: USER, workspace: 'ros2_ws', env: {} }), (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL'));
  });

  it('runs systemctl through the runner and stops at the first failure', () => {
    const calls: string[] = [];
    const plan = planUninstall({});
    assert.deepEqual(describePlan(plan).filter((l) => l.startsWith('run')), ['run     systemctl disable --now bitmar-node.service', 'run     systemctl daemon-reload']);
    const onlyRuns = { ...plan, steps: plan.steps.filter((s) => s.kind === 'run') };
    applyPlan(onlyRuns, (argv) => {
      calls.push(argv.join(' '));
      return { status: argv[1] === 'disable' ? 1 : 0, stdout: '' }; // disable may fail (not installed)
    });
    assert.deepEqual(calls, ['systemctl disable --now bitmar-node.service', 'systemctl daemon-reload']);
    assert.throws(
      () => applyPlan(onlyRuns, () => ({ status: 5, stdout: '' })),
      (e) => isBitmarError(e, 'BITMAR_ERR_SERVICE_INSTALL') && /daemon-reload` exited with 5/.test(e.message),
    );
  });

  it('quotes Exec words and env values the way systemd parses them', () => {
    assert.equal(systemdQuote('/usr/local/lib/x.sh'), '/usr/local/lib/x.sh');
    assert.equal(systemdQuote('/opt/my dir/x.sh'), '"/opt/my dir/x.sh"');
    assert.equal(systemdQuote('/opt/100%/x'), '/opt/100%%/x');
    assert.equal(setEnvVar('#ROS_DISTRO=humble\nA=1\n', 'ROS_DISTRO', 'jazzy'), 'ROS_DISTRO=jazzy\nA=1\n');
    assert.equal(setEnvVar('A=1', 'BITMAR_ROS_WORKSPACE', '/home/j/my ws'), 'A=1\nBITMAR_ROS_WORKSPACE="/home/j/my ws"\n');
  });
});
