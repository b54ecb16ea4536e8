// Child-process probe for guard.test.ts (run with node --import tsx): loads every ROS 2 / MCAP module of the node and calls the
// guard, with a loader hook that records (and refuses) any resolution of rclnodejs. Prints JSON.
import { register } from 'node:module';
import { createRequire } from 'node:module';

const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (specifier === 'rclnodejs' || specifier.startsWith('rclnodejs/') || specifier.includes('/node_modules/rclnodejs/')) {
    appendFileSync(process.env.RCLNODEJS_PROBE_LOG, specifier + '\\n');
    throw new Error('rclnodejs import refused by the test hook');
  }
  return next(specifier, context);
}`;
register('data:text/javascript,' + encodeURIComponent(hook));

const root = new URL('../../', import.meta.url);
const modules = [
  'src/ros2/guard.ts',
  'src/ros2/transport.ts',
  'src/sources/ros2/ros2-source.ts',
  'src/sinks/ros2/ros2-sink.ts',
  'src/sources/bag/bag-source.ts',
  'src/sinks/recorder/mcap-recorder.ts',
];
for (const m of modules) await import(new URL(m, root).href);
const { loadRclnodejs } = await import(new URL('src/ros2/guard.ts', root).href);
const results = [];
for (const argv of [['node', 'bitmar-node', 'run'], ['node', 'bitmar-node', 'run', '--ros2']]) {
  results.push(await loadRclnodejs(process.env, argv));
}
const cjs = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('rclnodejs'));
process.stdout.write(JSON.stringify({ results: results.map((r) => ({ ok: r.ok, required: r.required, reason: r.reason })), cjs }));
