// Metrics of a run: one JSON object per line (metrics.jsonl) and a loss-curve picture (SVG) a
// person can open in a browser.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** One training step's line. */
export interface TrainRecord {
  kind: 'train';
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensSeen: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

/** One evaluation's line: loss and perplexity of the blank-infilling targets of held-out documents. */
export interface EvalRecord {
  kind: 'eval';
  step: number;
  loss: number;
  perplexity: number;
  targets: number;
}

export type MetricsRecord = TrainRecord | EvalRecord;

/** Writes `text` to `file` through a temporary file renamed over it. */
export function writeFileAtomicSync(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export class MetricsLog {
  constructor(readonly file: string) {}

  /** The records in the file (an unparsable last line — a write cut short by a kill — is dropped). */
  read(): MetricsRecord[] {
    if (!existsSync(this.file)) return [];
    const lines = readFileSync(this.file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const out: MetricsRecord[] = [];
    lines.forEach((line, i) => {
      try {
        out.push(JSON.parse(line) as MetricsRecord);
      } catch (e) {
        if (i !== lines.length - 1) throw new Error(`${this.file}: line ${i + 1} is not JSON (${(e as Error).message})`);
      }
    });
    return out;
  }

  /** Keeps only records up to `step` (a resumed run rewrites what followed its checkpoint). */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = this.read().filter((r) => r.step <= step);
    writeFileAtomicSync(this.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  append(record: MetricsRecord): void {
    appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The loss curve as an SVG: training loss per step (thin), its moving average (thick) and the
 * held-out loss at each evaluation (dots), with axes and a legend.
 */
export function lossCurveSvg(records: readonly MetricsRecord[], title = 'blankglm training loss'): string {
  const train = records.filter((r): r is TrainRecord => r.kind === 'train');
  const evals = records.filter((r): r is EvalRecord => r.kind === 'eval');
  const W = 720;
  const H = 400;
  const m = { left: 60, right: 20, top: 40, bottom: 50 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const steps = [...train.map((r) => r.step), ...evals.map((r) => r.step)];
  const losses = [...train.map((r) => r.loss), ...evals.map((r) => r.loss)].filter(Number.isFinite);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  if (steps.length === 0 || losses.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no steps yet</text>`, '</svg>');
    return parts.join('\n') + '\n';
  }
  const x0 = Math.min(...steps);
  const x1 = Math.max(...steps, x0 + 1);
  let y0 = Math.min(...losses);
  let y1 = Math.max(...losses);
  const pad = (y1 - y0) * 0.05 || 0.5;
  y0 -= pad;
  y1 += pad;
  const sx = (s: number): number => m.left + ((s - x0) / (x1 - x0)) * pw;
  const sy = (l: number): number => m.top + (1 - (l - y0) / (y1 - y0)) * ph;
  const f = (n: number): string => n.toFixed(1);
  for (const t of niceTicks(y0, y1, 6)) {
    parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(x0, x1, 8)) {
    parts.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="black"/>`);
    parts.push(`<text x="${f(sx(t))}" y="${m.top + ph + 18}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="black"/>`);
  parts.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">step</text>`);
  parts.push(`<text x="16" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.top + ph / 2})">loss (nats per target token)</text>`);
  const finiteTrain = train.filter((r) => Number.isFinite(r.loss));
  if (finiteTrain.length > 0) {
    parts.push(`<polyline fill="none" stroke="#9ecae1" stroke-width="1" points="${finiteTrain.map((r) => `${f(sx(r.step))},${f(sy(r.loss))}`).join(' ')}"/>`);
    const window = Math.max(1, Math.round(finiteTrain.length / 25));
    const smooth: string[] = [];
    let acc = 0;
    finiteTrain.forEach((r, i) => {
      acc += r.loss;
      if (i >= window) acc -= finiteTrain[i - window]!.loss;
      const n = Math.min(i + 1, window);
      smooth.push(`${f(sx(r.step))},${f(sy(acc / n))}`);
    });
    parts.push(`<polyline fill="none" stroke="#08519c" stroke-width="2.5" points="${smooth.join(' ')}"/>`);
  }
  for (const e of evals) parts.push(`<circle cx="${f(sx(e.step))}" cy="${f(sy(e.loss))}" r="4" fill="#e6550d"><title>step ${e.step}: held-out loss ${e.loss.toFixed(3)}, perplexity ${e.perplexity.toFixed(1)}</title></circle>`);
  const lx = m.left + pw - 190;
  parts.push(
    `<line x1="${lx}" x2="${lx + 24}" y1="${m.top + 14}" y2="${m.top + 14}" stroke="#9ecae1"/><text x="${lx + 30}" y="${m.top + 18}">training loss per step</text>`,
    `<line x1="${lx}" x2="${lx + 24}" y1="${m.top + 32}" y2="${m.top + 32}" stroke="#08519c" stroke-width="2.5"/><text x="${lx + 30}" y="${m.top + 36}">moving average</text>`,
    `<circle cx="${lx + 12}" cy="${m.top + 50}" r="4" fill="#e6550d"/><text x="${lx + 30}" y="${m.top + 54}">held-out loss</text>`,
    '</svg>',
  );
  return parts.join('\n') + '\n';
}
