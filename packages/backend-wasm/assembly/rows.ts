// Row movement: the embedding lookup, gatherRows, and the scatter-add behind scatterAddRows and the
// embedding backward. The scatter-add is deterministic for any thread count: the host splits the
// DESTINATION rows among threads, and each thread walks all sources in order t = 0, 1, …, adding
// those that land in its rows, so every destination row sums its sources in the same order.
// Ids are checked by the host before any kernel runs.

/** dst[0..n) = a[0..n) + b[0..n) (+ c[0..n) when c != 0). */
// @ts-ignore: decorator
@inline function addRows(dst: usize, a: usize, b: usize, c: usize, n: usize): void {
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  if (c) {
    for (; o < n4 * 4; o += 16) v128.store(dst + o, f32x4.add(f32x4.add(v128.load(a + o), v128.load(b + o)), v128.load(c + o)));
    for (; o < n * 4; o += 4) store<f32>(dst + o, load<f32>(a + o) + load<f32>(b + o) + load<f32>(c + o));
  } else {
    for (; o < n4 * 4; o += 16) v128.store(dst + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
    for (; o < n * 4; o += 4) store<f32>(dst + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/**
 * Tokens [tokenStart, tokenEnd): out[t] = wordEmb[inputIds[t]] + posEmb[positionIds[t]]
 * (+ blockPosEmb[blockPositionIds[t]] when hasBlock). Tables [rows, H], out [T, H], ids i32 [T].
 */
export function embeddingRows(wordEmb: usize, posEmb: usize, blockPosEmb: usize, inputIds: usize, positionIds: usize, blockPositionIds: usize, hasBlock: bool, out: usize, hidden: i32, tokenStart: i32, tokenEnd: i32): void {
  const H = <usize>hidden;
  for (let t = <usize>tokenStart; t < <usize>tokenEnd; t++) {
    const w = wordEmb + <usize>load<i32>(inputIds + t * 4) * H * 4;
    const p = posEmb + <usize>load<i32>(positionIds + t * 4) * H * 4;
    const c = hasBlock ? blockPosEmb + <usize>load<i32>(blockPositionIds + t * 4) * H * 4 : 0;
    addRows(out + t * H * 4, w, p, c, H);
  }
}

/** Rows [start, end) of out: out[t] = x[index[t]] (rows of `width` f32). */
export function gatherRowsRange(x: usize, index: usize, out: usize, width: i32, start: i32, end: i32): void {
  const W = <usize>width;
  for (let t = <usize>start; t < <usize>end; t++) {
    memory.copy(out + t * W * 4, x + <usize>load<i32>(index + t * 4) * W * 4, W * 4);
  }
}

/**
 * dx[index[t]] += src[t] for t = 0 … count−1 in order, restricted to destination rows
 * [rowStart, rowEnd). src: [count, W], dx: [rows, W].
 */
export function scatterAddRowsRange(src: usize, index: usize, dx: usize, count: i32, width: i32, rowStart: i32, rowEnd: i32): void {
  const W = <usize>width;
  const W4 = W & ~(<usize>3);
  for (let t: usize = 0; t < <usize>count; t++) {
    const r = load<i32>(index + t * 4);
    if (r < rowStart || r >= rowEnd) continue;
    const d = dx + <usize>r * W * 4;
    const s = src + t * W * 4;
    let o: usize = 0;
    for (; o < W4 * 4; o += 16) v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
    for (; o < W * 4; o += 4) store<f32>(d + o, load<f32>(d + o) + load<f32>(s + o));
  }
}
