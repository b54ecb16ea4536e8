import assert from 'node:assert/strict';
import { Observable, Subject, of } from 'rxjs';
import { processLatest } from '../../src/pipeline/process-latest.js';

/** A job that completes when told to, recording starts and cancellations. */
function jobs() {
  const started: number[] = [];
  const cancelled: number[] = [];
  const finishers = new Map<number, () => void>();
  const project = (n: number) =>
    new Observable<number>((sub) => {
      let finished = false;
      started.push(n);
      finishers.set(n, () => {
        finished = true;
        sub.next(n * 10);
        sub.complete();
      });
      return () => {
        if (!finished) cancelled.push(n);
      };
    });
  return { started, cancelled, finish: (n: number) => finishers.get(n)!(), project };
}

describe('processLatest', () => {
  it('processes the newest pending item next and drops older ones as superseded', () => {
    const j = jobs();
    const src = new Subject<number>();
    const out: number[] = [];
    const drops: [number, string][] = [];
    src.pipe(processLatest(j.project, { limit: 8, onDrop: (n, r) => drops.push([n, r]) })).subscribe((v) => out.push(v));
    src.next(1);
    src.next(2);
    src.next(3);
    assert.deepEqual(j.started, [1]);
    j.finish(1);
    assert.deepEqual(j.started, [1, 3]);
    assert.deepEqual(drops, [[2, 'superseded']]);
    j.finish(3);
    assert.deepEqual(out, [10, 30]);
  });

  it('bounds the pending queue, dropping the oldest as queue_full', () => {
    const j = jobs();
    const src = new Subject<number>();
    const drops: [number, string][] = [];
    src.pipe(processLatest(j.project, { limit: 2, onDrop: (n, r) => drops.push([n, r]) })).subscribe();
    [1, 2, 3, 4, 5].forEach((n) => src.next(n));
    assert.deepEqual(drops, [
      [2, 'queue_full'],
      [3, 'queue_full'],
    ]);
  });

  it('cancels the running item on a newer one when asked', () => {
    const j = jobs();
    const src = new Subject<number>();
    src.pipe(processLatest(j.project, { limit: 4, onDrop: () => {}, cancelRunningOnNewer: () => true })).subscribe();
    src.next(1);
    src.next(2);
    assert.deepEqual(j.cancelled, [1]);
    assert.deepEqual(j.started, [1, 2]);
  });

  it('skips stale items', () => {
    const j = jobs();
    const src = new Subject<number>();
    const drops: [number, string][] = [];
    src.pipe(processLatest(j.project, { limit: 4, onDrop: (n, r) => drops.push([n, r]), isStale: (n) => n % 2 === 0 })).subscribe();
    src.next(2);
    src.next(3);
    assert.deepEqual(j.started, [3]);
    assert.deepEqual(drops, [[2, 'stale']]);
  });

  it('completes after the source completes and the running item finishes; handles sync inner', () => {
    const src = new Subject<number>();
    let completed = false;
    const out: number[] = [];
    src.pipe(processLatest((n: number) => of(n + 1), { limit: 2, onDrop: () => {} })).subscribe({ next: (v) => out.push(v), complete: () => (completed = true) });
    src.next(1);
    src.next(2);
    src.complete();
    assert.deepEqual(out, [2, 3]);
    assert.ok(completed);
  });

  it('unsubscribing cancels the running item', () => {
    const j = jobs();
    const src = new Subject<number>();
    const sub = src.pipe(processLatest(j.project, { limit: 2, onDrop: () => {} })).subscribe();
    src.next(7);
    sub.unsubscribe();
    assert.deepEqual(j.cancelled, [7]);
  });
});
