/**
 * The Prometheus metrics sink (src/sinks/metrics/metrics.ts): worker restarts, fed as run.ts feeds
 * them — a real image decode worker killed, its pool's onRestart handing a `worker` event to the
 * sink — and read back from the /metrics text.
 */
import assert from 'node:assert/strict';
import type { WorkerEvent } from '../../../src/pipeline/events.js';
import { NodeMetrics } from '../../../src/sinks/metrics/metrics.js';
import { DecodePool } from '../../../src/sources/image/decode-pool.js';
import { encodePpm } from '../../../src/sources/image/decode.js';

/** The value of the sample `name{labels}` in the /metrics text (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('NodeMetrics', () => {
  it('counts image decode worker restarts as bitmar_worker_restarts_total{worker="image-decode"}', async () => {
    const metrics = new NodeMetrics();
    const server = await metrics.serve('127.0.0.1', 0);
    const restarted: WorkerEvent[] = [];
    let told: (() => void) | undefined;
    // As run.ts wires it.
    const pool = new DecodePool({
      name: 'bitmar-image-decode',
      onRestart: (r) => {
        const worker: WorkerEvent = { worker: 'image-decode', state: 'restarted', restarts: r.restarts, reason: r.reason, lost: r.lost };
        restarted.push(worker);
        metrics.observe({ type: 'worker', worker });
        told?.();
      },
    });
    const scrape = async (): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      assert.equal(res.status, 200);
      return res.text();
    };
    const killWorker = async (): Promise<void> => {
      const restart = new Promise<void>((resolve) => (told = resolve));
      await pool.threads()[0]!.terminate(); // as a crash or an out-of-memory kill would
      await restart;
    };
    const image = encodePpm({ width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(90) });
    try {
      const before = await scrape();
      assert.match(before, /^# TYPE bitmar_worker_restarts_total counter$/m);
      assert.equal(sample(before, 'bitmar_worker_restarts_total{worker="image-decode"}'), undefined);

      assert.equal((await pool.decode(image)).width, 4); // the worker is up and answered
      await killWorker();
      assert.equal(sample(await scrape(), 'bitmar_worker_restarts_total{worker="image-decode"}'), 1);

      assert.equal((await pool.decode(image)).width, 4, 'the restarted worker decodes');
      await killWorker();
      const text = await scrape();
      assert.equal(sample(text, 'bitmar_worker_restarts_total{worker="image-decode"}'), 2);
      assert.equal(pool.stats().restarts, 2, 'the metric agrees with the pool');
      assert.deepEqual(
        restarted.map((w) => [w.restarts, w.lost, w.reason]),
        [
          [1, 0, 'exit code 1'],
          [2, 0, 'exit code 1'],
        ],
      );
    } finally {
      await pool.close();
      await server.close();
      metrics.dispose();
    }
  });

  it('labels restarts by worker, so other workers can report theirs', async () => {
    const metrics = new NodeMetrics();
    try {
      const ev = (worker: string, restarts: number) => ({ type: 'worker' as const, worker: { worker, state: 'restarted' as const, restarts, reason: 'exit code 1', lost: 1 } });
      metrics.observe(ev('image-decode', 1));
      metrics.observe(ev('foxglove-preview', 1));
      metrics.observe(ev('image-decode', 2));
      const text = await metrics.text();
      assert.equal(sample(text, 'bitmar_worker_restarts_total{worker="image-decode"}'), 2);
      assert.equal(sample(text, 'bitmar_worker_restarts_total{worker="foxglove-preview"}'), 1);
    } finally {
      metrics.dispose();
    }
  });

  it('reports event-loop lag as the delay beyond the monitor\'s 10 ms timer: ~0 when idle, ~0.2 s after a 200 ms block', async () => {
    const metrics = new NodeMetrics();
    try {
      await metrics.text(); // starts a fresh window
      await new Promise((r) => setTimeout(r, 300));
      const idle = sample(await metrics.text(), 'bitmar_event_loop_lag_p99_seconds');
      // The raw histogram holds whole timer intervals (≥ 10 ms even when idle).
      assert.ok(idle !== undefined && idle < 0.008, `idle p99 lag ${String(idle)} s`);
      await new Promise((r) => setTimeout(r, 50));
      const until = performance.now() + 200;
      while (performance.now() < until) {
        // block the loop
      }
      await new Promise((r) => setTimeout(r, 30));
      const max = sample(await metrics.text(), 'bitmar_event_loop_lag_max_seconds');
      assert.ok(max !== undefined && max >= 0.185 && max < 0.3, `max lag ${String(max)} s`);
    } finally {
      metrics.dispose();
    }
  });
});
