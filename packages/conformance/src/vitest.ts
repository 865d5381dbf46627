// @blankglm/conformance/vitest: the suite as vitest tests, one `it` per op (or per case), plus one
// that prints the per-op report. A separate entry so the main one never imports vitest.
//
//   import { defineConformanceTests } from '@blankglm/conformance/vitest';
//   defineConformanceTests('wasm', () => createWasmBackend());
import { OP_NAMES, type Backend, type OpName } from '@blankglm/tensor';
import { afterAll, describe, it } from 'vitest';
import { buildReport, listCases, runConformance, type CaseResult, type ConformanceOptions } from './run.js';
import { formatReport } from './report.js';

export interface ConformanceTestOptions extends Omit<ConformanceOptions, 'onCase'> {
  /** One `it` per op (default) or one per case. */
  granularity?: 'op' | 'case';
  /** Print the per-op report table at the end (default true). */
  printReport?: boolean;
  /** Where the report goes (default console.log). */
  log?: (text: string) => void;
}

function failureText(results: CaseResult[]): string {
  const failed = results.filter((r) => r.status === 'fail');
  return failed.map((r) => [r.name, ...r.details.map((d) => `  ${d}`)].join('\n')).join('\n\n');
}

/**
 * Defines `describe('conformance: <name>')` with one test per op of the catalogue (or per case).
 * `factory` is called once, lazily, when the first test runs, and the backend is disposed after the
 * last. A failing test's message lists every failing case with NMSE, threshold, the first differing
 * elements and the seed. Ops the backend does not support are skipped with the backend's reason as the
 * note (a listed skip, and counted in the report), never silently.
 */
export function defineConformanceTests(name: string, factory: () => Backend, opts: ConformanceTestOptions = {}): void {
  const { granularity = 'op', printReport = true, log = (text: string) => console.log(text), ...runOpts } = opts;
  const tier = runOpts.tier ?? 'quick';
  const cases = listCases(runOpts);
  let backend: Backend | null = null;
  const getBackend = (): Backend => (backend ??= factory());
  const results: CaseResult[] = [];

  describe(`conformance: ${name}`, () => {
    afterAll(() => {
      backend?.dispose();
      backend = null;
    });

    const groups: Array<{ title: string; ops: OpName[]; filter?: string | RegExp }> =
      granularity === 'op'
        ? OP_NAMES.filter((op) => cases.some((c) => c.op === op)).map((op) => ({ title: `${op} (${cases.filter((c) => c.op === op).length} cases)`, ops: [op] }))
        : cases.map((c) => ({ title: c.name, ops: [c.op], filter: new RegExp(`^${escapeRegExp(c.name)}$`) }));

    for (const group of groups) {
      it(group.title, (ctx) => {
        const report = runConformance(getBackend(), { ...runOpts, ops: group.ops, ...(group.filter ? { filter: group.filter } : {}) });
        results.push(...report.cases);
        if (report.totals.fail > 0) throw new Error(`${report.totals.fail} of ${report.cases.length} cases failed:\n${failureText(report.cases)}`);
        const unsupported = report.cases.filter((r) => r.status === 'unsupported');
        if (unsupported.length > 0 && unsupported.length === report.cases.length) {
          ctx.skip(`not supported by ${name}: ${unsupported[0]!.details[0] ?? ''}`);
        }
      });
    }

    if (printReport) {
      it('prints the per-op report', () => {
        const b = getBackend();
        const report = buildReport(b, results, { tier, dtype: runOpts.dtype ?? 'f32', seed: runOpts.seed ?? 1, ledger: b.ledger() });
        log(formatReport(report));
      });
    }
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
