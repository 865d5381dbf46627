// Layer normalisation over rows of H elements (biased variance, eps inside the square root), and
// its backward. Rows are independent, so the host splits rows among threads; the dGamma/dBeta
// sums go through per-block partial sums over fixed blocks of rows (never per thread), which the
// host adds in block order, so every result is the same for any thread count.
import { madd } from './simd-math';
import { hsum } from './vector-math';

/**
 * Rows [rowStart, rowEnd): y = (x − mean)·rstd·gamma + beta, mean[r] and rstd[r] = 1/√(var + eps)
 * saved. Two passes over the row (mean, then Σ(x − mean)²), so a large mean costs no precision.
 * x, y: [R, H] f32; gamma, beta: [H]; mean, rstd: [R]
 */
export function layerNormRows(x: usize, gamma: usize, beta: usize, y: usize, mean: usize, rstd: usize, hidden: i32, eps: f32, rowStart: i32, rowEnd: i32): void {
  const H = <usize>hidden;
  const H4 = H & ~(<usize>3);
  const invH: f32 = 1.0 / <f32>hidden;
  for (let r = <usize>rowStart; r < <usize>rowEnd; r++) {
    const xr = x + r * H * 4;
    const yr = y + r * H * 4;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let h: usize = 0;
    for (; h + 8 <= H; h += 8) {
      s0 = f32x4.add(s0, v128.load(xr + h * 4));
      s1 = f32x4.add(s1, v128.load(xr + h * 4, 16));
    }
    for (; h < H4; h += 4) s0 = f32x4.add(s0, v128.load(xr + h * 4));
    let sum = hsum(f32x4.add(s0, s1));
    for (; h < H; h++) sum += load<f32>(xr + h * 4);
    const mu = sum * invH;

    const muV = f32x4.splat(mu);
    s0 = f32x4.splat(0);
    s1 = f32x4.splat(0);
    h = 0;
    for (; h + 8 <= H; h += 8) {
      const d0 = f32x4.sub(v128.load(xr + h * 4), muV);
      const d1 = f32x4.sub(v128.load(xr + h * 4, 16), muV);
      s0 = madd(d0, d0, s0);
      s1 = madd(d1, d1, s1);
    }
    for (; h < H4; h += 4) {
      const d0 = f32x4.sub(v128.load(xr + h * 4), muV);
      s0 = madd(d0, d0, s0);
    }
    let squares = hsum(f32x4.add(s0, s1));
    for (; h < H; h++) {
      const d = load<f32>(xr + h * 4) - mu;
      squares += d * d;
    }
    const rs: f32 = <f32>(1.0 / Math.sqrt(<f64>(squares * invH) + <f64>eps));
    const rsV = f32x4.splat(rs);
    h = 0;
    for (; h < H4; h += 4) {
      const xhat = f32x4.mul(f32x4.sub(v128.load(xr + h * 4), muV), rsV);
      v128.store(yr + h * 4, madd(xhat, v128.load(gamma + h * 4), v128.load(beta + h * 4)));
    }
    for (; h < H; h++) {
      const xhat = (load<f32>(xr + h * 4) - mu) * rs;
      store<f32>(yr + h * 4, xhat * load<f32>(gamma + h * 4) + load<f32>(beta + h * 4));
    }
    store<f32>(mean + r * 4, mu);
    store<f32>(rstd + r * 4, rs);
  }
}

/**
 * Rows [rowStart, rowEnd) of the backward, with x̂ = (x − mean)·rstd and g = dy ⊙ gamma:
 *   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))   (= or += by `accumulate`)
 * and, for each block of `blockRows` rows starting at a multiple of blockRows, the partial sums
 *   partials[block] = [Σ dy ⊙ x̂ (H values), Σ dy (H values)]   (f32, [nBlocks, 2, H])
 * rowStart must be a multiple of blockRows, so a block never straddles two calls.
 */
export function layerNormBackwardRows(dy: usize, x: usize, gamma: usize, mean: usize, rstd: usize, dx: usize, partials: usize, hidden: i32, accumulate: bool, blockRows: i32, rowStart: i32, rowEnd: i32): void {
  const H = <usize>hidden;
  const H4 = H & ~(<usize>3);
  const invH: f32 = 1.0 / <f32>hidden;
  for (let r = <usize>rowStart; r < <usize>rowEnd; r++) {
    const block = (r / <usize>blockRows);
    const pg = partials + block * 2 * H * 4; // Σ dy ⊙ x̂ of this block
    const pb = pg + H * 4; // Σ dy of this block
    if (r % <usize>blockRows == 0) {
      memory.fill(pg, 0, 2 * H * 4);
    }
    const xr = x + r * H * 4;
    const dyr = dy + r * H * 4;
    const dxr = dx + r * H * 4;
    const mu = load<f32>(mean + r * 4);
    const rs = load<f32>(rstd + r * 4);
    const muV = f32x4.splat(mu);
    const rsV = f32x4.splat(rs);

    let gS = f32x4.splat(0), gxS = f32x4.splat(0);
    let h: usize = 0;
    for (; h < H4; h += 4) {
      const o = h * 4;
      const xhat = f32x4.mul(f32x4.sub(v128.load(xr + o), muV), rsV);
      const d = v128.load(dyr + o);
      const g = f32x4.mul(d, v128.load(gamma + o));
      gS = f32x4.add(gS, g);
      gxS = madd(g, xhat, gxS);
      v128.store(pg + o, madd(d, xhat, v128.load(pg + o)));
      v128.store(pb + o, f32x4.add(v128.load(pb + o), d));
    }
    let gSum = hsum(gS), gxSum = hsum(gxS);
    for (; h < H; h++) {
      const o = h * 4;
      const xhat = (load<f32>(xr + o) - mu) * rs;
      const d = load<f32>(dyr + o);
      const g = d * load<f32>(gamma + o);
      gSum += g;
      gxSum += g * xhat;
      store<f32>(pg + o, load<f32>(pg + o) + d * xhat);
      store<f32>(pb + o, load<f32>(pb + o) + d);
    }
    const gMean = f32x4.splat(gSum * invH);
    const gxMean = f32x4.splat(gxSum * invH);
    h = 0;
    for (; h < H4; h += 4) {
      const o = h * 4;
      const xhat = f32x4.mul(f32x4.sub(v128.load(xr + o), muV), rsV);
      const g = f32x4.mul(v128.load(dyr + o), v128.load(gamma + o));
      let grad = f32x4.mul(rsV, f32x4.sub(f32x4.sub(g, gMean), f32x4.mul(xhat, gxMean)));
      if (accumulate) grad = f32x4.add(v128.load(dxr + o), grad);
      v128.store(dxr + o, grad);
    }
    const gm = gSum * invH, gxm = gxSum * invH;
    for (; h < H; h++) {
      const o = h * 4;
      const xhat = (load<f32>(xr + o) - mu) * rs;
      const g = load<f32>(dyr + o) * load<f32>(gamma + o);
      let grad = rs * (g - gm - xhat * gxm);
      if (accumulate) grad += load<f32>(dxr + o);
      store<f32>(dxr + o, grad);
    }
  }
}

/**
 * Columns [colStart, colEnd) of dGamma += Σ_blocks partials[block].Σdy⊙x̂ and
 * dBeta += Σ_blocks partials[block].Σdy, adding the blocks in order 0, 1, 2, … (deterministic).
 */
export function layerNormReduceBlocks(partials: usize, blocks: i32, dGamma: usize, dBeta: usize, hidden: i32, colStart: i32, colEnd: i32): void {
  const H = <usize>hidden;
  let h = <usize>colStart;
  const end = <usize>colEnd;
  for (; h + 4 <= end; h += 4) {
    let sg = f32x4.splat(0), sb = f32x4.splat(0);
    for (let b: usize = 0; b < <usize>blocks; b++) {
      const pg = partials + b * 2 * H * 4 + h * 4;
      sg = f32x4.add(sg, v128.load(pg));
      sb = f32x4.add(sb, v128.load(pg + H * 4));
    }
    v128.store(dGamma + h * 4, f32x4.add(v128.load(dGamma + h * 4), sg));
    v128.store(dBeta + h * 4, f32x4.add(v128.load(dBeta + h * 4), sb));
  }
  for (; h < end; h++) {
    let sg: f32 = 0, sb: f32 = 0;
    for (let b: usize = 0; b < <usize>blocks; b++) {
      const pg = partials + b * 2 * H * 4 + h * 4;
      sg += load<f32>(pg);
      sb += load<f32>(pg + H * 4);
    }
    store<f32>(dGamma + h * 4, load<f32>(dGamma + h * 4) + sg);
    store<f32>(dBeta + h * 4, load<f32>(dBeta + h * 4) + sb);
  }
}
