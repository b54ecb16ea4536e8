/**
 * The synthetic camera (../shared/docs/shapes-world.md "Motion"): renders the shapes world at a fixed
 * frame rate, moving objects smoothly (a few pixels a frame) and replacing the scene now and then.
 * Every frame obeys every rule of the contract: an object whose next step would break one bounces
 * (reverses the offending velocity component) or, failing that, waits a frame. The caption is
 * recomputed every frame. A seed makes the stream reproducible.
 *
 * Two forms: `syntheticScenes` (a plain generator of scenes, no pixels — the exporter uses it) and
 * `syntheticCamera` (an RxJS Observable<Frame> on an injectable scheduler).
 */
import { type Observable, type SchedulerLike, asyncScheduler, defer, map, take, timer } from 'rxjs';
import type { Frame } from '../../types.js';
import { renderScene } from './render.js';
import {
  FRAME_LIMITS,
  type Rng,
  type Scene,
  type SceneObject,
  captionOf,
  deriveSeed,
  isLayoutValid,
  mulberry32,
  randUniform,
  sampleScene,
} from './shapes-world.js';

export interface SyntheticCameraOptions {
  /** Frame width in pixels, 160..1280. Default 320. */
  readonly width?: number;
  /** Frame height in pixels, 120..720. Default 240. */
  readonly height?: number;
  /** Frames per second, > 0 and ≤ 240. Default 10. */
  readonly fps?: number;
  /** Seed of the scene, motion and noise streams (32-bit integer). Default 1. */
  readonly seed?: number;
  /** Mean seconds between scene replacements (each interval is 0.5..1.5 × this). Default 8. */
  readonly sceneChangeEverySec?: number;
  /** Stop (complete) after this many frames. Default: never. */
  readonly maxFrames?: number;
  /** Object speed range, pixels per frame. Default [0.5, 3]. */
  readonly speedPxPerFrame?: readonly [number, number];
}

/** One step of the synthetic world. */
export interface SyntheticStep {
  /** 0, 1, 2, … */
  readonly index: number;
  readonly scene: Scene;
  readonly caption: string;
  /** True on the first frame of each scene (index 0 included). */
  readonly isNewScene: boolean;
}

const DEFAULTS = { width: 320, height: 240, fps: 10, seed: 1, sceneChangeEverySec: 8, speedPxPerFrame: [0.5, 3] as const };

type Resolved = Required<Omit<SyntheticCameraOptions, 'maxFrames'>> & { maxFrames: number };

function resolve(options: SyntheticCameraOptions): Resolved {
  const o = { ...DEFAULTS, maxFrames: Infinity, ...options };
  const problems: string[] = [];
  if (!Number.isInteger(o.width) || o.width < FRAME_LIMITS.minWidth || o.width > FRAME_LIMITS.maxWidth) problems.push(`width ${o.width} must be an integer 160..1280`);
  if (!Number.isInteger(o.height) || o.height < FRAME_LIMITS.minHeight || o.height > FRAME_LIMITS.maxHeight) problems.push(`height ${o.height} must be an integer 120..720`);
  if (!(o.fps > 0 && o.fps <= 240)) problems.push(`fps ${o.fps} must be in (0, 240]`);
  if (!Number.isInteger(o.seed)) problems.push(`seed ${o.seed} must be an integer`);
  if (!(o.sceneChangeEverySec > 0)) problems.push(`sceneChangeEverySec ${o.sceneChangeEverySec} must be > 0`);
  if (!(o.maxFrames === Infinity || (Number.isInteger(o.maxFrames) && o.maxFrames >= 0))) problems.push(`maxFrames ${o.maxFrames} must be a non-negative integer`);
  const [lo, hi] = o.speedPxPerFrame;
  if (!(lo >= 0 && hi >= lo && hi <= 50)) problems.push(`speedPxPerFrame [${lo}, ${hi}] must satisfy 0 ≤ min ≤ max ≤ 50`);
  if (problems.length > 0) throw new RangeError(`synthetic camera: ${problems.join('; ')}`);
  return o;
}

interface Velocity {
  vx: number;
  vy: number;
}

function randomVelocity(rng: Rng, o: Resolved): Velocity {
  const speed = randUniform(rng, o.speedPxPerFrame[0], o.speedPxPerFrame[1]);
  const angle = randUniform(rng, 0, 2 * Math.PI);
  return { vx: (speed * Math.cos(angle)) / o.width, vy: (speed * Math.sin(angle)) / o.height };
}

/**
 * Moves object `i` one frame: tries its velocity, then bounces off x, y, or both; the first move
 * that keeps the layout valid is taken (and becomes the new velocity). If none is, the object stays
 * and gets a new random direction for the next frame.
 */
function stepObject(objects: SceneObject[], i: number, v: Velocity, aspect: number, rng: Rng, o: Resolved): void {
  const obj = objects[i]!;
  for (const [sx, sy] of [[1, 1], [-1, 1], [1, -1], [-1, -1]] as const) {
    const moved = { ...obj, x: obj.x + sx * v.vx, y: obj.y + sy * v.vy };
    const trial = objects.map((p, k) => (k === i ? moved : p));
    if (isLayoutValid(trial, aspect)) {
      objects[i] = moved;
      v.vx *= sx;
      v.vy *= sy;
      return;
    }
  }
  Object.assign(v, randomVelocity(rng, o));
}

/**
 * The world as a plain generator of scenes (no pixels), frame by frame. Deterministic for the
 * options; infinite unless maxFrames is set. Throws RangeError for options out of range.
 */
export function* syntheticScenes(options: SyntheticCameraOptions = {}): Generator<SyntheticStep, void, undefined> {
  const o = resolve(options);
  const rng = mulberry32(deriveSeed(o.seed, 1));
  const frame = { width: o.width, height: o.height };
  let scene = sampleScene(rng, frame);
  let objects = [...scene.objects];
  let velocities = objects.map(() => randomVelocity(rng, o));
  const nextChange = (): number => Math.max(1, Math.round(o.sceneChangeEverySec * o.fps * randUniform(rng, 0.5, 1.5)));
  let framesLeft = nextChange();
  for (let index = 0; index < o.maxFrames; index++) {
    let isNewScene = index === 0;
    if (framesLeft === 0) {
      scene = sampleScene(rng, frame);
      objects = [...scene.objects];
      velocities = objects.map(() => randomVelocity(rng, o));
      framesLeft = nextChange();
      isNewScene = true;
    } else if (index > 0) {
      objects.forEach((_, i) => stepObject(objects, i, velocities[i]!, scene.aspect, rng, o));
      scene = { ...scene, objects: [...objects] };
    }
    framesLeft--;
    yield { index, scene, caption: captionOf(scene), isNewScene };
  }
}

/**
 * A synthetic camera stream: one Frame every 1/fps seconds on `scheduler` (default asyncScheduler;
 * pass a TestScheduler for virtual time), the first at subscription. Frames carry source
 * `synthetic`, frameId `synthetic_camera`, ids 0, 1, 2, …, stampNs = scheduler.now() in ns
 * (the wall clock for asyncScheduler), and truth.caption. Cold: each subscriber gets the same
 * seeded stream. Completes after maxFrames. Throws RangeError at call time for bad options.
 */
export function syntheticCamera(options: SyntheticCameraOptions = {}, scheduler: SchedulerLike = asyncScheduler): Observable<Frame> {
  const o = resolve(options);
  return defer(() => {
    const steps = syntheticScenes(o);
    const noiseRng = mulberry32(deriveSeed(o.seed, 2));
    return timer(0, 1000 / o.fps, scheduler).pipe(
      take(o.maxFrames),
      map((): Frame => {
        const step = steps.next();
        if (step.done) throw new Error('synthetic scene stream ended before maxFrames'); // unreachable
        const { index, scene, caption } = step.value;
        return {
          id: index,
          source: 'synthetic',
          stampNs: BigInt(Math.round(scheduler.now())) * 1_000_000n,
          frameId: 'synthetic_camera',
          receivedMs: performance.now(),
          width: o.width,
          height: o.height,
          data: renderScene(scene, o.width, o.height, noiseRng),
          truth: { caption },
        };
      }),
    );
  });
}
