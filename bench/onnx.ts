// onnxruntime-node baselines for `npm run bench`: the same ternary weights as ONNX graphs
// (tools/onnx/bitmar-onnx.ts: fp32 MatMul and int8 MatMulInteger), run by onnxruntime-node in this
// process with one intra-op and one inter-op thread and every graph optimisation on. onnxruntime-node
// is not a dependency: install it unsaved (`npm i --no-save --ignore-scripts onnxruntime-node@1.23`);
// without it every ORT figure is skipped with a one-line note.
// Generated models are cached in $TMPDIR/bitmar-onnx/ (named by content hash), sessions load from there.
// `session.run` of onnxruntime-node computes synchronously on the calling thread (deferred by one
// setImmediate), so this process's CPU time covers it, as it does our kernels.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuUsage, hrtime } from 'node:process';

import { GgufReader } from '../src/model/gguf/reader.js';
import { decoderModels, gemvModel, type DecoderShape, type OnnxWeightKind } from '../tools/onnx/bitmar-onnx.js';
import { DataType, encodeModel, GraphBuilder } from '../tools/onnx/onnx-proto.js';
import type { Sample } from './measure.js';

export const ORT_KINDS: readonly OnnxWeightKind[] = ['fp32', 'int8'];

// The slice of the onnxruntime-node API used here (it is not a dependency, so no type import).
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
type Feeds = Record<string, OrtTensor>;
interface OrtSession {
  run(feeds: Feeds, fetches?: readonly string[]): Promise<Feeds>;
  release(): Promise<void>;
}
export interface OrtModule {
  readonly InferenceSession: { create(path: string, options: object): Promise<OrtSession> };
  readonly Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  readonly env: { readonly versions: Readonly<Record<string, string>> };
}

/** One thread, graph optimisation "all" (the brief of issue 5). */
export const ORT_SESSION_OPTIONS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
} as const;

const INSTALL = 'npm i --no-save --ignore-scripts onnxruntime-node@1.23';

/** onnxruntime-node, or a one-line reason why it cannot be used (`pkg` is for tests). */
export function loadOnnxruntime(pkg = 'onnxruntime-node'): OrtModule | string {
  const req = createRequire(import.meta.url);
  try {
    req.resolve(pkg);
  } catch {
    return `skipped: ${pkg} is not installed (not a dependency; \`${INSTALL}\`)`;
  }
  try {
    return req(pkg) as OrtModule;
  } catch (e) {
    return `skipped: ${pkg} is installed but does not load: ${String((e as Error).message ?? e).split('\n')[0]}`;
  }
}

export function ortLabel(ort: OrtModule): string {
  return `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common ?? '?'}, CPU EP, 1 thread, graph optimisation all`;
}

/** The cache directory of the generated .onnx files. */
export const ONNX_CACHE = join(tmpdir(), 'bitmar-onnx');

/**
 * Writes a model into the cache (once per content) and returns its path; older versions of the same
 * stem (other weights, an older generator) are deleted so the directory stays one file per model.
 */
export function cacheModel(stem: string, bytes: Uint8Array): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  mkdirSync(ONNX_CACHE, { recursive: true });
  const name = `${stem}-${hash}.onnx`;
  const path = join(ONNX_CACHE, name);
  if (!existsSync(path)) {
    for (const f of readdirSync(ONNX_CACHE)) {
      if (f !== name && f.startsWith(`${stem}-`) && /^[0-9a-f]{12}\.onnx$/.test(f.slice(stem.length + 1))) rmSync(join(ONNX_CACHE, f), { force: true });
    }
    writeFileSync(path, bytes);
  }
  return path;
}

async function session(ort: OrtModule, path: string): Promise<OrtSession> {
  return ort.InferenceSession.create(path, ORT_SESSION_OPTIONS);
}

/** `reps` awaited calls; per-call CPU and wall ms of this process. */
export async function timeAsync(fn: () => Promise<unknown>, reps: number): Promise<Sample> {
  const c0 = cpuUsage();
  const t0 = hrtime.bigint();
  for (let i = 0; i < reps; i++) await fn();
  const wallMs = Number(hrtime.bigint() - t0) / 1e6;
  const c = cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1e3 / reps, wallMs: wallMs / reps };
}

/** Repetitions so that one sample takes about `targetMs` of CPU (after a warm-up call). */
export async function repsForAsync(fn: () => Promise<unknown>, targetMs: number): Promise<number> {
  await fn();
  const one = Math.max((await timeAsync(fn, 3)).cpuMs, 1e-4);
  return Math.max(1, Math.round(targetMs / one));
}

/**
 * The cost of one onnxruntime-node `run` that does nothing (an Identity graph on a [1, 128] float
 * tensor): the binding's per-call floor (N-API, the setImmediate, input wrapping, output copy).
 */
export async function ortCallFloor(ort: OrtModule): Promise<Sample> {
  const g = new GraphBuilder('floor');
  g.input('x', DataType.FLOAT, [1, 128]);
  g.node('Identity', ['x'], undefined, 'y');
  g.output('y', DataType.FLOAT, [1, 128]);
  const s = await session(ort, cacheModel('identity-1x128', encodeModel({ graph: g.graph(), opsets: { '': 17 } })));
  const feeds = { x: new ort.Tensor('float32', new Float32Array(128), [1, 128]) };
  const fn = (): Promise<Feeds> => s.run(feeds);
  const reps = await repsForAsync(fn, 20);
  const samples: Sample[] = [];
  for (let i = 0; i < 5; i++) samples.push(await timeAsync(fn, reps));
  await s.release();
  samples.sort((a, b) => a.cpuMs - b.cpuMs);
  return samples[2]!;
}

/** One ternary matrix as an ORT session (fp32 or int8), y[m, rows] = x[m, cols]·Wᵀ. */
export class OrtGemv {
  private constructor(
    private readonly ort: OrtModule,
    private readonly s: OrtSession,
    readonly kind: OnnxWeightKind,
    readonly path: string,
  ) {}

  static async create(ort: OrtModule, codes: Uint8Array, rows: number, cols: number, scale: number, kind: OnnxWeightKind): Promise<OrtGemv> {
    const path = cacheModel(`gemv-${rows}x${cols}-${kind}`, gemvModel(codes, rows, cols, scale, kind));
    return new OrtGemv(ort, await session(ort, path), kind, path);
  }

  /** A call on a fixed input x [m, cols] (the tensor made once). */
  caller(x: Float32Array, m: number, cols: number): () => Promise<Float32Array> {
    const feeds = { x: new this.ort.Tensor('float32', x, [m, cols]) };
    return async () => (await this.s.run(feeds)).y!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.s.release();
  }
}

/** One greedy ORT decode run. */
export interface OrtDecodeRun {
  readonly cpuMsPerToken: number;
  readonly wallMsPerToken: number;
  readonly tokens: readonly number[];
}

/**
 * The bitmar-stream decoder of a GGUF as two ORT sessions (conditioning and one-token step, the
 * KV cache passed as tensors from one step's outputs to the next step's inputs).
 */
export class OrtDecoder {
  private constructor(
    private readonly ort: OrtModule,
    private readonly cond: OrtSession,
    private readonly step: OrtSession,
    readonly kind: OnnxWeightKind,
    readonly shape: DecoderShape,
    readonly paths: readonly string[],
  ) {}

  /** Builds (or reuses from the cache) the ONNX graphs of `gguf` and opens them. */
  static async create(ort: OrtModule, gguf: Uint8Array, stem: string, kind: OnnxWeightKind): Promise<OrtDecoder> {
    const m = decoderModels(GgufReader.fromBytes(gguf, stem), kind);
    const condPath = cacheModel(`${stem}-cond-${kind}`, m.cond);
    const stepPath = cacheModel(`${stem}-step-${kind}`, m.step);
    return new OrtDecoder(ort, await session(ort, condPath), await session(ort, stepPath), kind, m.shape, [condPath, stepPath]);
  }

  /**
   * Greedy decode of n tokens from a fresh cache, conditioned on X [nx, d] (the cross-attention
   * memory concat(V, Fused)) and c [d], starting from <bos>. Timed from the conditioning (which the
   * engine also does per caption) to the last token; returns the token ids.
   */
  async decode(X: Float32Array, c: Float32Array, n: number): Promise<OrtDecodeRun> {
    const { dim: d, layers } = this.shape;
    const T = this.ort.Tensor;
    const tokens: number[] = [];
    const c0 = cpuUsage();
    const t0 = hrtime.bigint();
    const feeds: Feeds = { ...(await this.cond.run({ X: new T('float32', X, [X.length / d, d]), c: new T('float32', c, [1, d]) })) };
    const empty = new T('float32', new Float32Array(0), [0, d]);
    for (let l = 0; l < layers; l++) {
      feeds[`past_k_${l}`] = empty;
      feeds[`past_v_${l}`] = empty;
    }
    feeds.token = new T('int64', BigInt64Array.of(BigInt(this.shape.bosId)), [1]);
    const fetches = ['next_token', ...Array.from({ length: layers }, (_, l) => [`present_k_${l}`, `present_v_${l}`]).flat()];
    for (let i = 0; i < n; i++) {
      const out = await this.step.run(feeds, fetches);
      const next = out.next_token!;
      tokens.push(Number((next.data as BigInt64Array)[0]));
      feeds.token = next;
      for (let l = 0; l < layers; l++) {
        feeds[`past_k_${l}`] = out[`present_k_${l}`]!;
        feeds[`past_v_${l}`] = out[`present_v_${l}`]!;
      }
    }
    const wallMs = Number(hrtime.bigint() - t0) / 1e6;
    const cu = cpuUsage(c0);
    return { cpuMsPerToken: (cu.user + cu.system) / 1e3 / n, wallMsPerToken: wallMs / n, tokens };
  }

  async dispose(): Promise<void> {
    await this.cond.release();
    await this.step.release();
  }
}
