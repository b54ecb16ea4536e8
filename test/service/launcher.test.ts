/**
 * systemd/bitmar-node-launch.sh as installed: sources a workspace, says why ROS 2 is off, passes
 * BITMAR_RUN_ARGS, exec's node (so node keeps the launcher's PID, the unit's main PID), and exits 78
 * on a configuration it cannot run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { renderLauncher } from '../../src/service/installer.js';

const TEMPLATE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'systemd', 'bitmar-node-launch.sh'), 'utf8');

describe('systemd/bitmar-node-launch.sh', function () {
  this.timeout(20_000);
  let dir = '';
  let launcher = '';
  let entry = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bitmar-launch-'));
    // A stand-in for node: reports its PID, arguments and what the sourced scripts set.
    const fakeNode = join(dir, 'node');
    writeFileSync(fakeNode, '#!/bin/sh\necho "pid=$$"\necho "args=$*"\necho "ws=${WS_SOURCED:-no} distro=${ROS_DISTRO:-unset}"\n', { mode: 0o755 });
    entry = join(dir, 'bitmar-node.js');
    writeFileSync(entry, '');
    launcher = join(dir, 'bitmar-node-launch.sh');
    writeFileSync(launcher, renderLauncher(TEMPLATE, { nodePath: fakeNode, entryPath: entry }), { mode: 0o755 });
    mkdirSync(join(dir, 'ws', 'install'), { recursive: true });
    writeFileSync(join(dir, 'ws', 'install', 'setup.bash'), 'export WS_SOURCED=yes\n');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  function launch(env: NodeJS.ProcessEnv) {
    // Run through a shell that prints the launcher's PID first, then exec's it.
    const result = spawnSync('sh', ['-c', 'echo "launcher=$$"; exec "$0"', launcher], {
      env: { PATH: '/usr/bin:/bin', ...env },
      encoding: 'utf8',
    });
    const lines = result.stdout.trim().split('\n');
    const value = (key: string): string | undefined => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
    return { status: result.status, stderr: result.stderr, value };
  }

  it('sources the workspace, passes BITMAR_RUN_ARGS and exec\'s node in its own PID', () => {
    const run = launch({ BITMAR_ROS_WORKSPACE: join(dir, 'ws'), BITMAR_RUN_ARGS: '--config /etc/bitmar-node/b.yaml *' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.value('args'), `--max-semi-space-size=2 ${entry} run --config /etc/bitmar-node/b.yaml *`, 'split on spaces, never globbed');
    assert.match(run.value('ws') ?? '', /^yes distro=unset$/);
    assert.equal(run.value('pid'), run.value('launcher'), 'node must replace the launcher (exec), to be the main PID');
  });

  it('starts without ROS 2, saying why, when the distribution is not installed', () => {
    const run = launch({ ROS_DISTRO: 'nosuchdistro' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /ROS_DISTRO=nosuchdistro but \/opt\/ros\/nosuchdistro\/setup\.bash does not exist: starting without ROS 2/);
    assert.match(run.value('ws') ?? '', /distro=unset$/);
  });

  it('exits 78 (no restart) when node or the entry point is missing', () => {
    const noNode = launch({ BITMAR_NODE: join(dir, 'missing-node') });
    assert.equal(noNode.status, 78);
    assert.match(noNode.stderr, /node not found/);
    const noEntry = launch({ BITMAR_ENTRY: join(dir, 'missing.js') });
    assert.equal(noEntry.status, 78);
    assert.match(noEntry.stderr, /missing\.js not found/);
  });
});
