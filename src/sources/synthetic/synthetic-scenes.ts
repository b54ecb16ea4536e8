/**
 * The synthetic world without any thread or timer (../shared/docs/shapes-world.md "Motion"): the
 * scene stream (`syntheticScenes`, also used by the exporter and the narration bench) and the frame
 * producer shared by the in-thread camera and its render worker (`createFrameProducer`), so both
 * give the same frames for a seed by construction. Re-exported by synthetic-camera.ts.
 */
import type { DropEvent } from '../../types.js';
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
  /**
   * Render frames in a worker_thread (default true): the main event loop only receives finished
   * frames (their buffers transferred, at most two in flight). Used only on the real-time
   * scheduler; with any other scheduler (virtual time in tests) frames render in this thread.
   */
  readonly renderInWorker?: boolean;
  /**
   * Called for each frame the render worker skipped because this thread had not taken the two
   * before it (`synthetic/queue_full`): the consumer is too slow. Never called in-thread.
   */
  readonly onDrop?: (drop: DropEvent) => void;
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

/** Options with every default filled in (plain data: it crosses to the render worker). */
export type ResolvedCameraOptions = Required<Omit<SyntheticCameraOptions, 'maxFrames' | 'renderInWorker' | 'onDrop'>> & { maxFrames: number };
type Resolved = ResolvedCameraOptions;

/** Fills in the defaults and checks every option; throws RangeError naming each bad one. */
export function resolveCameraOptions(options: SyntheticCameraOptions): Resolved {
  const { renderInWorker: _w, onDrop: _d, ...rest } = options;
  const o = { ...DEFAULTS, maxFrames: Infinity, ...rest };
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
  const o = resolveCameraOptions(options);
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

/** One rendered frame of the world. */
export interface SyntheticFrameData {
  readonly index: number;
  readonly caption: string;
  /** RGB8, width·height·3, owning its whole ArrayBuffer (transferable). */
  readonly data: Uint8Array;
}

/**
 * The camera's frames in order: `render()` steps the world and renders the next frame (noise from
 * its own seeded stream); `skip()` steps the world without rendering (a dropped frame: the scene
 * keeps moving, the noise stream does not advance). Null once maxFrames steps were taken.
 */
export function createFrameProducer(o: ResolvedCameraOptions): { render(): SyntheticFrameData | null; skip(): number | null } {
  const steps = syntheticScenes(o);
  const noiseRng = mulberry32(deriveSeed(o.seed, 2));
  return {
    render() {
      const step = steps.next();
      if (step.done) return null;
      const { index, scene, caption } = step.value;
      return { index, caption, data: renderScene(scene, o.width, o.height, noiseRng) };
    },
    skip() {
      const step = steps.next();
      return step.done ? null : step.value.index;
    },
  };
}
