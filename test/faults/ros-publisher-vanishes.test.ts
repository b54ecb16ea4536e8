/**
 * Fault: the ROS 2 camera publisher vanishes while the node captions, and comes back (issue 9,
 * "Faults"). ROS 2 runs through FakeRclnodejsForTests, a TEST DOUBLE of rclnodejs (rclnodejs itself
 * needs a sourced ROS 2 and its native addon): fixtures/vanishing-ros-publisher.ts makes
 * `import('rclnodejs')` load it, and its publisher feeds raw sensor_msgs/msg/Image CDR to the node's
 * /image_raw subscription at 10 fps except while a marker file exists. Everything from the guard on
 * is the node's own code. The node must say that no frames arrive (log and metric) within the input
 * silence threshold (5 s), keep running, and caption the publisher's frames again once it is back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../mqtt/helpers/brokers.js';
import { RCLNODEJS_JS_MISSING } from '../ros2/fake-rclnodejs-for-tests.js';
import { killNow, spawnFaultyNode, terminalCaptions } from './fault-node.js';

/** `[seq] text — ms, frame <id>` → frame ids of the final captions printed so far. */
const captionedFrames = (stdout: string): number[] =>
  [...stdout.matchAll(/^\[\d+\] .*?  — [0-9.]+ ms, frame (\d+)/gmu)].filter((m) => !m[0].includes('(cancelled)')).map((m) => Number(m[1]));

/** pino JSON lines on stderr with this message prefix. */
const logLines = (stderr: string, prefix: string): { level: number; msg: string; silentMs?: number }[] =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; silentMs?: number })
    .filter((r) => typeof r.msg === 'string' && r.msg.startsWith(prefix));

async function until(what: string, cond: () => boolean, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('faults: a ROS 2 camera publisher that vanishes and comes back', function () {
  this.timeout(300_000);
  let dir: string;
  before(function () {
    if (RCLNODEJS_JS_MISSING) {
      console.log(`      skipped: ${RCLNODEJS_JS_MISSING}`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'bitmar-fault-ros-'));
  });
  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('notices the silence (log, metric), keeps running, captions again when frames return, exits 0', async () => {
    const marker = join(dir, 'publisher-gone');
    const metricsPort = await freePort();
    const node = spawnFaultyNode(
      ['run', '--source', 'ros2', '--no-mqtt', '--metrics-port', String(metricsPort), '--state-dir', join(dir, 'state'), '--duration', '200'],
      { BITMAR_FAULT_ROS_PUBLISHER: marker, ROS_DISTRO: 'humble', AMENT_PREFIX_PATH: '/opt/ros/humble', BITMAR_LOG_LEVEL: 'info' },
    );
    const context = (): string => `stdout:\n${node.stdout().slice(-2000)}\nstderr:\n${node.stderr().slice(-3000)}`;
    try {
      await until('three captions of ROS 2 frames', () => captionedFrames(node.stdout()).length >= 3, 120_000, context);
      assert.match(node.stdout(), /frames from ROS 2 \/image_raw/);
      assert.equal(await metric(metricsPort, 'bitmar_input_silent'), 0);

      // The publisher goes away.
      writeFileSync(marker, '');
      const goneAt = Date.now();
      await until('the node to say that no frames arrive', () => logLines(node.stderr(), 'no frames for').length > 0, 30_000, context);
      const noticedAfterMs = Date.now() - goneAt;
      const silent = logLines(node.stderr(), 'no frames for')[0]!;
      assert.equal(silent.level, 40, 'a warning');
      assert.match(silent.msg, /^no frames for 5\.\d s since frame \d+ from \/image_raw; still listening/);
      assert.ok(noticedAfterMs >= 4500 && noticedAfterMs < 20_000, `noticed after ${noticedAfterMs} ms (threshold 5 s)`);
      assert.equal(await metric(metricsPort, 'bitmar_input_silent'), 1);
      assert.equal(await metric(metricsPort, 'bitmar_input_silences_total'), 1);

      // Still running, saying nothing more while the silence lasts, and captioning nothing new.
      const lastBefore = Math.max(...captionedFrames(node.stdout()));
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(node.child.exitCode, null, `the node exited during the silence\n${context()}`);
      assert.equal(logLines(node.stderr(), 'no frames for').length, 1, 'one warning per silence');
      assert.equal(Math.max(...captionedFrames(node.stdout())), lastBefore);

      // The publisher is back: new frames are captioned, the node says so.
      unlinkSync(marker);
      await until('captions of frames sent after the publisher came back', () => Math.max(...captionedFrames(node.stdout())) > lastBefore + 2, 60_000, context);
      await until('the node to say that frames are back', () => logLines(node.stderr(), 'frames again').length > 0, 10_000, context);
      const back = logLines(node.stderr(), 'frames again')[0]!;
      assert.match(back.msg, /^frames again from \/image_raw after \d+\.\d s without$/);
      assert.ok(back.silentMs! >= 5000, `silence of ${back.silentMs} ms`);
      assert.equal(await metric(metricsPort, 'bitmar_input_silent'), 0);

      node.child.kill('SIGINT');
      const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.equal(code, 0, `exit ${String(code)}\n${context()}`);
      // Captions stay numbered in order across the silence.
      const ids = terminalCaptions(node.stdout()).map((c) => c.seq);
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    } finally {
      killNow(node);
    }
  });
});
