// A minimal ONNX writer: the protobuf wire format (varints, length-delimited fields, fixed32) hand-
// encoded for the few messages a model needs — ModelProto, OperatorSetIdProto, GraphProto, NodeProto,
// AttributeProto, TensorProto (raw_data), ValueInfoProto/TypeProto/TensorShapeProto — plus a small
// graph builder. No protobuf library: protobufjs is not a dependency. Field numbers are those of
// onnx/onnx.proto (proto2); repeated scalars are written unpacked, which every parser accepts.
// Used by the onnxruntime-node baselines of `npm run bench` (bench/onnx.ts).

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** Appends protobuf fields to a growable buffer. */
export class PbWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  /** A raw varint (int64 two's complement for negatives: 10 bytes, as protobuf does). */
  rawVarint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
    return this;
  }

  private tag(field: number, wire: 0 | 1 | 2 | 5): void {
    this.rawVarint((field << 3) | wire);
  }

  /** Wire type 0: int32, int64, enum, bool. */
  varint(field: number, v: number | bigint): this {
    this.tag(field, 0);
    return this.rawVarint(v);
  }

  /** Wire type 5: float. */
  float(field: number, v: number): this {
    this.tag(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
    return this;
  }

  /** Wire type 2: bytes. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.rawVarint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** Wire type 2: an embedded message. */
  message(field: number, m: PbWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** A dimension: a size, or a symbolic name for a dynamic axis. */
export type Dim = number | string;

export interface TensorData {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly number[];
  /** Little-endian element bytes (raw_data). */
  readonly raw: Uint8Array;
}

export type Attr =
  | { readonly i: number }
  | { readonly f: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] }
  | { readonly t: TensorData };

export interface NodeData {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Readonly<Record<string, Attr>>;
  readonly domain?: string;
  readonly name?: string;
}

export interface ValueInfo {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly Dim[];
}

export interface GraphData {
  readonly name: string;
  readonly nodes: readonly NodeData[];
  readonly initializers: readonly TensorData[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

export interface ModelData {
  readonly graph: GraphData;
  /** Opsets by domain ('' = ai.onnx). */
  readonly opsets: Readonly<Record<string, number>>;
  readonly irVersion?: number;
  readonly producer?: string;
  readonly docString?: string;
}

export function encodeTensor(t: TensorData): PbWriter {
  const w = new PbWriter(t.raw.length + 64);
  for (const d of t.dims) w.varint(1, d); // dims
  w.varint(2, t.dataType); // data_type
  w.string(8, t.name); // name
  w.bytes(9, t.raw); // raw_data
  return w;
}

function encodeAttr(name: string, a: Attr): PbWriter {
  const w = new PbWriter();
  w.string(1, name);
  if ('i' in a) w.varint(3, a.i).varint(20, 2);
  else if ('f' in a) w.float(2, a.f).varint(20, 1);
  else if ('s' in a) w.string(4, a.s).varint(20, 3);
  else if ('ints' in a) {
    for (const v of a.ints) w.varint(8, v);
    w.varint(20, 7);
  } else if ('floats' in a) {
    for (const v of a.floats) w.float(7, v);
    w.varint(20, 6);
  } else w.message(5, encodeTensor(a.t)).varint(20, 4);
  return w;
}

function encodeNode(n: NodeData): PbWriter {
  const w = new PbWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, encodeAttr(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: ValueInfo): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new PbWriter().varint(1, d) : new PbWriter().string(2, d));
  const tensorType = new PbWriter().varint(1, v.dataType).message(2, shape);
  return new PbWriter().string(1, v.name).message(2, new PbWriter().message(1, tensorType));
}

export function encodeGraph(g: GraphData): PbWriter {
  const size = g.initializers.reduce((s, t) => s + t.raw.length + 64, 1024);
  const w = new PbWriter(size);
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w;
}

/** A serialised ModelProto. */
export function encodeModel(m: ModelData): Uint8Array {
  const graph = encodeGraph(m.graph).finish();
  const w = new PbWriter(graph.length + 256);
  w.varint(1, m.irVersion ?? 8); // ir_version (8 goes with opset 17)
  w.string(2, m.producer ?? 'bitmar-node tools/onnx');
  if (m.docString) w.string(6, m.docString);
  w.bytes(7, graph);
  for (const [domain, version] of Object.entries(m.opsets)) {
    const o = new PbWriter();
    if (domain) o.string(1, domain);
    o.varint(2, version);
    w.message(8, o);
  }
  return w.finish();
}

// ---- tensors ------------------------------------------------------------------------------------

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorData {
  if (data.length !== dims.reduce((p, d) => p * d, 1)) throw new RangeError(`tensor ${name}: ${data.length} floats for dims [${dims.join(', ')}]`);
  return { name, dataType: DataType.FLOAT, dims, raw: bytesOf(data) };
}

export function int8Tensor(name: string, dims: readonly number[], data: Int8Array): TensorData {
  if (data.length !== dims.reduce((p, d) => p * d, 1)) throw new RangeError(`tensor ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
  return { name, dataType: DataType.INT8, dims, raw: bytesOf(data) };
}

export function int64Tensor(name: string, dims: readonly number[], data: readonly number[]): TensorData {
  return { name, dataType: DataType.INT64, dims, raw: bytesOf(BigInt64Array.from(data, (v) => BigInt(v))) };
}

// ---- graph builder ------------------------------------------------------------------------------

/** Builds a graph node by node; value names are generated unless given. */
export class GraphBuilder {
  readonly nodes: NodeData[] = [];
  readonly initializers: TensorData[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly consts = new Map<string, string>();

  constructor(readonly name: string) {}

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, dataType: DataTypeCode, dims: readonly Dim[]): string {
    this.inputs.push({ name, dataType, dims });
    return name;
  }

  output(name: string, dataType: DataTypeCode, dims: readonly Dim[]): void {
    this.outputs.push({ name, dataType, dims });
  }

  init(t: TensorData): string {
    this.initializers.push(t);
    return t.name;
  }

  /** A shared scalar or small constant (deduplicated by value). */
  constF(values: readonly number[], dims: readonly number[] = []): string {
    const key = `f:${dims.join('x')}:${values.join(',')}`;
    let n = this.consts.get(key);
    if (n === undefined) {
      n = this.init(floatTensor(this.fresh('c'), dims, Float32Array.from(values)));
      this.consts.set(key, n);
    }
    return n;
  }

  constI64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let n = this.consts.get(key);
    if (n === undefined) {
      n = this.init(int64Tensor(this.fresh('k'), dims, values));
      this.consts.set(key, n);
    }
    return n;
  }

  /** Adds a node; returns its output names (generated from the op unless `outputs` is given). */
  nodeN(op: string, inputs: readonly string[], nOut: number, attrs?: Record<string, Attr>, outputs?: readonly string[], domain?: string): string[] {
    const outs = outputs ? [...outputs] : Array.from({ length: nOut }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs, domain, name: this.fresh(`n_${op}`) });
    return outs;
  }

  /** A one-output node. */
  node(op: string, inputs: readonly string[], attrs?: Record<string, Attr>, output?: string): string {
    return this.nodeN(op, inputs, 1, attrs, output ? [output] : undefined)[0]!;
  }

  graph(): GraphData {
    return { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs };
  }
}
