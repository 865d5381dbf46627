// A small builder for ONNX graphs: unique value names, constants, initializers, and one method per
// op used by the GLM export (so the GLM graph reads like the model's forward).
import { DataType, type AttributeValue, type GraphSpec, type NodeSpec, type TensorSpec, type ValueInfo } from './onnx-proto.js';

function bytesOf(a: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(info: ValueInfo): string {
    this.inputs.push(info);
    return info.name;
  }

  output(info: ValueInfo): void {
    this.outputs.push(info);
  }

  /** A float32 initializer (a view of `data`: keep it alive and unchanged until the model is written). */
  weight(name: string, dims: number[], data: Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new RangeError(`initializer ${name}: ${data.length} values for shape [${dims.join(', ')}] (${n})`);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, raw: bytesOf(data) });
    return name;
  }

  /** An int64 constant initializer (shared between uses of the same value). */
  ints(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh('const_i64');
    this.initializers.push({ name, dataType: DataType.INT64, dims, raw: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))) });
    this.constants.set(key, name);
    return name;
  }

  /** A float32 scalar constant (shared). */
  scalar(value: number): string {
    const key = `f32:${value}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh('const_f32');
    this.initializers.push({ name, dataType: DataType.FLOAT, dims: [], raw: bytesOf(Float32Array.of(value)) });
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node; returns its single output's name (or the named outputs). */
  op(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>, outputName?: string): string {
    const out = outputName ?? this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], name: `${opType}_${this.nodes.length}`, ...(attributes ? { attributes } : {}) });
    return out;
  }

  opMulti(opType: string, inputs: string[], outputCount: number, attributes?: Record<string, AttributeValue>): string[] {
    const outs = Array.from({ length: outputCount }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, inputs, outputs: outs, name: `${opType}_${this.nodes.length}`, ...(attributes ? { attributes } : {}) });
    return outs;
  }

  add(a: string, b: string, out?: string): string {
    return this.op('Add', [a, b], undefined, out);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  /** x @ Wᵀ + b with Wᵀ stored as an initializer [in, out]. */
  linear(x: string, weightT: string, bias: string): string {
    return this.add(this.matmul(x, weightT), bias);
  }
  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }
  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.ints(shape)]);
  }
  unsqueeze(x: string, axes: number[]): string {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }

  graph(name: string, doc?: string): GraphSpec {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs, ...(doc ? { doc } : {}) };
  }
}
