import assert from 'node:assert/strict';
import { map, take, toArray, firstValueFrom, lastValueFrom } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { syntheticCamera, syntheticScenes } from '../../../src/sources/synthetic/synthetic-camera.js';
import { captionOf, sceneViolations } from '../../../src/sources/synthetic/shapes-world.js';
import type { DropEvent, Frame } from '../../../src/types.js';

function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
}

describe('synthetic-camera', () => {
  describe('syntheticScenes', () => {
    for (const [width, height] of [[320, 240], [160, 120], [1280, 720], [160, 720], [1280, 120]] as const) {
      it(`keeps every rule on every frame while objects move (${width}×${height})`, () => {
        let previous: ReturnType<typeof syntheticScenes> extends Generator<infer T> ? T : never = undefined as never;
        let newScenes = 0;
        let moves = 0;
        for (const step of syntheticScenes({ width, height, fps: 10, seed: 5, sceneChangeEverySec: 20, maxFrames: 1500 })) {
          assert.deepEqual(sceneViolations(step.scene, width / height), [], `frame ${step.index}`);
          assert.equal(step.caption, captionOf(step.scene));
          if (step.isNewScene) newScenes++;
          else {
            // smooth: the same objects, each moved at most 3 px (the default max speed)
            assert.equal(step.scene.objects.length, previous.scene.objects.length);
            step.scene.objects.forEach((o, i) => {
              const p = previous.scene.objects[i]!;
              assert.equal(o.shape, p.shape);
              assert.equal(o.colour, p.colour);
              const d = Math.hypot((o.x - p.x) * width, (o.y - p.y) * height);
              assert.ok(d <= 3 + 1e-9, `moved ${d}px`);
              if (d > 0) moves++;
            });
          }
          previous = step;
        }
        assert.ok(newScenes >= 4 && newScenes <= 20, `${newScenes} scenes in 150 s at one per ~20 s`);
        assert.ok(moves > 1000, `objects moved ${moves} times`);
      });
    }

    it('is reproducible under a seed', () => {
      const run = (seed: number): string[] => [...syntheticScenes({ seed, maxFrames: 300 })].map((s) => JSON.stringify(s.scene));
      assert.deepEqual(run(3), run(3));
      assert.notDeepEqual(run(3), run(4));
    });

    it('rejects options out of range, naming each', () => {
      assert.throws(() => syntheticScenes({ width: 100, fps: 0 }).next(), /width 100 .*fps 0/);
      assert.throws(() => syntheticCamera({ height: 1000 }), RangeError);
    });
  });

  describe('syntheticCamera', () => {
    it('emits one frame per 1/fps on the scheduler, then completes at maxFrames', () => {
      const ts = testScheduler();
      ts.run(({ expectObservable }) => {
        const frames = syntheticCamera({ fps: 10, maxFrames: 3, width: 160, height: 120 }, ts);
        expectObservable(frames.pipe(map((f) => `${f.id}@${f.stampNs}`))).toBe('a 99ms b 99ms (c|)', {
          a: '0@0',
          b: '1@100000000',
          c: '2@200000000',
        });
      });
    });

    it('never completes without maxFrames; unsubscribing stops it', () => {
      const ts = testScheduler();
      ts.run(({ expectObservable }) => {
        const frames = syntheticCamera({ fps: 5, width: 160, height: 120 }, ts).pipe(map((f) => f.id));
        expectObservable(frames, '^ 1000ms !').toBe('0 199ms 1 199ms 2 199ms 3 199ms 4 199ms 5', ['0', '1', '2', '3', '4', '5'].reduce((m, k) => ({ ...m, [k]: Number(k) }), {}));
      });
    });

    it('frames carry RGB8 data, source, frame id and the truth caption; cold and reproducible', async () => {
      const ts = testScheduler();
      const grab = (): Promise<Frame[]> => {
        let out: Promise<Frame[]> | undefined;
        ts.run(() => {
          out = firstValueFrom(syntheticCamera({ fps: 30, seed: 9, maxFrames: 40 }, ts).pipe(take(40), toArray()));
        });
        return out!;
      };
      const a = await grab();
      const b = await grab();
      assert.equal(a.length, 40);
      for (const [i, f] of a.entries()) {
        assert.equal(f.id, i);
        assert.equal(f.source, 'synthetic');
        assert.equal(f.frameId, 'synthetic_camera');
        assert.equal(f.width, 320);
        assert.equal(f.data.length, 320 * 240 * 3);
        assert.ok(f.truth && f.truth.caption.startsWith('a '));
        assert.deepEqual(f.data, b[i]!.data);
      }
      // consecutive frames stay similar (same scene, objects moved a few pixels, new noise)
      let diff = 0;
      for (let k = 0; k < a[0]!.data.length; k++) diff += Math.abs(a[0]!.data[k]! - a[1]!.data[k]!);
      assert.ok(diff / a[0]!.data.length < 20);
    });
  });

  describe('syntheticCamera in real time (render worker)', function () {
    this.timeout(60_000);

    const inThread = async (options: Parameters<typeof syntheticCamera>[0], n: number): Promise<Frame[]> => {
      const ts = testScheduler();
      let out: Promise<Frame[]> | undefined;
      ts.run(() => {
        out = firstValueFrom(syntheticCamera(options, ts).pipe(take(n), toArray()));
      });
      return out!;
    };

    it('gives the same seeded frames as the in-thread camera, buffers transferred whole', async () => {
      const options = { fps: 30, seed: 9, maxFrames: 12, width: 640, height: 360 };
      const drops: DropEvent[] = [];
      const t0 = Date.now();
      const got = await lastValueFrom(syntheticCamera({ ...options, onDrop: (d) => drops.push(d) }).pipe(toArray()));
      const want = await inThread(options, 12);
      assert.deepEqual(drops, []);
      assert.equal(got.length, 12);
      for (const [i, f] of got.entries()) {
        assert.equal(f.id, i);
        assert.equal(f.source, 'synthetic');
        assert.equal(f.frameId, 'synthetic_camera');
        assert.equal(f.width, 640);
        assert.equal(f.truth?.caption, want[i]!.truth?.caption);
        assert.ok(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength).equals(want[i]!.data), `frame ${i} bytes`);
        // The whole buffer is the frame's, so the inference worker can take it without a copy.
        assert.equal(f.data.byteOffset, 0);
        assert.equal(f.data.buffer.byteLength, 640 * 360 * 3);
        const stampMs = Number(f.stampNs / 1_000_000n);
        assert.ok(stampMs >= t0 - 5 && stampMs <= Date.now() + 5, `stamp ${stampMs} is wall-clock time`);
        if (i > 0) assert.ok(f.receivedMs >= got[i - 1]!.receivedMs);
      }
      // 1/fps apart in the worker's clock (12 frames at 30 fps: about 367 ms; generous for a loaded machine)
      const span = Number(got[11]!.stampNs - got[0]!.stampNs) / 1e6;
      assert.ok(span >= 300 && span < 5000, `12 frames spanned ${span} ms`);
    });

    it('renderInWorker: false renders in this thread on the real clock, same frames', async () => {
      const got = await lastValueFrom(syntheticCamera({ fps: 60, seed: 4, maxFrames: 5, renderInWorker: false }).pipe(toArray()));
      const want = await inThread({ fps: 60, seed: 4 }, 5);
      assert.deepEqual(got.map((f) => f.data), want.map((f) => f.data));
    });

    it('bounds the frames in flight: a slow consumer makes it skip frames and count each drop', async () => {
      const drops: DropEvent[] = [];
      const ids: number[] = [];
      const frames = syntheticCamera({ fps: 60, seed: 2, maxFrames: 60, width: 160, height: 120, onDrop: (d) => drops.push(d) });
      await lastValueFrom(
        frames.pipe(
          map((f) => {
            ids.push(f.id);
            const until = performance.now() + 60; // a consumer that blocks the loop for 60 ms a frame
            while (performance.now() < until);
            return f;
          }),
          toArray(),
        ),
      );
      assert.ok(drops.length > 0, 'frames were skipped');
      assert.ok(drops.every((d) => d.stage === 'synthetic' && d.reason === 'queue_full'), JSON.stringify(drops[0]));
      assert.equal(ids.length + drops.length, 60, 'every tick is a frame or a counted drop');
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in order');
      // With the loop blocked 60 ms a frame at 60 fps, most frames must be skipped, not queued.
      assert.ok(ids.length < 40, `${ids.length} frames delivered`);
    });

    it('unsubscribing stops the worker (the process is free to exit)', async () => {
      const workers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Worker' || r === 'MessagePort').length;
      const before = workers();
      const frames = await firstValueFrom(syntheticCamera({ fps: 30, width: 160, height: 120 }).pipe(take(3), toArray()));
      assert.equal(frames.length, 3);
      for (let i = 0; i < 50 && workers() > before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(workers(), before);
    });

    it('maxFrames 0 completes at once', async () => {
      assert.deepEqual(await lastValueFrom(syntheticCamera({ maxFrames: 0 }).pipe(toArray())), []);
    });
  });
});
