// Host-side check of the index and partition arithmetic of the segmented row sum, the batched
// bitonic sort and the fused layer-norm backward (kernels.cuh) and of the split decode attention
// (attention.cuh), with no GPU: the kernels' loops
// are replayed on the CPU, thread by thread, calling the same __host__ __device__ helpers.
// Slots and partials start as NaN, so reading one that no thread wrote shows up in the result.
//
//   nvcc -std=c++17 -O2 -o /tmp/host-check native/host-check.cu && /tmp/host-check
// (not part of the addon build)
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "attention.cuh"
#include "kernels.cuh"

static int failures = 0;
#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      if (failures++ < 20) {                 \
        printf("FAIL %s:%d: ", __FILE__, __LINE__); \
        printf(__VA_ARGS__);                 \
        printf("\n");                        \
      }                                      \
    }                                        \
  } while (0)

// ---- the sort, as scatterAddRowsSorted launches it ----
static std::vector<unsigned long long> sortKeys(const std::vector<std::vector<int>>& ids, int count, int& paddedOut) {
  const int n = (int)ids.size();
  int padded = SORT_CHUNK;
  while (padded < count) padded <<= 1;
  paddedOut = padded;
  const int total = padded * n;
  std::vector<unsigned long long> keys(total);
  for (long long e = 0; e < total; e++) {  // makeSortKeysKernel
    const int s = (int)(e / padded), i = (int)(e % padded);
    keys[e] = i < count ? ((unsigned long long)(uint32_t)ids[s][i] << 32) | (uint32_t)i : ~0ULL;
  }
  const int segMask = padded - 1;
  auto shared = [&](int kFirst, int kLast) {  // bitonicSharedKernel, every block
    for (int blk = 0; blk < total / SORT_CHUNK; blk++) {
      const int base = blk * SORT_CHUNK;
      unsigned long long* s = keys.data() + base;
      for (int k = kFirst; k <= kLast; k <<= 1)
        for (int j = std::min(k >> 1, 1024); j > 0; j >>= 1)
          for (int t = 0; t < 1024; t++) {
            const int i = (t / j) * 2 * j + (t % j), p = i + j;
            const bool ascending = bitonicAscending(base + i, segMask, k);
            const unsigned long long a = s[i], b = s[p];
            if ((a > b) == ascending) s[i] = b, s[p] = a;
          }
    }
  };
  shared(2, SORT_CHUNK);
  for (int kk = 2 * SORT_CHUNK; kk <= padded; kk <<= 1) {
    for (int j = kk >> 1; j >= SORT_CHUNK; j >>= 1)
      for (int i = 0; i < total; i++) {  // bitonicGlobalKernel
        const int p = i ^ j;
        if (p <= i) continue;
        const bool ascending = bitonicAscending(i, segMask, kk);
        const unsigned long long a = keys[i], b = keys[p];
        if ((a > b) == ascending) keys[i] = b, keys[p] = a;
      }
    shared(kk, kk);
  }
  return keys;
}

struct Report {
  int kind;
  long long index, value, limit;
  bool operator<(const Report& o) const { return std::tie(kind, index, value, limit) < std::tie(o.kind, o.index, o.value, o.limit); }
  bool operator==(const Report& o) const { return !(*this < o) && !(o < *this); }
};

// ---- segmentedSumChunkKernel + segmentedSumSpanKernel, replayed ----
static void segmentedSum(const std::vector<double>& src, const std::vector<unsigned long long>& keysAll, int padded, int count, int W, int n,
                         std::vector<std::vector<double>>& dst, const std::vector<int>& rowsOf, const std::vector<int>& kindOf,
                         std::vector<Report>& reports, std::vector<std::vector<int>>& writes) {
  const int chunks = (count + SEG_CHUNK - 1) / SEG_CHUNK;
  std::vector<double> partialAll((size_t)n * chunks * 2 * W, NAN);
  const int tilesY = (W + SEG_BLOCK_COLS - 1) / SEG_BLOCK_COLS;
  for (int seg = 0; seg < n; seg++)
    for (int q = 0; q < chunks; q++)
      for (int by = 0; by < tilesY; by++) {
        const unsigned long long* keys = keysAll.data() + (long long)seg * padded;
        double* partial = partialAll.data() + (long long)seg * chunks * 2 * W;
        const int rows = rowsOf[seg];
        long long win[SEG_CHUNK + 2];
        int tOf[SEG_CHUNK];
        static double slots[SEG_WARPS][2][SEG_BLOCK_COLS];
        for (auto& a : slots)
          for (auto& b : a)
            for (auto& c : b) c = NAN;
        const int c0 = q * SEG_CHUNK, chunkLen = std::min(SEG_CHUNK, count - c0);
        for (int i = 0; i < SEG_CHUNK + 2; i++) {
          const long long p = (long long)c0 - 1 + i;
          const bool in = p >= 0 && p < count;
          const unsigned long long k = in ? keys[p] : 0ULL;
          win[i] = in ? (long long)sortedKeyId(k) : SEG_NO_ID;
          if (i >= 1 && i <= SEG_CHUNK) tOf[i - 1] = in ? sortedKeyT(k) : 0;
        }
        const int colBase = by * SEG_BLOCK_COLS;
        auto addDst = [&](long long row, int lane, const double* s) {
          for (int c = 0; c < SEG_COLS; c++) {
            const int col = colBase + c * 32 + lane;
            if (col < W) {
              dst[seg][row * W + col] += s[c];
              writes[seg][row * W + col]++;
            }
          }
        };
        for (int w = 0; w < SEG_WARPS; w++)
          for (int lane = 0; lane < 32; lane++) {
            const int u0 = w * SEG_UNIT, len = std::max(0, std::min(SEG_UNIT, chunkLen - u0));
            double acc[SEG_COLS] = {};
            int first = 0;
            for (int i = 0; i < len; i++) {
              const long long rowOff = (long long)tOf[u0 + std::min(i, len - 1)] * W;
              for (int c = 0; c < SEG_COLS; c++) {
                const int col = colBase + c * 32 + lane;
                acc[c] += col < W ? src[rowOff + col] : 0.0;
              }
              if (!segPieceEnds(win, u0, len, i)) continue;
              bool before, after;
              segPieceOpen(win, u0, len, first, i, before, after);
              const long long row = win[u0 + first + 1];
              const bool ok = row >= 0 && row < rows;
              if (!before && !ok && lane == 0 && by == 0) reports.push_back({kindOf[seg], tOf[u0 + first], row, rows});
              if (!before && !after) {
                if (ok) addDst(row, lane, acc);
              } else {
                for (int c = 0; c < SEG_COLS; c++) slots[w][first == 0 ? 0 : 1][c * 32 + lane] = acc[c];
              }
              for (int c = 0; c < SEG_COLS; c++) acc[c] = 0;
              first = i + 1;
            }
          }
        // __syncthreads()
        for (int w = 0; w < SEG_WARPS; w++)
          for (int lane = 0; lane < 32; lane++) {
            const int u0 = w * SEG_UNIT, len = std::max(0, std::min(SEG_UNIT, chunkLen - u0));
            const SegHandled h = segHandled(win, w, u0, len);
            for (int m = 0; m < 2 && m < h.n; m++) {
              const long long g = h.id[m];
              double s[SEG_COLS];
              for (int c = 0; c < SEG_COLS; c++) s[c] = slots[w][h.slot[m]][c * 32 + lane];
              const int vEnd = segUnitsEnd(win, w, chunkLen, g);
              for (int v = w + 1; v < vEnd; v++)
                for (int c = 0; c < SEG_COLS; c++) s[c] += slots[v][0][c * 32 + lane];
              int chunkSlot;
              if (segChunkInside(win, g, chunkSlot)) {
                if (g >= 0 && g < rows) addDst(g, lane, s);
              } else {
                for (int c = 0; c < SEG_COLS; c++) {
                  const int col = colBase + c * 32 + lane;
                  if (col < W) partial[((long long)q * 2 + chunkSlot) * W + col] = s[c];
                }
              }
            }
          }
      }
  const int spanY = (W + SEG_SPAN_COLS - 1) / SEG_SPAN_COLS;
  for (int seg = 0; seg < n; seg++)
    for (int q = 0; q < chunks; q++)
      for (int by = 0; by < spanY; by++) {
        const unsigned long long* keys = keysAll.data() + (long long)seg * padded;
        const double* partial = partialAll.data() + (long long)seg * chunks * 2 * W;
        int g;
        if (!segSpanStart(keys, count, q, g)) continue;
        if (g < 0 || g >= rowsOf[seg]) continue;
        int firstOut = INT_MAX;
        for (long long r0 = q + 1;; r0 += 256) {
          for (int tid = 0; tid < 256; tid++) {
            const long long r = r0 + tid;
            if (!segChunkHolds(keys, count, r, g)) firstOut = std::min(firstOut, (int)r);
          }
          if (firstOut != INT_MAX) break;
        }
        const int last = firstOut - 1;
        for (int tid = 0; tid < 256; tid++) {
          const int col = by * SEG_SPAN_COLS + tid;
          if (col >= W) continue;
          const int firstSlot = sortedKeyId(keys[(long long)q * SEG_CHUNK]) == g ? 0 : 1;
          double s = partial[((long long)q * 2 + firstSlot) * W + col];
          for (int r = q + 1; r <= last; r++) s += partial[(long long)r * 2 * W + col];
          dst[seg][(long long)g * W + col] += s;
          writes[seg][(long long)g * W + col]++;
        }
      }
}

static void checkScatter(std::mt19937& rng, int count, int W, int n, int mode, bool withBad) {
  std::vector<int> rowsOf(n), kindOf(n);
  std::vector<std::vector<int>> ids(n, std::vector<int>(count));
  for (int s = 0; s < n; s++) {
    rowsOf[s] = mode == 0 ? 1 + (int)(rng() % 5) : mode == 1 ? 1 + (int)(rng() % 600) : 30592;
    kindOf[s] = s;
    const int dominant = (int)(rng() % rowsOf[s]);
    for (int t = 0; t < count; t++) {
      int id;
      switch (mode) {
        case 0: id = (int)(rng() % rowsOf[s]); break;                            // few rows: long groups
        case 1: id = rng() % 100 < 85 ? dominant : (int)(rng() % rowsOf[s]); break;  // one dominant group (GLM block positions)
        default: id = (int)(rng() % rowsOf[s]); break;                           // mostly distinct
      }
      if (withBad && rng() % 97 == 0) id = rng() % 2 ? -1 - (int)(rng() % 3) : rowsOf[s] + (int)(rng() % 3);
      ids[s][t] = id;
    }
    if (withBad && rng() % 3 == 0) {  // a long run of one bad id
      const int bad = rowsOf[s] + 7;
      for (int t = 0; t < count; t++)
        if (rng() % 2) ids[s][t] = bad;
    }
  }
  int padded;
  const std::vector<unsigned long long> keys = sortKeys(ids, count, padded);
  for (int s = 0; s < n; s++) {
    std::vector<unsigned long long> want(padded, ~0ULL);
    for (int t = 0; t < count; t++) want[t] = ((unsigned long long)(uint32_t)ids[s][t] << 32) | (uint32_t)t;
    std::sort(want.begin(), want.end());
    CHECK(std::equal(want.begin(), want.end(), keys.begin() + (long long)s * padded), "sort: segment %d of %d (count %d) differs", s, n, count);
  }
  std::vector<double> src((size_t)count * W);
  for (auto& v : src) v = (double)((int)(rng() % 2001) - 1000);  // integers: every order sums exactly
  std::vector<std::vector<double>> dst(n), want(n);
  std::vector<std::vector<int>> writes(n);
  for (int s = 0; s < n; s++) {
    dst[s].resize((size_t)rowsOf[s] * W);
    for (auto& v : dst[s]) v = (double)((int)(rng() % 201) - 100);
    want[s] = dst[s];
    writes[s].assign(dst[s].size(), 0);
  }
  std::vector<Report> reports;
  segmentedSum(src, keys, padded, count, W, n, dst, rowsOf, kindOf, reports, writes);
  std::set<Report> wantReports;
  for (int s = 0; s < n; s++) {
    std::map<int, int> firstT;
    std::vector<double> sum(dst[s].size(), 0.0);
    std::vector<char> hit(rowsOf[s], 0);
    for (int t = 0; t < count; t++) {
      const int id = ids[s][t];
      if (id < 0 || id >= rowsOf[s]) {
        if (!firstT.count(id)) firstT[id] = t;
        continue;
      }
      hit[id] = 1;
      for (int c = 0; c < W; c++) sum[(size_t)id * W + c] += src[(size_t)t * W + c];
    }
    for (auto& [id, t] : firstT) wantReports.insert({kindOf[s], t, id, rowsOf[s]});
    for (size_t e = 0; e < dst[s].size(); e++) {
      const int row = (int)(e / W);
      CHECK(writes[s][e] == (hit[row] ? 1 : 0), "count %d W %d n %d mode %d: segment %d row %d col %d written %d times (hit %d)", count, W, n, mode, s,
            row, (int)(e % W), writes[s][e], hit[row]);
      CHECK(dst[s][e] == want[s][e] + sum[e], "count %d W %d n %d mode %d: segment %d row %d col %d = %g, want %g", count, W, n, mode, s, row,
            (int)(e % W), dst[s][e], want[s][e] + sum[e]);
    }
  }
  std::multiset<Report> got(reports.begin(), reports.end());
  CHECK(got.size() == wantReports.size() && std::equal(wantReports.begin(), wantReports.end(), got.begin()),
        "count %d: %zu bad-id reports, want %zu (one per bad group, first t)", count, got.size(), wantReports.size());
}

// ---- layerNormBackwardFusedKernel + layerNormParamGradKernel: rows, columns and partials ----
static void checkLayerNormBackward(std::mt19937& rng, int R, int H, bool accumulate) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<float> dy((size_t)R * H), x((size_t)R * H), gamma(H), dx((size_t)R * H), mean(R), rstd(R);
  for (auto& v : dy) v = (float)u(rng);
  for (auto& v : x) v = (float)(u(rng) + 0.5);
  for (auto& v : gamma) v = (float)(1 + 0.2 * u(rng));
  for (auto& v : dx) v = (float)u(rng);
  for (int r = 0; r < R; r++) {
    double s = 0, sq = 0;
    for (int h = 0; h < H; h++) s += x[(size_t)r * H + h];
    const double m = s / H;
    for (int h = 0; h < H; h++) sq += (x[(size_t)r * H + h] - m) * (x[(size_t)r * H + h] - m);
    mean[r] = (float)m;
    rstd[r] = (float)(1 / std::sqrt(sq / H + 1e-5));
  }
  std::vector<float> dGamma(H), dBeta(H);
  for (int h = 0; h < H; h++) dGamma[h] = (float)u(rng), dBeta[h] = (float)u(rng);
  // reference (backend-ref layer-norm.ts)
  std::vector<float> rdx = dx, rdG = dGamma, rdB = dBeta;
  {
    std::vector<double> gS(H, 0), bS(H, 0);
    for (int r = 0; r < R; r++) {
      double gs = 0, gxs = 0;
      for (int h = 0; h < H; h++) {
        const size_t o = (size_t)r * H + h;
        const double xh = (x[o] - (double)mean[r]) * rstd[r], g = (double)dy[o] * gamma[h];
        gs += g, gxs += g * xh, gS[h] += (double)dy[o] * xh, bS[h] += dy[o];
      }
      for (int h = 0; h < H; h++) {
        const size_t o = (size_t)r * H + h;
        const double xh = (x[o] - (double)mean[r]) * rstd[r];
        const double grad = rstd[r] * ((double)dy[o] * gamma[h] - gs / H - xh * (gxs / H));
        rdx[o] = (float)(accumulate ? (double)rdx[o] + grad : grad);
      }
    }
    for (int h = 0; h < H; h++) rdG[h] = (float)((double)rdG[h] + gS[h]), rdB[h] = (float)((double)rdB[h] + bS[h]);
  }
  // the kernels' decomposition
  int cpl = 0;
  for (int c : {1, 2, 4, 8, 16, 24, 32})
    if ((H + 31) / 32 <= c) {
      cpl = c;
      break;
    }
  CHECK(cpl > 0, "H %d", H);
  const int blocks = (R + LNB_ROWS - 1) / LNB_ROWS;
  std::vector<double> partial((size_t)blocks * 2 * H, NAN);
  std::vector<int> dxWrites((size_t)R * H, 0);
  for (int b = 0; b < blocks; b++) {
    std::vector<double> colSum(2 * cpl * 32, NAN);
    std::vector<std::vector<double>> dG(LN_WARPS * 32, std::vector<double>(cpl, 0.0)), dB = dG;
    for (int warp = 0; warp < LN_WARPS; warp++) {
      for (int i = 0; i < LNB_ROWS_PER_WARP; i++) {
        const int row = b * LNB_ROWS + i * LN_WARPS + warp;
        if (row >= R) break;
        const long long base = (long long)row * H;
        const double m = mean[row], rs = rstd[row];
        double gsL[32] = {}, gxsL[32] = {};
        for (int lane = 0; lane < 32; lane++)
          for (int j = 0; j < cpl; j++) {
            const int c = j * 32 + lane;
            if (c < H) {
              const double xh = (x[base + c] - m) * rs, g = (double)dy[base + c] * gamma[c];
              gsL[lane] += g, gxsL[lane] += g * xh;
              dG[warp * 32 + lane][j] += (double)dy[base + c] * xh;
              dB[warp * 32 + lane][j] += (double)dy[base + c];
            }
          }
        double gs = 0, gxs = 0;
        for (int lane = 0; lane < 32; lane++) gs += gsL[lane], gxs += gxsL[lane];
        for (int lane = 0; lane < 32; lane++)
          for (int j = 0; j < cpl; j++) {
            const int c = j * 32 + lane;
            if (c < H) {
              const double xh = (x[base + c] - m) * rs;
              const double grad = rs * ((double)dy[base + c] * gamma[c] - gs / H - xh * (gxs / H));
              dx[base + c] = (float)(accumulate ? (double)dx[base + c] + grad : grad);
              dxWrites[base + c]++;
            }
          }
      }
    }
    for (int w = 0; w < LN_WARPS; w++)
      for (int lane = 0; lane < 32; lane++)
        for (int j = 0; j < cpl; j++) {
          const int c = j * 32 + lane;
          if (c < H) {
            colSum[c] = (w == 0 ? 0.0 : colSum[c]) + dG[w * 32 + lane][j];
            colSum[cpl * 32 + c] = (w == 0 ? 0.0 : colSum[cpl * 32 + c]) + dB[w * 32 + lane][j];
          }
        }
    for (int c = 0; c < H; c++) {
      partial[((long long)b * 2) * H + c] = colSum[c];
      partial[((long long)b * 2 + 1) * H + c] = colSum[cpl * 32 + c];
    }
  }
  for (int which = 0; which < 2; which++)
    for (int c = 0; c < H; c++) {
      double tile[8];
      for (int y = 0; y < 8; y++) {
        double s = 0;
        for (int b = y; b < blocks; b += 8) s += partial[((long long)b * 2 + which) * H + c];
        tile[y] = s;
      }
      double t = 0;
      for (int i = 0; i < 8; i++) t += tile[i];
      float& out = which == 0 ? dGamma[c] : dBeta[c];
      out = (float)((double)out + t);
    }
  for (size_t e = 0; e < dx.size(); e++) {
    CHECK(dxWrites[e] == 1, "R %d H %d: dx[%zu] written %d times", R, H, e, dxWrites[e]);
    CHECK(std::fabs(dx[e] - rdx[e]) <= 1e-6 * (1 + std::fabs(rdx[e])), "R %d H %d: dx[%zu] = %g, want %g", R, H, e, dx[e], rdx[e]);
  }
  for (int h = 0; h < H; h++) {
    CHECK(std::fabs(dGamma[h] - rdG[h]) <= 1e-6 * (1 + std::fabs(rdG[h])), "R %d H %d: dGamma[%d] = %g, want %g", R, H, h, dGamma[h], rdG[h]);
    CHECK(std::fabs(dBeta[h] - rdB[h]) <= 1e-6 * (1 + std::fabs(rdB[h])), "R %d H %d: dBeta[%d] = %g, want %g", R, H, h, dBeta[h], rdB[h]);
  }
}

// ---- the lanes' columns of the warp-per-row kernels cover each column once ----
static void checkLayerNormColumns() {
  for (int H = 1; H <= 1024; H++) {
    for (int vec = 0; vec < 2; vec++) {
      const int need = (H + 31) / 32;
      int cpl = 0;
      if (vec) {
        if (H % 128 == 0 && (need == 4 || need == 8 || need == 16 || need == 24 || need == 32)) cpl = need;
        if (!cpl) continue;
      } else {
        for (int c : {1, 2, 4, 8, 16, 24, 32})
          if (need <= c) {
            cpl = c;
            break;
          }
      }
      std::vector<int> seen(H, 0);
      for (int lane = 0; lane < 32; lane++)
        for (int j = 0; j < cpl; j++) {
          const int c = lnColumn(vec, j, lane);
          if (vec) CHECK(c < H && (j % 4 != 0 || c % 4 == 0), "vec H %d lane %d j %d -> %d", H, lane, j, c);
          if (c < H) seen[c]++;
        }
      for (int c = 0; c < H; c++) CHECK(seen[c] == 1, "H %d vec %d: column %d seen %d times", H, vec, c, seen[c]);
    }
  }
}

// ---- the split decode attention: its splits and groups cover each key once; merging the
// splits' partials gives the plain softmax-weighted sum ----
static void checkDecodeSplit(std::mt19937& rng, int Lk, int start, int end, int G) {
  const int splits = (Lk + ATT_SPLIT_KEYS - 1) / ATT_SPLIT_KEYS;  // as LaunchForward
  const bool ok = rangeOk(start, end, Lk);
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  std::vector<float> score(Lk), value(Lk);
  for (int j = 0; j < Lk; j++) score[j] = u(rng), value[j] = u(rng);
  std::vector<int> seen(Lk, 0);
  std::vector<float> pm(splits), pl(splits), pacc(splits);
  for (int sp = 0; sp < splits; sp++) {  // attentionDecodeSplitKernel, one output dim
    int c0, c1;
    decodeSplitKeys(start, end, Lk, sp, &c0, &c1);
    if (c0 >= c1) {
      pm[sp] = -INFINITY, pl[sp] = 0.f, pacc[sp] = 0.f;
      continue;
    }
    const int n = c1 - c0;
    CHECK(n <= ATT_SPLIT_KEYS, "Lk %d split %d: %d keys for %d threads", Lk, sp, n, ATT_SPLIT_KEYS);
    float m = -INFINITY;
    for (int t = 0; t < n; t++) m = std::max(m, score[c0 + t]);
    std::vector<float> p(ATT_SPLIT_KEYS, 0.f);
    float l = 0.f;
    for (int t = 0; t < n; t++) p[t] = std::exp(score[c0 + t] - m), l += p[t];
    float acc = 0.f;
    for (int g = 0; g < G; g++) {  // the groups' key loops, as the kernel's (four keys per round, then the rest)
      float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
      int j = g;
      auto take = [&](int jj, float& a) {
        seen[c0 + jj]++;
        a += p[jj] * value[c0 + jj];
      };
      for (; j + 3 * G < n; j += 4 * G) take(j, a0), take(j + G, a1), take(j + 2 * G, a2), take(j + 3 * G, a3);
      for (; j < n; j += G) take(j, a0);
      acc += (a0 + a1) + (a2 + a3);
    }
    pm[sp] = m, pl[sp] = l, pacc[sp] = acc;
  }
  for (int j = 0; j < Lk; j++) {
    const int want = ok && j >= start && j < end ? 1 : 0;
    CHECK(seen[j] == want, "Lk %d range [%d, %d) G %d: key %d used %d times", Lk, start, end, G, j, seen[j]);
  }
  if (!ok) return;
  float M = -INFINITY, L = 0.f, acc = 0.f;  // attentionDecodeCombineKernel
  for (int sp = 0; sp < splits; sp++) M = std::max(M, pm[sp]);
  for (int sp = 0; sp < splits; sp++) {
    if (pm[sp] == -INFINITY) continue;
    const float w = std::exp(pm[sp] - M);
    L += pl[sp] * w, acc += pacc[sp] * w;
  }
  double dm = -INFINITY, dl = 0, dacc = 0;
  for (int j = start; j < end; j++) dm = std::max(dm, (double)score[j]);
  for (int j = start; j < end; j++) dl += std::exp(score[j] - dm), dacc += std::exp(score[j] - dm) * value[j];
  CHECK(std::fabs(acc / L - dacc / dl) <= 1e-5 * (1 + std::fabs(dacc / dl)), "Lk %d range [%d, %d): out %g, want %g", Lk, start, end, acc / L, dacc / dl);
  CHECK(std::fabs((M + std::log(L)) - (dm + std::log(dl))) <= 1e-5 * (1 + std::fabs(dm + std::log(dl))), "Lk %d range [%d, %d): lse %g, want %g", Lk, start, end,
        M + std::log(L), dm + std::log(dl));
}

int main() {
  std::mt19937 rng(12345);
  checkLayerNormColumns();
  const int counts[] = {1, 2, 31, 32, 33, 255, 256, 257, 511, 512, 513, 777, 1024, 2047, 2048, 2049, 3000, 4096, 5000};
  const int widths[] = {1, 5, 33, 128, 129, 300};
  int cases = 0;
  for (int count : counts)
    for (int W : widths)
      for (int mode = 0; mode < 3; mode++) {
        checkScatter(rng, count, W, 1 + (int)(rng() % 3), mode, rng() % 4 == 0);
        cases++;
      }
  for (int k = 0; k < 12; k++) {  // GLM-like sizes, smaller width to keep it quick
    checkScatter(rng, 16384, 7, 3, k % 3, k % 4 == 3);
    cases++;
  }
  printf("scatter: %d cases\n", cases);
  const int rowsList[] = {1, 3, 33, 63, 64, 65, 130, 512};
  const int hList[] = {1, 31, 32, 65, 129, 768, 1000, 1024};
  for (int R : rowsList)
    for (int H : hList) checkLayerNormBackward(rng, R, H, (R + H) % 2 == 0);
  printf("layerNormBackward: %zu cases\n", sizeof rowsList / sizeof rowsList[0] * (sizeof hList / sizeof hList[0]));
  int decodeCases = 0;
  for (int Lk : {1, 2, 127, 128, 129, 255, 256, 257, 400, 511, 1000})
    for (int G : {2, 4, 8})
      for (int k = 0; k < 6; k++) {
        int start = (int)(rng() % Lk), end = start + 1 + (int)(rng() % (Lk - start));
        if (k == 0) start = 0, end = Lk;              // the whole cache
        if (k == 1) start = Lk - 1, end = Lk;         // one key
        if (k == 2) end = start;                      // an invalid (empty) range: nothing used
        checkDecodeSplit(rng, Lk, start, end, G);
        decodeCases++;
      }
  printf("decode split: %d cases\n", decodeCases);
  printf(failures ? "%d FAILURES\n" : "all passed\n", failures);
  return failures ? 1 : 0;
}
