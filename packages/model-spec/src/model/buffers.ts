// A group of backend buffers allocated together and freed together (an activation store, the
// scratch of a backward pass), so nothing leaks on any path.
import type { Backend, Tensor } from '@blankglm/tensor';

export class BufferGroup {
  private tensors: Tensor[] = [];

  constructor(private readonly backend: Backend) {}

  /** A zero-filled f32 buffer of `size` elements. */
  f32(size: number, label: string): Tensor {
    const t = this.backend.alloc('f32', size, label);
    this.tensors.push(t);
    return t;
  }

  /** A zero-filled float buffer of `size` elements in `dtype` (f32 or bf16). */
  float(dtype: 'f32' | 'bf16', size: number, label: string): Tensor {
    const t = this.backend.alloc(dtype, size, label);
    this.tensors.push(t);
    return t;
  }

  /**
   * A float buffer that the next op writing it overwrites whole before anything reads it (an op
   * output: activations, `=` gradients): the backend may skip zero-filling it (alloc's
   * 'uninitialized'; the reference backend fills it with NaN instead, so a wrong use shows).
   */
  output(dtype: 'f32' | 'bf16', size: number, label: string): Tensor {
    const t = this.backend.alloc(dtype, size, label, 'uninitialized');
    this.tensors.push(t);
    return t;
  }

  /** An i32 buffer holding `data`. */
  i32(data: ArrayLike<number>, label: string): Tensor {
    const t = this.backend.alloc('i32', data.length, label, 'uninitialized');
    this.tensors.push(t);
    this.backend.write(t as Tensor & { dtype: 'i32' }, data);
    return t;
  }

  get count(): number {
    return this.tensors.length;
  }

  free(): void {
    for (const t of this.tensors) this.backend.free(t);
    this.tensors = [];
  }
}
