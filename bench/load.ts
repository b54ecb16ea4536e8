// Load benchmark of the whole node (issue 9, "Load"):
//   node --import tsx bench/load.ts [--minutes 10] [--fps 30] [--width 1280 --height 720] [--json] [-- <extra run flags>]
// Starts `bitmar-node run` as users run it (bin/bitmar-node.js, dist/ compiled from this checkout first; a child process) on its synthetic camera at the given frame
// rate and size, with its embedded MQTT broker and /metrics, for N minutes, and reports:
//   RSS over time (from /metrics every 5 s) and its growth after the first minute,
//   p50/p99 frame→first-token and frame→caption (each caption's latencyMs on MQTT),
//   drops by stage and reason, frames in, captions, CPU (process seconds / wall seconds).
// Bars (this machine, default model): p99 frame→first-token ≤ 50 ms, RSS growth ≤ 10 MB after the
// first minute, no drop except `sample/sampled_out`. Exit status 0 when every bar holds, 1 otherwise.
// The synthetic camera renders its frames inside the node, so its cost is part of the CPU figure
// (a real camera's driver or decoder would take its place). On a shared machine run it under nice
// and report the load average printed with the results.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { freePort } from '../test/mqtt/helpers/brokers.js';
import { REPO_ROOT, spawnCli } from '../test/helpers/spawn-node.js';

const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const args = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
const extra = dashDash >= 0 ? argv.slice(dashDash + 1) : [];
const num = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const minutes = num('--minutes', 10);
const fps = num('--fps', 30);
const width = num('--width', 1280);
const height = num('--height', 720);
const asJson = args.includes('--json');
const NODE_ID = 'bench-load';
const SCRAPE_MS = 5000;
const WARMUP_MS = 60_000;
/** Latencies of the first seconds (model and JIT warm-up, first batch) are left out of the percentiles. */
const LATENCY_WARMUP_MS = 10_000;

interface Sample {
  readonly atMs: number;
  readonly rssBytes: number;
  readonly heapBytes: number;
  /** ArrayBuffers and Buffers of the main thread (frames in flight, MQTT payloads). */
  readonly externalBytes: number;
  readonly cpuSeconds: number;
  readonly framesIn: number;
  readonly loopLagP99Ms: number;
  readonly loopLagMaxMs: number;
}

interface CaptionSample {
  readonly atMs: number;
  readonly encodeMs: number;
  readonly firstTokenMs: number;
  readonly captionMs: number;
  readonly cancelled: boolean;
}

/** Prometheus text → `name{labels}` → value (no histograms needed here). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Sum of every series of a metric. */
function sum(m: Map<string, number>, name: string): number {
  let s = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) s += v;
  return s;
}

/**
 * A prom-client default metric under the node's prefix: metrics.ts registers them with prefix
 * `bitmar_process_`, so they read `bitmar_process_process_resident_memory_bytes` today; this also
 * finds them once the prefix becomes `bitmar_`.
 */
function processMetric(m: Map<string, number>, name: string): number {
  return sum(m, `bitmar_process_${name}`) || sum(m, `bitmar_${name}`);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const MB = 1024 * 1024;
const fmt = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : '—');

/** node's own flags in `npm start` (package.json), so the run is the node as started there and by the service. */
const START_WORDS = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(/\s+/);
const START_NODE_FLAGS = START_WORDS.slice(1, START_WORDS.indexOf('bin/bitmar-node.js')); // between `node` and the entry

/** Compiles src/ into dist/ (what `npm install` and `npm run build` do), so the run measures this checkout. */
function buildDist(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', REPO_ROOT], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench:load: tsc failed:\n${r.stdout}${r.stderr}`);
}

async function main(): Promise<number> {
  const state = mkdtempSync(join(tmpdir(), 'bitmar-bench-load-'));
  const metricsPort = await freePort();
  const durationS = Math.round(minutes * 60);
  // The node as users run it (`npm start`: bin/bitmar-node.js → dist/), compiled from this checkout first.
  buildDist();
  const node = spawnCli(
    ['run', '--width', String(width), '--height', String(height), '--fps', String(fps), '--duration', String(durationS), '--mqtt-port', '0', '--metrics-port', String(metricsPort), '--state-dir', state, '--node-id', NODE_ID, ...extra],
    { BITMAR_LOG_LEVEL: 'warn' },
    join(REPO_ROOT, 'bin', 'bitmar-node.js'),
    START_NODE_FLAGS,
  );
  const stopChild = (): void => void node.child.kill('SIGINT');
  process.once('SIGINT', stopChild);
  const samples: Sample[] = [];
  const captions: CaptionSample[] = [];
  let lastMetrics = new Map<string, number>();
  let client: mqtt.MqttClient | null = null;
  let t0 = 0;
  try {
    const m = await node.waitFor(/embedded MQTT broker at (mqtt:\/\/[0-9.]+:\d+)/, 120_000);
    client = await mqtt.connectAsync(m[1]!, { protocolVersion: 4, clientId: 'bench-load-observer' });
    t0 = performance.now();
    client.on('message', (_topic, payload) => {
      const c = JSON.parse(payload.toString('utf8')) as { cancelled: boolean; latencyMs: { encode: number; frameToFirstToken: number; frameToCaption: number } };
      captions.push({ atMs: performance.now() - t0, encodeMs: c.latencyMs.encode, firstTokenMs: c.latencyMs.frameToFirstToken, captionMs: c.latencyMs.frameToCaption, cancelled: c.cancelled });
    });
    await client.subscribeAsync(`bitmar/${NODE_ID}/caption`, { qos: 1 });
    if (!asJson) console.log(`bench:load — ${width}×${height} at ${fps} fps for ${minutes} min (pid ${node.child.pid}); metrics every ${SCRAPE_MS / 1000} s`);

    const scrape = async (): Promise<void> => {
      try {
        const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        const mtr = parseMetrics(await res.text());
        lastMetrics = mtr;
        const s: Sample = {
          atMs: performance.now() - t0,
          rssBytes: processMetric(mtr, 'process_resident_memory_bytes'),
          heapBytes: processMetric(mtr, 'nodejs_heap_size_used_bytes'),
          externalBytes: processMetric(mtr, 'nodejs_external_memory_bytes'),
          cpuSeconds: processMetric(mtr, 'process_cpu_seconds_total'),
          framesIn: sum(mtr, 'bitmar_frames_in_total'),
          loopLagP99Ms: sum(mtr, 'bitmar_event_loop_lag_p99_seconds') * 1000,
          loopLagMaxMs: sum(mtr, 'bitmar_event_loop_lag_max_seconds') * 1000,
        };
        samples.push(s);
        if (!asJson && samples.length % 6 === 1) {
          const done = captions.filter((c) => !c.cancelled).length;
          console.log(`  ${fmt(s.atMs / 1000, 0).padStart(5)} s  RSS ${fmt(s.rssBytes / MB)} MB  heap ${fmt(s.heapBytes / MB)} MB  external ${fmt(s.externalBytes / MB)} MB  frames ${s.framesIn}  captions ${done}  loop lag p99 ${fmt(s.loopLagP99Ms)} ms, max ${fmt(s.loopLagMaxMs)} ms`);
        }
      } catch {
        // the node is stopping
      }
    };
    await scrape();
    const timer = setInterval(() => void scrape(), SCRAPE_MS);
    const code = await node.exited;
    clearInterval(timer);
    if (code !== 0) console.error(`bench:load: the node exited with ${String(code)}:\n${node.stderr().slice(-3000)}`);
  } finally {
    process.off('SIGINT', stopChild);
    await client?.endAsync();
    if (node.child.exitCode === null) node.child.kill('SIGKILL');
    rmSync(state, { recursive: true, force: true });
  }

  // ---- results --------------------------------------------------------------------------------
  const wallS = (samples.at(-1)?.atMs ?? 0) / 1000;
  // RSS moves with the GC's sawtooth, so growth compares medians of two windows of width W after
  // the warm-up minute: the first W and the last W (W = 60 s, or half of what is left of a short run).
  const afterWarmup = samples.filter((s) => s.atMs >= WARMUP_MS);
  const base = afterWarmup[0];
  const endMs = samples.at(-1)?.atMs ?? 0;
  const windowMs = Math.min(60_000, (endMs - WARMUP_MS) / 2);
  const median = (xs: Sample[]): number => percentile(xs.map((s) => s.rssBytes), 0.5);
  const rssGrowthMB = base ? (median(afterWarmup.filter((s) => s.atMs >= endMs - windowMs)) - median(afterWarmup.filter((s) => s.atMs <= WARMUP_MS + windowMs))) / MB : Number.NaN;
  const rssEndMB = base ? (Math.max(...afterWarmup.map((s) => s.rssBytes)) - base.rssBytes) / MB : Number.NaN;
  const rssSlopeMBPerMin = slope(afterWarmup.map((s) => [s.atMs / 60_000, s.rssBytes / MB]));
  const finals = captions.filter((c) => !c.cancelled && c.atMs >= LATENCY_WARMUP_MS);
  const firstToken = finals.map((c) => c.firstTokenMs).filter((v) => v >= 0);
  const toCaption = finals.map((c) => c.captionMs);
  const encode = finals.map((c) => c.encodeMs);
  const cpu = samples.length >= 2 ? (samples.at(-1)!.cpuSeconds - samples[0]!.cpuSeconds) / ((samples.at(-1)!.atMs - samples[0]!.atMs) / 1000) : Number.NaN;
  const drops: Record<string, number> = {};
  for (const [k, v] of lastMetrics) {
    const mm = /^bitmar_inputs_dropped_total\{stage="([^"]+)",reason="([^"]+)"\}$/.exec(k);
    if (mm && v > 0) drops[`${mm[1]}/${mm[2]}`] = v;
  }
  const framesIn = sum(lastMetrics, 'bitmar_frames_in_total');
  const otherDrops = Object.entries(drops).filter(([k]) => k !== 'sample/sampled_out');
  const bars = {
    firstTokenP99: percentile(firstToken, 0.99) <= 50,
    rssGrowth: rssGrowthMB <= 10,
    dropsOnlySampling: otherDrops.length === 0,
  };
  const result = {
    config: { minutes, fps, width, height, extra },
    wallSeconds: wallS,
    loadAverage: loadavg(),
    framesIn,
    captions: { final: captions.filter((c) => !c.cancelled).length, cancelled: captions.filter((c) => c.cancelled).length, measured: finals.length },
    latencyMs: {
      encode: { p50: percentile(encode, 0.5), p99: percentile(encode, 0.99) },
      frameToFirstToken: { p50: percentile(firstToken, 0.5), p99: percentile(firstToken, 0.99), max: Math.max(...firstToken) },
      frameToCaption: { p50: percentile(toCaption, 0.5), p99: percentile(toCaption, 0.99), max: Math.max(...toCaption) },
    },
    rss: {
      samplesMB: samples.filter((_, i) => i % 6 === 0).map((s) => [Math.round(s.atMs / 1000), Number((s.rssBytes / MB).toFixed(1))]),
      growthAfterFirstMinuteMB: rssGrowthMB,
      maxMinusMinuteOneMB: rssEndMB,
      slopeMBPerMinute: rssSlopeMBPerMin,
    },
    // After start-up (module loading and the first worker starts fall in the first window).
    eventLoopLagMs: {
      maxP99: Math.max(...samples.filter((x) => x.atMs >= LATENCY_WARMUP_MS).map((x) => x.loopLagP99Ms)),
      max: Math.max(...samples.filter((x) => x.atMs >= LATENCY_WARMUP_MS).map((x) => x.loopLagMaxMs)),
    },
    cpuCores: cpu,
    drops,
    bars,
  };
  if (asJson) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const lat = result.latencyMs;
    console.log(`\nresults (${fmt(wallS, 0)} s, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}):`);
    console.log(`  frames in ${framesIn} (${fmt(framesIn / Math.max(1, wallS))} fps), captions ${result.captions.final} final + ${result.captions.cancelled} cancelled (${finals.length} measured after ${LATENCY_WARMUP_MS / 1000} s)`);
    console.log(`  frame→first token  p50 ${fmt(lat.frameToFirstToken.p50)} ms  p99 ${fmt(lat.frameToFirstToken.p99)} ms  max ${fmt(lat.frameToFirstToken.max)} ms   [bar p99 ≤ 50 ms: ${bars.firstTokenP99 ? 'PASS' : 'FAIL'}]`);
    console.log(`  frame→caption      p50 ${fmt(lat.frameToCaption.p50)} ms  p99 ${fmt(lat.frameToCaption.p99)} ms  max ${fmt(lat.frameToCaption.max)} ms`);
    console.log(`  encode (batch)     p50 ${fmt(lat.encode.p50)} ms  p99 ${fmt(lat.encode.p99)} ms`);
    if (base === undefined) console.log('  RSS after minute 1: n/a (run at least 2 minutes)   [bar ≤ 10 MB: n/a]');
    else console.log(`  RSS after minute 1: growth ${fmt(rssGrowthMB)} MB (median of the last ${fmt(windowMs / 1000, 0)} s − median of the first ${fmt(windowMs / 1000, 0)} s), max − first ${fmt(rssEndMB)} MB, slope ${fmt(rssSlopeMBPerMin, 2)} MB/min   [bar ≤ 10 MB: ${bars.rssGrowth ? 'PASS' : 'FAIL'}]`);
    console.log(`  RSS every 30 s (s:MB): ${result.rss.samplesMB.map(([t, r]) => `${t}:${r}`).join('  ')}`);
    console.log(`  event-loop lag after ${LATENCY_WARMUP_MS / 1000} s: worst 5-s p99 ${fmt(result.eventLoopLagMs.maxP99)} ms, max ${fmt(result.eventLoopLagMs.max)} ms`);
    console.log(`  CPU ${fmt(cpu, 2)} cores (node process)`);
    console.log(`  drops: ${Object.entries(drops).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}   [bar only sample/sampled_out: ${bars.dropsOnlySampling ? 'PASS' : 'FAIL'}]`);
    if (drops['queue/stale'] !== undefined) console.log('    (queue/stale counts both batches superseded by a newer one — latest wins — and batches older than maxFrameAgeMs)');
  }
  return Object.values(bars).every(Boolean) && base !== undefined ? 0 : 1;
}

process.exitCode = await main();
