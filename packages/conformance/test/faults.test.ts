// Fault injection: the reference wrapped in backends with one deliberate bug each. The suite must
// report exactly the faulty op's cases, with a message that says what went wrong.
import type { OpArgs, OpName } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { formatReport, runConformance, THRESHOLDS, type ConformanceReport } from '../src/index.js';
import { FaultyBackend, rewriteOutput, type Fault } from './faulty-backend.js';

/** Ops run next to the faulty one: they must keep passing (the fault is attributed to its op only). */
const BYSTANDERS: OpName[] = ['copy', 'fill', 'dropoutAdd', 'linearBackward'];

function runWith(fault: Fault, target: OpName): ConformanceReport {
  return runConformance(() => new FaultyBackend(`faulty-${target}`, fault), { ops: [target, ...BYSTANDERS.filter((op) => op !== target)] });
}

function expectOnlyTargetFails(report: ConformanceReport, target: OpName): void {
  for (const c of report.cases) {
    if (c.op === target) expect(c.status, c.name).toBe('fail');
    else expect(c.status, `${c.name}: ${c.details.join(' | ')}`).toBe('pass');
  }
  const row = report.summary.find((s) => s.op === target)!;
  expect(row.fail).toBe(row.cases);
  expect(report.ok).toBe(false);
}

/**
 * Scales linear's output y by (1 + δ), with δ chosen so that NMSE = factor · threshold exactly:
 * the error is δ·y, and NMSE divides Σ(δy)² by E = min(Σy², Σ(y−y₀)²), so δ² = factor·threshold·E/Σy².
 */
function perturbOutput(factor: number): Fault {
  return rewriteOutput('linear', (a) => a.y, (data, y0) => {
    if (!y0.every(Number.isFinite)) return null; // the harness's run over NaN outputs: sized against the first run only
    let resultSq = 0;
    let changeSq = 0;
    for (let i = 0; i < data.length; i++) {
      resultSq += data[i]! ** 2;
      changeSq += (data[i]! - y0[i]!) ** 2;
    }
    const delta = Math.sqrt((factor * THRESHOLDS.matmul * Math.min(resultSq, changeSq)) / resultSq);
    return data.map((v) => v * (1 + delta));
  });
}

describe('fault injection', () => {
  it('(a) an output perturbed to 4× the NMSE threshold fails with its NMSE, threshold and differing elements', () => {
    const report = runWith(perturbOutput(4), 'linear');
    expectOnlyTargetFails(report, 'linear');
    for (const c of report.cases.filter((r) => r.op === 'linear')) {
      expect(c.threshold).toBe(THRESHOLDS.matmul);
      expect(c.nmse! / THRESHOLDS.matmul).toBeGreaterThan(3.9);
      expect(c.nmse! / THRESHOLDS.matmul).toBeLessThan(4.1);
      expect(c.details[0]).toMatch(/^y: NMSE .* > threshold 5\.00e-4$/);
      expect(c.details.some((d) => /^ {2}y\[\d+\]: got -?[\d.e+-]+, expected -?[\d.e+-]+ \(diff .*\)$/.test(d))).toBe(true);
      expect(c.details.at(-1)).toContain(`seed ${c.seed}`);
      expect(c.details.at(-1)).toContain(`filter: ${JSON.stringify(c.name)}`);
    }
  });

  it('(a′) the same perturbation at a quarter of the threshold passes (the threshold is where the table says)', () => {
    const report = runWith(perturbOutput(0.25), 'linear');
    expect(report.ok).toBe(true);
    const linear = report.cases.filter((r) => r.op === 'linear');
    for (const c of linear) expect(c.nmse! / THRESHOLDS.matmul).toBeCloseTo(0.25, 2);
  });

  it('(b) a NaN in an output fails and names the element', () => {
    const report = runWith(
      {
        after: (op, args, inner) => {
          if (op !== 'layerNorm') return;
          inner.write((args as OpArgs['layerNorm']).y, [Number.NaN], 0);
        },
      },
      'layerNorm',
    );
    expectOnlyTargetFails(report, 'layerNorm');
    for (const c of report.cases.filter((r) => r.op === 'layerNorm')) {
      expect(c.nmse).toBeNull();
      expect(c.details[0]).toMatch(/^y: NaN at \[0\]/);
    }
  });

  it('(c) one element written past an output buffer is caught by the guard check', () => {
    const report = runWith(
      {
        after: (op, args, inner) => {
          if (op !== 'gatherRows') return;
          const out = (args as OpArgs['gatherRows']).out;
          const { raw, dataStart } = inner.rawStorageForTesting(out);
          raw[dataStart + out.size] = 1.5; // the element just past the end
        },
      },
      'gatherRows',
    );
    expectOnlyTargetFails(report, 'gatherRows');
    for (const c of report.cases.filter((r) => r.op === 'gatherRows')) {
      expect(c.details[0]).toMatch(/^out-of-bounds write after out \(\d+ elements\): guard element 0 overwritten$/);
      // The outputs themselves were right: only the guard check fails the case.
      expect(c.outputs.every((o) => o.ok)).toBe(true);
    }
  });

  it('(d) a buffer leaked by an op fails the case with the live-buffer counts', () => {
    const report = runWith(
      {
        after: (op, _args, inner) => {
          if (op === 'scale') inner.alloc('f32', 16, 'forgotten scratch');
        },
      },
      'scale',
    );
    expect(report.summary.find((s) => s.op === 'scale')!.fail).toBeGreaterThan(0);
    for (const c of report.cases) {
      if (c.op !== 'scale') expect(c.status, c.name).toBe('pass');
      else {
        expect(c.status).toBe('fail');
        expect(c.details[0]).toMatch(/^buffer leak: liveBuffers\(\) was \d+ before the case and \d+ after freeing its 1 buffers$/);
      }
    }
  });

  it('(e) an op that modifies a read-only input fails, naming the input and the element', () => {
    const report = runWith(
      {
        after: (op, args, inner) => {
          if (op !== 'embedding') return;
          const wordEmb = (args as OpArgs['embedding']).wordEmb;
          const first = inner.read(wordEmb, 0, 1)[0]!;
          inner.write(wordEmb, [first + 1], 0);
        },
      },
      'embedding',
    );
    expectOnlyTargetFails(report, 'embedding');
    for (const c of report.cases.filter((r) => r.op === 'embedding')) {
      expect(c.details[0]).toMatch(/^read-only input wordEmb was modified: \[0\] was .*, now /);
    }
  });

  it('(f) an op reported unsupported is its own status, with the reason and the ledger, and does not fail the run', () => {
    const reason = 'no reduction kernel yet';
    const report = runWith(
      {
        supports: (op) => (op === 'sumSquares' ? { supported: false, reason } : undefined),
        ledger: { sumSquares: reason },
      },
      'sumSquares',
    );
    expect(report.ok).toBe(true);
    const row = report.summary.find((s) => s.op === 'sumSquares')!;
    expect(row).toMatchObject({ pass: 0, fail: 0, ledger: reason });
    expect(row.unsupported).toBe(row.cases);
    expect(report.totals.unsupported).toBe(row.cases);
    for (const c of report.cases.filter((r) => r.op === 'sumSquares')) {
      expect(c.details).toEqual([`not supported: faulty-sumSquares: ${reason} (ledger: ${reason})`]);
    }
    const text = formatReport(report);
    expect(text).toMatch(/sumSquares\s+4\s+0\s+0\s+4\s+—\s+ledger: no reduction kernel yet/);
    expect(text).toContain(`UNSUPPORTED sumSquares(size=1,outIndex=0)`);
  });

  it('an op that throws fails with the error message instead of aborting the run', () => {
    const report = runWith(
      {
        before: (op) => {
          if (op === 'fill') throw new Error('kernel launch failed: invalid configuration');
        },
      },
      'fill',
    );
    expectOnlyTargetFails(report, 'fill');
    for (const c of report.cases.filter((r) => r.op === 'fill')) expect(c.details[0]).toBe('run threw: kernel launch failed: invalid configuration');
  });

  it('an infinity of the wrong sign fails even though NMSE ignores infinities', () => {
    const report = runWith(
      {
        after: (op, args, inner) => {
          if (op !== 'fill') return;
          const a = args as OpArgs['fill'];
          if (a.value === Number.NEGATIVE_INFINITY) inner.write(a.x as never, [Number.POSITIVE_INFINITY], a.offset);
        },
      },
      'fill',
    );
    const bad = report.cases.filter((c) => c.status === 'fail');
    expect(bad.map((c) => c.name)).toEqual(['fill(dtype=float,offset=3,size=129,value=-Infinity,buffer=139)']);
    expect(bad[0]!.details[0]).toBe('x: infinity mismatch at [3]: got Infinity, expected -Infinity');
  });

  it('an integer output off by one fails exactly (no tolerance for integers)', () => {
    const report = runWith(
      {
        after: (op, args, inner) => {
          if (op !== 'copy') return;
          const a = args as OpArgs['copy'];
          if (a.dst.dtype !== 'i32') return;
          const v = inner.read(a.dst, a.dstOffset, 1)[0]!;
          inner.write(a.dst as never, [v + 1], a.dstOffset);
        },
      },
      'copy',
    );
    const bad = report.cases.filter((c) => c.status === 'fail');
    expect(bad.map((c) => c.name)).toEqual(['copy(dtype=i32,size=63,srcOffset=1,dstOffset=2,sameBuffer=no)']);
    expect(bad[0]!.details[0]).toBe('dst: 1 of 70 integer elements differ');
    expect(bad[0]!.details[1]).toMatch(/^ {2}dst\[2\]: got (\d+), expected (\d+) \(diff 1\)$/);
  });

  it('a kernel that overwrites where it must accumulate (dx = instead of dx +=) fails only the accumulate cases', () => {
    const report = runWith(
      rewriteOutput('linearBackward', (a) => (a.accumulate ? a.dx : null), (now, old) => now.map((v, i) => v - old[i]!)),
      'linearBackward',
    );
    for (const c of report.cases.filter((r) => r.op === 'linearBackward')) {
      const broken = c.name.includes('dx=yes') && c.name.includes('accumulate=yes');
      expect(c.status, c.name).toBe(broken ? 'fail' : 'pass');
      if (broken) expect(c.details[0]).toMatch(/^dx: NMSE .* > threshold 5\.00e-4$/);
    }
  });
  it("a kernel whose output depends on what the buffer held (y = 0·y_old + …) passes over random data and fails over NaN", () => {
    const report = runWith(
      rewriteOutput('layerNorm', (a) => a.y, (now, old) => now.map((v, i) => v + 0 * old[i]!)),
      'layerNorm',
    );
    expectOnlyTargetFails(report, 'layerNorm');
    for (const c of report.cases.filter((r) => r.op === 'layerNorm')) {
      expect(c.nmse, c.name).toBe(0); // the first run, over random old contents, is exact
      expect(c.details[0]).toMatch(/^y over NaN: NaN at \[0\].* — with NaN in y beforehand; the op overwrites it whole, so its old contents must not matter$/);
    }
  });
});
