// End-to-end model benchmarks on a StreamEngine: greedy decode tokens/s through engine.generate (the
// fused step, the sampler's arg-max, the tokenizer's streaming decode and the generator included),
// time to first token through engine.describe (prompt + frame encode, fusion, memory read,
// conditioning, first token), and image encode frames/s for batches of frames.
import { BitmarError } from '../src/errors.js';
import { StreamEngine } from '../src/model/engine/engine.js';
import { GgufReader } from '../src/model/gguf/reader.js';
import type { Kernels } from '../src/model/kernels.js';
import type { RgbImage } from '../src/model/preprocess.js';
import { median, quantile, timeOnce } from './measure.js';

/** A deterministic RGB8 frame. */
export function benchImage(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

/**
 * A copy of a model whose output-layer row for <eos> is all zero weights (logit 0), so greedy decoding
 * runs to the token cap on a random model; the work per token is unchanged.
 */
export function withoutEos(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const r = GgufReader.fromBytes(out);
  const t = r.tensorInfo('d.lm_head.weight');
  const rowBytes = t.dims[0]!;
  const eos = r.getUint('tokenizer.ggml.eos_token_id');
  out.fill(0x55, t.offset + eos * rowBytes, t.offset + (eos + 1) * rowBytes);
  return out;
}

export function engineFrom(bytes: Uint8Array, name: string, kernels: Kernels): StreamEngine {
  return StreamEngine.fromReader(GgufReader.fromBytes(bytes, name), kernels);
}

export const PROMPT = 'describe the scene';

/** One decode run: CPU and wall ms per generated token, and the per-token wall gaps. */
export interface DecodeRun {
  readonly tokens: number;
  readonly cpuMsPerToken: number;
  readonly wallMsPerToken: number;
  readonly gapsMs: readonly number[];
}

/**
 * Greedy caption of up to `maxTokens` tokens on a prepared frame (fresh cache each run, the model's
 * S and W). Throws when the model stops before 8 tokens (a trained model that says <eos> at once).
 */
export function decodeRun(engine: StreamEngine, cond: ReturnType<StreamEngine['prepare']>, maxTokens: number): DecodeRun {
  const at: number[] = [];
  const s = timeOnce(() => {
    for (const t of engine.generate(cond, { maxTokens })) at.push(t.atMs);
  });
  if (at.length < 8) throw new BitmarError('BITMAR_ERR_CONFIG_INVALID', `decode stopped after ${at.length} tokens; the bench needs a model that keeps going`);
  return { tokens: at.length, cpuMsPerToken: s.cpuMs / at.length, wallMsPerToken: s.wallMs / at.length, gapsMs: at.slice(1).map((v, i) => v - at[i]!) };
}

export interface TtftResult {
  /** Median over runs of describe()'s firstTokenMs (wall). */
  readonly wallMs: number;
  readonly wallP99Ms: number;
  /** Median CPU ms of a describe() that stops after one token. */
  readonly cpuMs: number;
}

/** Time to first token: describe() of one frame and the default prompt, one token, `runs` times. */
export function ttft(engine: StreamEngine, frame: RgbImage, runs: number): TtftResult {
  const wall: number[] = [];
  const cpu: number[] = [];
  engine.describe({ images: [frame], prompt: PROMPT, maxTokens: 1 });
  for (let i = 0; i < runs; i++) {
    let first = NaN;
    cpu.push(timeOnce(() => (first = engine.describe({ images: [frame], prompt: PROMPT, maxTokens: 1 }).firstTokenMs)).cpuMs);
    wall.push(first);
  }
  return { wallMs: median(wall), wallP99Ms: quantile(wall, 0.99), cpuMs: median(cpu) };
}

export interface EncodeResult {
  readonly batch: number;
  readonly width: number;
  readonly height: number;
  /** Frames per second of CPU time and of wall time (median over runs). */
  readonly fps: number;
  readonly wallFps: number;
}

/** Encodes batches of `batch` frames (each frame RGB8 → V, e, as prepare() does per image) `runs` times. */
export function encodeBatches(engine: StreamEngine, batch: number, width: number, height: number, runs: number): EncodeResult {
  const frames = Array.from({ length: batch }, (_, i) => benchImage(width, height, i + 1));
  const once = (): ReturnType<typeof timeOnce> => timeOnce(() => frames.forEach((f) => engine.encodeImage(f)));
  once();
  const s = Array.from({ length: runs }, once);
  return { batch, width, height, fps: (batch * 1000) / median(s.map((v) => v.cpuMs)), wallFps: (batch * 1000) / median(s.map((v) => v.wallMs)) };
}
