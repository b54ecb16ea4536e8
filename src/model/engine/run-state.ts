/**
 * Every scratch buffer the forward pass uses, allocated once at load (llama2.c RunState).
 * Encoder buffers hold R = max(N+1, Tmax) rows. Decoder buffers hold `decoderRows` rows (1 for
 * generation; they grow once if a caller feeds a longer teacher-forced sequence). Attention
 * scratch belongs to the kernels. Nothing here is allocated per frame or per token.
 */
import type { StreamConfig } from './config.js';
import { conv3x3OutSize } from './conv.js';

export class RunState {
  /** Encoder rows R. */
  readonly rows: number;
  // encoders and fusion, (R, d) unless noted
  readonly h: Float32Array;
  readonly xn: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly att: Float32Array;
  readonly proj: Float32Array;
  readonly ffn: Float32Array; // (R, f)
  // single vectors, (d)
  readonly vecA: Float32Array;
  readonly vecB: Float32Array;
  /** (d) fp64 memory-read accumulator. */
  readonly memAcc: Float64Array;
  /** (S, S, 3) the normalised frame being encoded (preprocess steps 1–3). */
  readonly pixels: Float32Array;
  /** (N, patchDim) the patch vectors of the frame being encoded (cut from the image or the stem output). */
  readonly patches: Float32Array;
  // convolutional stem (empty for the linear stem)
  /** (S, S, C1) GELU(conv1). */
  readonly stem1: Float32Array;
  /** (S/2, S/2, C2) GELU(conv2). */
  readonly stem2: Float32Array;
  /** Memory-read scores, ≥ the live slot count. */
  memScores: Float32Array;
  // decoder, (decoderRows, d) unless noted
  decoderRows = 0;
  dh = new Float32Array(0);
  dxn = new Float32Array(0);
  dq = new Float32Array(0);
  dk = new Float32Array(0);
  dv = new Float32Array(0);
  datt = new Float32Array(0);
  dproj = new Float32Array(0);
  dffn = new Float32Array(0); // (decoderRows, f)
  /** Token positions of the rows being fed. */
  dpos = new Int32Array(0);
  /** (decoderRows, V) */
  logits = new Float32Array(0);
  /** The arg-max of logits row 0 when the last decode computed it (the fused step does), else −1. */
  logitsArgmax = -1;

  constructor(readonly config: StreamConfig) {
    const { dim: d, ffnDim: f, patches, textContext } = config;
    this.rows = Math.max(patches + 1, textContext);
    const R = this.rows;
    this.h = new Float32Array(R * d);
    this.xn = new Float32Array(R * d);
    this.q = new Float32Array(R * d);
    this.k = new Float32Array(R * d);
    this.v = new Float32Array(R * d);
    this.att = new Float32Array(R * d);
    this.proj = new Float32Array(R * d);
    this.ffn = new Float32Array(R * f);
    this.vecA = new Float32Array(d);
    this.vecB = new Float32Array(d);
    this.memAcc = new Float64Array(d);
    this.patches = new Float32Array(patches * config.patchDim);
    const S = config.imageSize;
    this.pixels = new Float32Array(S * S * 3);
    const stem = config.stemChannels;
    if (stem === null) {
      this.stem1 = this.stem2 = new Float32Array(0);
    } else {
      const [c1, c2] = stem;
      const half = conv3x3OutSize(S, 2);
      this.stem1 = new Float32Array(S * S * c1);
      this.stem2 = new Float32Array(half * half * c2);
    }
    this.memScores = new Float32Array(0);
    this.ensureDecoderRows(1);
  }

  /** Grow the decoder buffers to hold m rows (a no-op in steady state). */
  ensureDecoderRows(m: number): void {
    if (m <= this.decoderRows) return;
    const { dim: d, ffnDim: f, vocabSize: V } = this.config;
    this.decoderRows = m;
    this.dh = new Float32Array(m * d);
    this.dxn = new Float32Array(m * d);
    this.dq = new Float32Array(m * d);
    this.dk = new Float32Array(m * d);
    this.dv = new Float32Array(m * d);
    this.datt = new Float32Array(m * d);
    this.dproj = new Float32Array(m * d);
    this.dffn = new Float32Array(m * f);
    this.dpos = new Int32Array(m);
    this.logits = new Float32Array(m * V);
  }

  /** Grow the memory score buffer to k slots. */
  ensureMemScores(k: number): void {
    if (k > this.memScores.length) this.memScores = new Float32Array(k);
  }
}
