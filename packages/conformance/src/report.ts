// Human-readable reports: a per-op table, then the details of every failing and unsupported case.
import { formatNumber } from './compare.js';
import type { ConformanceReport } from './run.js';

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/**
 * The report as text:
 *
 *   conformance: reference on reference (scalar TypeScript, f64 accumulation) — tier quick, f32, seed 1
 *   op                    cases  pass  fail  unsup  worst NMSE/threshold
 *   linear                   36    36     0      0  0
 *   …
 *   total                   412   410     1      1
 *
 * followed by one block per failing or unsupported case (its details, seed and how to rerun it).
 */
export function formatReport(report: ConformanceReport, opts: { details?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(`conformance: ${report.backend} on ${report.device} — tier ${report.tier}, ${report.dtype}, seed ${report.seed}`);
  const opWidth = Math.max(22, ...report.summary.map((s) => s.op.length + 2));
  lines.push(`${pad('op', opWidth)}${pad('cases', 6, true)}${pad('pass', 6, true)}${pad('fail', 6, true)}${pad('unsup', 7, true)}  worst NMSE/threshold`);
  for (const s of report.summary) {
    const note = s.ledger !== undefined ? `  ledger: ${s.ledger}` : '';
    const mark = s.fail > 0 ? '  FAIL' : '';
    lines.push(
      `${pad(s.op, opWidth)}${pad(String(s.cases), 6, true)}${pad(String(s.pass), 6, true)}${pad(String(s.fail), 6, true)}${pad(String(s.unsupported), 7, true)}  ${formatNumber(s.worstRatio)}${mark}${note}`,
    );
  }
  const t = report.totals;
  lines.push(`${pad('total', opWidth)}${pad(String(report.cases.length), 6, true)}${pad(String(t.pass), 6, true)}${pad(String(t.fail), 6, true)}${pad(String(t.unsupported), 7, true)}`);
  if (opts.details ?? true) {
    for (const c of report.cases) {
      if (c.status === 'pass') continue;
      lines.push('');
      const nmse = c.nmse !== null && c.threshold !== null ? ` (NMSE ${formatNumber(c.nmse)}, threshold ${formatNumber(c.threshold)})` : '';
      lines.push(`${c.status.toUpperCase()} ${c.name}${nmse}`);
      for (const d of c.details) lines.push(`  ${d}`);
    }
  }
  return lines.join('\n');
}
