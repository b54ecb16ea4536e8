/**
 * The guard in front of rclnodejs: the decision table, that the importer only runs when allowed,
 * and — in a child process with a loader hook that records every resolution of rclnodejs — that
 * loading all ROS 2 / MCAP modules and calling the guard without ROS 2 never imports it, while the
 * same hook does catch an import when the environment says ROS 2 is there (so the probe works).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadRclnodejs, ros2Available, splitRosArgs } from '../../src/ros2/guard.js';
import { FakeRclnodejsForTests, RCLNODEJS_JS_MISSING } from './fake-rclnodejs-for-tests.js';

const SOURCED = { ROS_DISTRO: 'jazzy', AMENT_PREFIX_PATH: '/opt/ros/jazzy' };
const ARGV = ['node', 'bitmar-node', 'run'];

describe('ros2/guard: ros2Available', () => {
  it('is on when ROS 2 is sourced, off with one line otherwise', () => {
    assert.deepEqual(ros2Available(SOURCED, ARGV), { ok: true, required: false, reason: 'ROS 2 on: jazzy is sourced (ROS_DISTRO and AMENT_PREFIX_PATH set)' });
    const off = ros2Available({}, ARGV);
    assert.equal(off.ok, false);
    assert.equal(off.required, false);
    assert.ok(!off.reason.includes('\n') && off.reason.startsWith('ROS 2 off:'), off.reason);
    assert.equal(ros2Available({ ROS_DISTRO: 'jazzy' }, ARGV).ok, false, 'AMENT_PREFIX_PATH missing');
    assert.equal(ros2Available({ ROS_DISTRO: ' ', AMENT_PREFIX_PATH: '/x' }, ARGV).ok, false, 'blank counts as unset');
  });

  it('--ros2 forces it on with a partial environment, and refuses (required) with none', () => {
    assert.deepEqual(ros2Available({ ROS_DISTRO: 'humble' }, [...ARGV, '--ros2']).ok, true);
    assert.equal(ros2Available({ AMENT_PREFIX_PATH: '/opt/ros/humble' }, ARGV, 'on').ok, true);
    const refused = ros2Available({}, [...ARGV, '--ros2']);
    assert.equal(refused.ok, false);
    assert.equal(refused.required, true);
    assert.match(refused.reason, /source \/opt\/ros/);
  });

  it('--no-ros2 and mode off win; flags after --ros-args are ROS arguments, not ours', () => {
    assert.equal(ros2Available(SOURCED, [...ARGV, '--no-ros2']).ok, false);
    assert.equal(ros2Available(SOURCED, ARGV, 'off').ok, false);
    assert.equal(ros2Available({ ROS_DISTRO: 'jazzy' }, [...ARGV, '--ros-args', '--ros2']).ok, false);
  });

  it('splits ROS arguments the way rcl does', () => {
    const argv = ['node', 'x', 'run', '--ros-args', '-r', '__node:=cam', '--params-file', '/p.yaml', '--', '--frames', '3', '--ros-args', '-p', 'a:=1'];
    assert.deepEqual(splitRosArgs(argv), {
      appArgs: ['node', 'x', 'run', '--frames', '3'],
      rosArgs: ['--ros-args', '-r', '__node:=cam', '--params-file', '/p.yaml', '--ros-args', '-p', 'a:=1'],
    });
  });
});

describe('ros2/guard: loadRclnodejs', () => {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  it('never calls the importer when ROS 2 is off', async () => {
    let calls = 0;
    const importer = async (): Promise<unknown> => {
      calls++;
      return new FakeRclnodejsForTests();
    };
    const r = await loadRclnodejs({}, ARGV, { importer });
    assert.equal(r.ok, false);
    assert.equal(calls, 0);
    const again = await loadRclnodejs({}, [...ARGV, '--ros2'], { importer });
    assert.equal(again.ok, false);
    assert.equal(calls, 0);
  });

  it('imports once allowed, and checks again on every call', async () => {
    let calls = 0;
    const importer = async (): Promise<unknown> => {
      calls++;
      return { default: new FakeRclnodejsForTests() };
    };
    const env: Record<string, string | undefined> = { ...SOURCED };
    const r = await loadRclnodejs(env, ARGV, { importer });
    assert.equal(r.ok, true);
    assert.equal(calls, 1);
    delete env.AMENT_PREFIX_PATH;
    assert.equal((await loadRclnodejs(env, ARGV, { importer })).ok, false);
    assert.equal(calls, 1);
  });

  it('turns an import failure or a foreign module into one line, never a throw', async () => {
    const failing = await loadRclnodejs(SOURCED, ARGV, {
      importer: async () => {
        throw new Error('librcl.so: cannot open shared object file\nstack…');
      },
    });
    assert.equal(failing.ok, false);
    assert.match(failing.reason, /^ROS 2 off: rclnodejs could not be loaded \(librcl\.so: cannot open shared object file\)/);
    const foreign = await loadRclnodejs(SOURCED, ARGV, { importer: async () => ({ init: 1 }) });
    assert.equal(foreign.ok, false);
  });
});

describe('ros2/guard: nothing imports rclnodejs without ROS 2 (child process + loader hook)', function () {
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`    skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
  });
  this.timeout(60_000);
  const run = promisify(execFile);
  const probe = async (env: Record<string, string>): Promise<{ log: string[]; out: { results: { ok: boolean; required: boolean; reason: string }[]; cjs: string[] } }> => {
    const dir = mkdtempSync(join(tmpdir(), 'bitmar-guard-'));
    const log = join(dir, 'imports.log');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ROS_DISTRO' && k !== 'AMENT_PREFIX_PATH'));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', new URL('./guard-probe.ts', import.meta.url).pathname], {
      env: { ...clean, ...env, RCLNODEJS_PROBE_LOG: log },
      cwd: new URL('../../', import.meta.url).pathname,
    });
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    return { log: lines, out: JSON.parse(stdout) };
  };

  it('without the environment: modules load, the guard says no, rclnodejs is never resolved', async () => {
    const { log, out } = await probe({});
    assert.deepEqual(log, []);
    assert.deepEqual(out.cjs, []);
    assert.deepEqual(
      out.results.map((r) => [r.ok, r.required]),
      [
        [false, false],
        [false, true],
      ],
    );
  });

  it('with the environment the same probe sees the import (the hook works)', async () => {
    const { log, out } = await probe(SOURCED);
    assert.ok(log.includes('rclnodejs'), `hook log: ${log.join(', ')}`);
    assert.equal(out.results[0]!.ok, false, 'the hook refused it');
    assert.match(out.results[0]!.reason, /could not be loaded/);
  });

  it('src/ has exactly one import of rclnodejs, in src/ros2/guard.ts', () => {
    const root = new URL('../../src/', import.meta.url).pathname;
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk(root);
    const offenders = files.filter((f) => /from\s+['"]rclnodejs|import\(\s*['"]rclnodejs|require\(\s*['"]rclnodejs/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(offenders, []);
    const mentions = files.filter((f) => /['"]rclnodejs['"]/.test(readFileSync(f, 'utf8'))).map((f) => f.slice(root.length));
    assert.deepEqual(mentions, ['ros2/guard.ts']);
  });
});
