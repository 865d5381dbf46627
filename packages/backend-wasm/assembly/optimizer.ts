// AdamW in place, and the blocked Σx² behind gradient-norm clipping.

/**
 * Elements [start, end), PyTorch AdamW (decoupled weight decay):
 *   g = grad·gradScale;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
 *   param −= lr·( (m / bc1) / (√(v / bc2) + eps) + weightDecay·param )
 * with the bias corrections bc1 = 1 − β1^step, bc2 = 1 − β2^step computed by the host in f64.
 */
export function adamwRange(param: usize, grad: usize, m: usize, v: usize, lr: f32, beta1: f32, beta2: f32, eps: f32, weightDecay: f32, gradScale: f32, bc1: f32, bc2: f32, start: i32, end: i32): void {
  const b1 = f32x4.splat(beta1), b2 = f32x4.splat(beta2);
  const c1 = f32x4.splat(<f32>1 - beta1), c2 = f32x4.splat(<f32>1 - beta2);
  const gs = f32x4.splat(gradScale), epsV = f32x4.splat(eps), wd = f32x4.splat(weightDecay), lrV = f32x4.splat(lr);
  const bc1V = f32x4.splat(bc1), bc2V = f32x4.splat(bc2);
  let e = start;
  for (; e <= end - 4; e += 4) {
    const o = <usize>e * 4;
    const g = f32x4.mul(v128.load(grad + o), gs);
    const mNew = f32x4.add(f32x4.mul(b1, v128.load(m + o)), f32x4.mul(c1, g));
    const vNew = f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(f32x4.mul(c2, g), g));
    const p = v128.load(param + o);
    const step = f32x4.add(f32x4.div(f32x4.div(mNew, bc1V), f32x4.add(f32x4.sqrt(f32x4.div(vNew, bc2V)), epsV)), f32x4.mul(wd, p));
    v128.store(param + o, f32x4.sub(p, f32x4.mul(lrV, step)));
    v128.store(m + o, mNew);
    v128.store(v + o, vNew);
  }
  for (; e < end; e++) {
    const o = <usize>e * 4;
    const g = load<f32>(grad + o) * gradScale;
    const mNew = beta1 * load<f32>(m + o) + (<f32>1 - beta1) * g;
    const vNew = beta2 * load<f32>(v + o) + (<f32>1 - beta2) * g * g;
    const p = load<f32>(param + o);
    const step = mNew / bc1 / (Mathf.sqrt(vNew / bc2) + eps) + weightDecay * p;
    store<f32>(param + o, p - lr * step);
    store<f32>(m + o, mNew);
    store<f32>(v + o, vNew);
  }
}

/**
 * For blocks [blockStart, blockEnd) of `blockSize` elements (the last one may be short), writes
 * partials[block] = Σ x² over the block (f64; sixteen f32 lanes inside the block, added in a fixed
 * order). Block boundaries do not depend on threads; the host adds the partials in block order.
 */
export function sumSquaresBlocks(x: usize, size: i32, blockSize: i32, partials: usize, blockStart: i32, blockEnd: i32): void {
  for (let blk = blockStart; blk < blockEnd; blk++) {
    const start = blk * blockSize;
    const end = min(size, start + blockSize);
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let e = start;
    for (; e <= end - 16; e += 16) {
      const p = x + <usize>e * 4;
      const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
      s0 = f32x4.add(s0, f32x4.mul(a, a));
      s1 = f32x4.add(s1, f32x4.mul(b, b));
      s2 = f32x4.add(s2, f32x4.mul(c, c));
      s3 = f32x4.add(s3, f32x4.mul(d, d));
    }
    const s = f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3));
    let sum: f64 = <f64>f32x4.extract_lane(s, 0) + <f64>f32x4.extract_lane(s, 1) + <f64>f32x4.extract_lane(s, 2) + <f64>f32x4.extract_lane(s, 3);
    for (; e < end; e++) {
      const v = <f64>load<f32>(x + <usize>e * 4);
      sum += v * v;
    }
    store<f64>(partials + <usize>blk * 8, sum);
  }
}

/** out[0] = Σ_b partials[b] over blocks 0 … blocks−1 in order (f64), stored as f32. */
export function sumSquaresFinish(partials: usize, blocks: i32, out: usize): void {
  let sum: f64 = 0;
  for (let b = 0; b < blocks; b++) sum += load<f64>(partials + <usize>b * 8);
  store<f32>(out, <f32>sum);
}
