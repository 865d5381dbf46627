// ONNX's protobuf messages (onnx/onnx.proto3, IR version 8) as plain TypeScript values, and their
// encoding. Field numbers are those of onnx.proto3; only the fields an exported GLM uses exist here.
import { ProtoMessage } from './protobuf.js';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7, BOOL: 9 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values used here. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** A dimension: a fixed size or a named dynamic axis ('batch', 'seq', …). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  shape: Dim[];
  doc?: string;
}

export type AttributeValue = number | string | number[] | { floats: number[] } | { float: number };

export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: Record<string, AttributeValue>;
}

/** Where an external initializer's bytes live: `location` relative to the .onnx file. */
export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

export interface TensorSpec {
  name: string;
  dataType: DataTypeCode;
  dims: number[];
  /** Little-endian element bytes (a view of the caller's array; not copied). */
  raw: Uint8Array;
  /** Set: the bytes go to an external data file instead of `raw_data`. */
  external?: ExternalLocation;
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  doc?: string;
}

export interface ModelSpec {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  graph: GraphSpec;
}

function encodeValueInfo(v: ValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.shape) {
    const dim = new ProtoMessage();
    if (typeof d === 'number') dim.varint(1, d); // dim_value
    else dim.string(2, d); // dim_param
    shape.message(1, dim); // TensorShapeProto.dim
  }
  const tensorType = new ProtoMessage().varint(1, v.elemType).message(2, shape); // TypeProto.Tensor
  const type = new ProtoMessage().message(1, tensorType); // TypeProto.tensor_type
  const m = new ProtoMessage().string(1, v.name).message(2, type);
  if (v.doc) m.string(3, v.doc);
  return m;
}

function encodeAttribute(name: string, value: AttributeValue): ProtoMessage {
  const a = new ProtoMessage().string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: ${value} is not an integer (use { float } for floats)`);
    a.varint(3, value).varint(20, AttrType.INT);
  } else if (typeof value === 'string') {
    a.string(4, value).varint(20, AttrType.STRING);
  } else if (Array.isArray(value)) {
    a.packedVarints(8, value).varint(20, AttrType.INTS);
  } else if ('floats' in value) {
    a.packedFloats(7, value.floats).varint(20, AttrType.FLOATS);
  } else {
    a.float(2, value.float).varint(20, AttrType.FLOAT);
  }
  return a;
}

function encodeNode(n: NodeSpec): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) m.message(5, encodeAttribute(k, v));
  return m;
}

export function encodeTensor(t: TensorSpec): ProtoMessage {
  const m = new ProtoMessage().packedVarints(1, t.dims).varint(2, t.dataType).string(8, t.name);
  if (t.external) {
    const entry = (key: string, value: string): ProtoMessage => new ProtoMessage().string(1, key).string(2, value);
    m.message(13, entry('location', t.external.location));
    m.message(13, entry('offset', String(t.external.offset)));
    m.message(13, entry('length', String(t.external.length)));
    m.varint(14, 1); // data_location = EXTERNAL
  } else {
    m.bytes(9, t.raw); // raw_data
  }
  return m;
}

function encodeGraph(g: GraphSpec): ProtoMessage {
  const m = new ProtoMessage();
  for (const n of g.nodes) m.message(1, encodeNode(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, encodeTensor(t));
  if (g.doc) m.string(10, g.doc);
  for (const v of g.inputs) m.message(11, encodeValueInfo(v));
  for (const v of g.outputs) m.message(12, encodeValueInfo(v));
  return m;
}

/** The ModelProto encoding (chunks reference the initializers' bytes). */
export function encodeModel(model: ModelSpec): ProtoMessage {
  const m = new ProtoMessage()
    .varint(1, model.irVersion)
    .string(2, model.producerName)
    .string(3, model.producerVersion);
  if (model.docString) m.string(6, model.docString);
  m.message(7, encodeGraph(model.graph));
  m.message(8, new ProtoMessage().string(1, '').varint(2, model.opsetVersion)); // default ai.onnx domain
  for (const [k, v] of Object.entries(model.metadata ?? {})) m.message(14, new ProtoMessage().string(1, k).string(2, v));
  return m;
}
