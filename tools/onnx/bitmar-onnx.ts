// ONNX graphs of bitmar-stream pieces from the same ternary weights the engine runs, for the
// onnxruntime-node baselines of `npm run bench` (bench/onnx.ts) — what a user would export to run
// this model in onnxruntime instead. Two weight formats:
//   fp32: W = t·s_w as fp32 (the dequantised matrix), Gemm(x, W, b) with transB = 1 — the MatMul
//         torch.onnx.export writes for nn.Linear;
//   int8: t as int8 (exact: t ∈ {−1, 0, 1}, per-tensor scale s_w), ORT's dynamic-quantisation
//         pattern DynamicQuantizeLinear → MatMulInteger → Cast → Mul(x_scale·s_w) (+ bias), which
//         onnxruntime fuses into its MatMulIntegerToFloat / DynamicQuantizeMatMul CPU kernels.
// Graphs:
//   gemvModel      y[m, rows] = x[m, cols] · Wᵀ (m dynamic); fp32: a plain Gemm, int8: the pattern above.
//   decoderModels  the decoder of docs/bitmar-stream.md §3 as two graphs:
//     "cond": X [nx, d], c [1, d] → per layer the cross-attention K (as [h, hd, nx]) and V ([h, nx, hd])
//             and BL_cond(c) — once per caption, as the engine's condition();
//     "step": one token with the sink + window KV cache as inputs/outputs (past_k_l/past_v_l [n, d],
//             keys before RoPE, positions = slot order, the oldest window entry dropped in the graph
//             once the cache holds S+W), → present_k_l/present_v_l, logits [1, V] and the greedy
//             next_token (ArgMax). The cache grows from 0 rows to S+W and then stays there.
//     In the fp32 graphs every BitLinear fake-quantises its input to int8 per row as the model
//     defines it (§2; as bench/torch-decode.py does), then multiplies by the fp32 matrix.
import { GgufReader } from '../../src/model/gguf/reader.js';
import { DataType, encodeModel, floatTensor, GraphBuilder, int8Tensor, type Attr } from './onnx-proto.js';

export type OnnxWeightKind = 'fp32' | 'int8';

const OPSET = 17;
const ARCH = 'bitmar-stream';
const INT64_MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** t2-row-v1 codes [rows][ceil(cols/4)] → t [cols, rows] (transposed, for MatMul(x, Wᵀ)) as int8. */
export function ternaryTransposedInt8(codes: Uint8Array, rows: number, cols: number): Int8Array {
  const rb = (cols + 3) >> 2;
  if (codes.length < rows * rb) throw new RangeError(`ternary codes hold ${codes.length} bytes, ${rows}×${cols} needs ${rows * rb}`);
  const t = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) t[j * rows + r] = ((codes[r * rb + (j >> 2)]! >> (2 * (j & 3))) & 3) - 1;
  }
  return t;
}

/** The dequantised matrix W = t·s_w as fp32 [rows, cols] (row-major, as stored). */
export function ternaryF32(codes: Uint8Array, rows: number, cols: number, scale: number): Float32Array {
  const rb = (cols + 3) >> 2;
  if (codes.length < rows * rb) throw new RangeError(`ternary codes hold ${codes.length} bytes, ${rows}×${cols} needs ${rows * rb}`);
  const w = new Float32Array(rows * cols);
  const s = Math.fround(scale);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) w[r * cols + j] = (((codes[r * rb + (j >> 2)]! >> (2 * (j & 3))) & 3) - 1) * s;
  }
  return w;
}

interface Ternary {
  readonly name: string;
  readonly codes: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  readonly scale: number;
  readonly bias: Float32Array | null;
}

/** BitLinear y = BL(x) with the weights as initializers; x [.., cols] → [.., rows]. */
function bitLinear(g: GraphBuilder, x: string, w: Ternary, kind: OnnxWeightKind, fakeQuant: boolean, output?: string): string {
  const tag = w.name.replace(/[^A-Za-z0-9_]/g, '_');
  if (kind === 'fp32') {
    let xin = x;
    if (fakeQuant) {
      // s_x = max(max|x_row|, 1e-5) / 127; q = clamp(round_half_even(x / s_x), −127, 127); x̂ = q·s_x
      const a = g.node('ReduceMax', [g.node('Abs', [x])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
      const s = g.node('Div', [g.node('Max', [a, g.constF([1e-5])]), g.constF([127])]);
      const q = g.node('Clip', [g.node('Round', [g.node('Div', [x, s])]), g.constF([-127]), g.constF([127])]);
      xin = g.node('Mul', [q, s]);
    }
    // Gemm(x, W, b) with transB = 1: what torch.onnx.export writes for nn.Linear on 2-D input, and
    // onnxruntime's fastest fp32 path for these shapes (a MatMul on Wᵀ measured the same or slower).
    const inputs = [xin, g.init(floatTensor(`${tag}.w_f32`, [w.rows, w.cols], ternaryF32(w.codes, w.rows, w.cols, w.scale)))];
    if (w.bias) inputs.push(g.init(floatTensor(`${tag}.bias`, [w.rows], w.bias)));
    return g.node('Gemm', inputs, { transB: { i: 1 } }, output);
  } else {
    const [xq, xs, xzp] = g.nodeN('DynamicQuantizeLinear', [x], 3);
    const wq = g.init(int8Tensor(`${tag}.w_i8`, [w.cols, w.rows], ternaryTransposedInt8(w.codes, w.rows, w.cols)));
    const wzp = g.init(int8Tensor(`${tag}.w_zp`, [], new Int8Array(1)));
    const acc = g.node('MatMulInteger', [xq!, wq, xzp!, wzp]);
    const scale = g.node('Mul', [xs!, g.constF([Math.fround(w.scale)])]);
    const y = g.node('Mul', [g.node('Cast', [acc], { to: { i: DataType.FLOAT } }), scale], undefined, w.bias ? undefined : output);
    return w.bias ? g.node('Add', [y, g.init(floatTensor(`${tag}.bias`, [w.rows], w.bias))], undefined, output) : y;
  }
}

function model(g: GraphBuilder, doc: string): Uint8Array {
  return encodeModel({ graph: g.graph(), opsets: { '': OPSET }, irVersion: 8, docString: doc });
}

/**
 * One ternary matrix [rows, cols] (t2-row-v1 codes, scale s_w) as an ONNX model y[m, rows] = x[m, cols]·Wᵀ;
 * m is a dynamic axis. fp32: plain Gemm (transB) on the dequantised matrix; int8: ORT's dynamic-quant pattern.
 */
export function gemvModel(codes: Uint8Array, rows: number, cols: number, scale: number, kind: OnnxWeightKind): Uint8Array {
  const g = new GraphBuilder(`gemv_${rows}x${cols}_${kind}`);
  const x = g.input('x', DataType.FLOAT, ['m', cols]);
  bitLinear(g, x, { name: 'w', codes, rows, cols, scale, bias: null }, kind, false, 'y');
  g.output('y', DataType.FLOAT, ['m', rows]);
  return model(g, `bitmar ternary ${rows}x${cols} (${kind}) from bench/kernels.ts`);
}

/** The decoder's hyperparameters as the ONNX graphs need them. */
export interface DecoderShape {
  readonly dim: number;
  readonly heads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly layers: number;
  readonly vocab: number;
  readonly sinks: number;
  readonly window: number;
  readonly eps: number;
  readonly ropeBase: number;
  readonly bosId: number;
}

export function decoderShape(r: GgufReader): DecoderShape {
  const u = (k: string): number => r.getUint(`${ARCH}.${k}`);
  const dim = u('embedding_length');
  const heads = u('head_count');
  return {
    dim,
    heads,
    headDim: dim / heads,
    ffnDim: u('feed_forward_length'),
    layers: u('decoder.block_count'),
    vocab: r.tensorInfo('d.tok_emb').dims[1]!,
    sinks: u('attention.sink_count'),
    window: u('attention.window_length'),
    eps: Math.fround(r.getNumber(`${ARCH}.layer_norm_epsilon`)),
    ropeBase: r.getNumber(`${ARCH}.rope.freq_base`),
    bosId: r.getUint('tokenizer.ggml.bos_token_id'),
  };
}

function ternary(r: GgufReader, name: string, rows: number, cols: number): Ternary {
  return {
    name,
    codes: r.tensorBytes(`${name}.weight`),
    rows,
    cols,
    scale: r.tensorF32(`${name}.scale`)[0]!,
    bias: r.tensors.has(`${name}.bias`) ? r.tensorF32(`${name}.bias`).slice() : null,
  };
}

export interface DecoderOnnx {
  readonly shape: DecoderShape;
  readonly cond: Uint8Array;
  readonly step: Uint8Array;
}

/** The "cond" and "step" graphs (see the file comment) of the decoder of a bitmar-stream GGUF. */
export function decoderModels(r: GgufReader, kind: OnnxWeightKind): DecoderOnnx {
  const sh = decoderShape(r);
  const { dim: d, heads: h, headDim: hd, ffnDim: f, layers: nl, vocab: V, sinks: S, window: W } = sh;
  const cap = S + W;
  const fq = kind === 'fp32';
  const tern = (l: number, k: string, rows = d, cols = d): Ternary => ternary(r, `d.blk.${l}.${k}`, rows, cols);
  const ln = (g: GraphBuilder, x: string, name: string): string =>
    g.node('LayerNormalization', [x, g.init(floatTensor(`${name}.weight`, [d], r.tensorF32(`${name}.weight`).slice())), g.init(floatTensor(`${name}.bias`, [d], r.tensorF32(`${name}.bias`).slice()))], {
      axis: { i: -1 },
      epsilon: { f: sh.eps },
    });
  const perm = (p: number[]): Record<string, Attr> => ({ perm: { ints: p } });

  // ---- cond: X [nx, d], c [1, d] → xkT_l [h, hd, nx], xv_l [h, nx, hd], cond_l [1, d]
  const gc = new GraphBuilder(`bitmar_decoder_cond_${kind}`);
  const X = gc.input('X', DataType.FLOAT, ['nx', d]);
  const c = gc.input('c', DataType.FLOAT, [1, d]);
  const headsShape = gc.constI64([-1, h, hd]);
  for (let l = 0; l < nl; l++) {
    const xk = gc.node('Reshape', [bitLinear(gc, X, tern(l, 'xattn_k'), kind, fq), headsShape]);
    gc.node('Transpose', [xk], perm([1, 2, 0]), `xkT_${l}`);
    const xv = gc.node('Reshape', [bitLinear(gc, X, tern(l, 'xattn_v'), kind, fq), headsShape]);
    gc.node('Transpose', [xv], perm([1, 0, 2]), `xv_${l}`);
    bitLinear(gc, c, tern(l, 'cond'), kind, fq, `cond_${l}`);
    gc.output(`xkT_${l}`, DataType.FLOAT, [h, hd, 'nx']);
    gc.output(`xv_${l}`, DataType.FLOAT, [h, 'nx', hd]);
    gc.output(`cond_${l}`, DataType.FLOAT, [1, d]);
  }

  // ---- step
  const g = new GraphBuilder(`bitmar_decoder_step_${kind}`);
  const token = g.input('token', DataType.INT64, [1]);
  const inputs = Array.from({ length: nl }, (_, l) => ({
    cond: g.input(`cond_${l}`, DataType.FLOAT, [1, d]),
    xkT: g.input(`xkT_${l}`, DataType.FLOAT, [h, hd, 'nx']),
    xv: g.input(`xv_${l}`, DataType.FLOAT, [h, 'nx', hd]),
    pastK: g.input(`past_k_${l}`, DataType.FLOAT, ['past', d]),
    pastV: g.input(`past_v_${l}`, DataType.FLOAT, ['past', d]),
  }));
  // RoPE tables for positions 0..cap−1 (θ = pos·base^(−2i/hd), fp64 → fp32).
  const half = hd / 2;
  const cosT = new Float32Array(cap * half);
  const sinT = new Float32Array(cap * half);
  for (let p = 0; p < cap; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * sh.ropeBase ** ((-2 * i) / hd);
      cosT[p * half + i] = Math.cos(a);
      sinT[p * half + i] = Math.sin(a);
    }
  }
  const cosName = g.init(floatTensor('rope_cos', [cap, half], cosT));
  const sinName = g.init(floatTensor('rope_sin', [cap, half], sinT));
  // L = past + 1 rows after appending; n = min(L, cap) rows kept; the window starts at S + max(0, L − cap).
  const one = g.constI64([1]);
  const zero = g.constI64([0]);
  const L = g.node('Add', [g.node('Slice', [g.node('Shape', [inputs[0]!.pastK]), zero, one]), one]);
  const n = g.node('Min', [L, g.constI64([cap])]);
  const winStart = g.node('Add', [g.constI64([S]), g.node('Max', [g.node('Sub', [L, g.constI64([cap])]), zero])]);
  const nm1 = g.node('Sub', [n, one]);
  const cosK = g.node('Slice', [cosName, zero, n, zero]);
  const sinK = g.node('Slice', [sinName, zero, n, zero]);
  const cosQ = g.node('Slice', [cosName, nm1, n, zero]);
  const sinQ = g.node('Slice', [sinName, nm1, n, zero]);
  const ax2 = g.constI64([2]);
  const rope = (x: string, cos: string, sin: string): string => {
    const x1 = g.node('Slice', [x, zero, g.constI64([half]), ax2]);
    const x2 = g.node('Slice', [x, g.constI64([half]), g.constI64([hd]), ax2]);
    const r1 = g.node('Sub', [g.node('Mul', [x1, cos]), g.node('Mul', [x2, sin])]);
    const r2 = g.node('Add', [g.node('Mul', [x2, cos]), g.node('Mul', [x1, sin])]);
    return g.node('Concat', [r1, r2], { axis: { i: 2 } });
  };
  const keep = (all: string, out: string): string =>
    g.node('Concat', [g.node('Slice', [all, zero, g.constI64([S]), zero]), g.node('Slice', [all, winStart, g.constI64([INT64_MAX_SAFE]), zero])], { axis: { i: 0 } }, out);
  const sqrtHd = g.constF([Math.sqrt(hd)]);
  const qShape = g.constI64([h, 1, hd]);
  const kvShape = g.constI64([-1, h, hd]);
  const rowShape = g.constI64([1, d]);
  const attend = (q: string, kT: string, v: string): string => {
    const p = g.node('Softmax', [g.node('Div', [g.node('MatMul', [q, kT]), sqrtHd])], { axis: { i: -1 } });
    return g.node('Reshape', [g.node('MatMul', [p, v]), rowShape]);
  };
  const tokEmb = g.init(floatTensor('d.tok_emb', [V, d], r.tensorF32('d.tok_emb').slice()));
  let hcur = g.node('Gather', [tokEmb, token], { axis: { i: 0 } });
  for (let l = 0; l < nl; l++) {
    const I = inputs[l]!;
    hcur = g.node('Add', [hcur, I.cond]);
    // self-attention with the sink + window cache
    let x = ln(g, hcur, `d.blk.${l}.ln1`);
    const q = bitLinear(g, x, tern(l, 'attn_q'), kind, fq);
    const k = bitLinear(g, x, tern(l, 'attn_k'), kind, fq);
    const v = bitLinear(g, x, tern(l, 'attn_v'), kind, fq);
    const presentK = keep(g.node('Concat', [I.pastK, k], { axis: { i: 0 } }), `present_k_${l}`);
    const presentV = keep(g.node('Concat', [I.pastV, v], { axis: { i: 0 } }), `present_v_${l}`);
    g.output(`present_k_${l}`, DataType.FLOAT, ['n', d]);
    g.output(`present_v_${l}`, DataType.FLOAT, ['n', d]);
    const kr = rope(g.node('Transpose', [g.node('Reshape', [presentK, kvShape])], perm([1, 0, 2])), cosK, sinK);
    const qr = rope(g.node('Reshape', [q, qShape]), cosQ, sinQ);
    const vh = g.node('Transpose', [g.node('Reshape', [presentV, kvShape])], perm([1, 0, 2]));
    hcur = g.node('Add', [hcur, bitLinear(g, attend(qr, g.node('Transpose', [kr], perm([0, 2, 1])), vh), tern(l, 'attn_o'), kind, fq)]);
    // cross-attention over the conditioning
    x = ln(g, hcur, `d.blk.${l}.ln2`);
    const xq = g.node('Reshape', [bitLinear(g, x, tern(l, 'xattn_q'), kind, fq), qShape]);
    hcur = g.node('Add', [hcur, bitLinear(g, attend(xq, I.xkT, I.xv), tern(l, 'xattn_o'), kind, fq)]);
    // FFN with the tanh GELU (the form torch.onnx.export writes for opset < 20)
    x = ln(g, hcur, `d.blk.${l}.ln3`);
    const u = bitLinear(g, x, tern(l, 'ffn_up', f, d), kind, fq);
    const inner = g.node('Mul', [g.constF([Math.sqrt(2 / Math.PI)]), g.node('Add', [u, g.node('Mul', [g.constF([0.044715]), g.node('Pow', [u, g.constF([3])])])])]);
    const gelu = g.node('Mul', [g.node('Mul', [g.constF([0.5]), u]), g.node('Add', [g.constF([1]), g.node('Tanh', [inner])])]);
    hcur = g.node('Add', [hcur, bitLinear(g, gelu, tern(l, 'ffn_down', d, f), kind, fq)]);
  }
  bitLinear(g, ln(g, hcur, 'd.ln_f'), ternary(r, 'd.lm_head', V, d), kind, fq, 'logits');
  g.node('ArgMax', ['logits'], { axis: { i: 1 }, keepdims: { i: 0 } }, 'next_token');
  g.output('next_token', DataType.INT64, [1]);
  g.output('logits', DataType.FLOAT, [1, V]);
  const doc = `bitmar-stream decoder (${kind}), d=${d}, ${nl} blocks, vocabulary ${V}, S=${S}, W=${W}`;
  return { shape: sh, cond: model(gc, `${doc}: conditioning`), step: model(g, `${doc}: one token`) };
}
