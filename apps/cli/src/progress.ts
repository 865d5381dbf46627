// Progress for long work: a redrawn bar with rate and ETA on a terminal, plain periodic lines when
// the output is a file or a pipe (logs stay readable). Used by `prepare`, reusable by training.
import type { Writable } from 'node:stream';

export interface ProgressOptions {
  /** What is being done, e.g. "tokenizing". */
  label: string;
  /** The unit of `done`/`total`, e.g. "MB" or "steps". */
  unit: string;
  /** Redraw a bar in place (a terminal) or print lines. */
  isTTY: boolean;
  /** Minimum milliseconds between plain lines (default 5000); bars redraw at most every 100 ms. */
  lineIntervalMs?: number;
  /** Bar width in characters (default 28). */
  width?: number;
  /** A clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

export interface ProgressUpdate {
  /** Work done so far, in `unit`. */
  done: number;
  /** Total work in `unit`, when known (the bar and ETA need it). */
  total?: number;
  /** Extra text after the rate, e.g. "12,345 docs · 1.2M tokens · 310k tok/s". */
  detail?: string;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${two(m)}:${two(sec)}`;
}

/** 1234 → "1.2k", 3456789 → "3.5M": compact counts for progress lines. */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export class Progress {
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastLength = 0;
  private readonly now: () => number;
  private finished = false;

  constructor(
    private readonly out: Writable,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** The text of one progress line (without a line end). */
  render(update: ProgressUpdate): string {
    const { label, unit } = this.options;
    const elapsed = (this.now() - this.started) / 1000;
    const rate = elapsed > 0 ? update.done / elapsed : 0;
    const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
    const parts: string[] = [label];
    if (update.total !== undefined && update.total > 0) {
      const frac = Math.min(1, update.done / update.total);
      if (this.options.isTTY) {
        const width = this.options.width ?? 28;
        const filled = Math.round(frac * width);
        parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`);
      }
      parts.push(`${(frac * 100).toFixed(0).padStart(3)}%`, `${fmt(update.done)}/${fmt(update.total)} ${unit}`);
      parts.push(`${fmt(rate)} ${unit}/s`);
      const eta = rate > 0 ? (update.total - update.done) / rate : Infinity;
      parts.push(`elapsed ${formatDuration(elapsed)}`, `ETA ${formatDuration(eta)}`);
    } else {
      parts.push(`${fmt(update.done)} ${unit}`, `${fmt(rate)} ${unit}/s`, `elapsed ${formatDuration(elapsed)}`);
    }
    if (update.detail) parts.push(update.detail);
    return parts.join('  ');
  }

  /** Reports progress; throttled (a bar every 100 ms, a line every `lineIntervalMs`). */
  update(update: ProgressUpdate): void {
    if (this.finished) return;
    const now = this.now();
    const interval = this.options.isTTY ? 100 : (this.options.lineIntervalMs ?? 5000);
    if (now - this.lastDraw < interval) return;
    this.lastDraw = now;
    this.draw(update);
  }

  /** The final state, always drawn; ends the bar's line. */
  finish(update: ProgressUpdate): void {
    if (this.finished) return;
    this.draw(update);
    if (this.options.isTTY) this.out.write('\n');
    this.finished = true;
  }

  /** Ends the bar's line without a final state (the work failed); later updates are ignored. */
  abort(): void {
    if (this.finished) return;
    if (this.options.isTTY && this.lastLength > 0) this.out.write('\n');
    this.finished = true;
  }

  private draw(update: ProgressUpdate): void {
    const line = this.render(update);
    if (this.options.isTTY) {
      // Overwrite in place; pad with spaces when the new line is shorter than the last.
      this.out.write('\r' + line + ' '.repeat(Math.max(0, this.lastLength - line.length)));
      this.lastLength = line.length;
    } else {
      this.out.write(line + '\n');
    }
  }
}
