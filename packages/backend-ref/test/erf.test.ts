import { describe, expect, it } from 'vitest';
import { erf, erfc } from '../src/math/erf.js';

// [x, erf(x), erfc(x)] from mpmath at 30 significant digits (mp.dps = 30).
const REFERENCE: [number, number, number][] = [
  [1e-8, 1.1283791670955125599e-8, 0.99999998871620832904],
  [0.1, 0.1124629160182848984, 0.8875370839817151016],
  [0.5, 0.52049987781304653768, 0.47950012218695346232],
  [1, 0.84270079294971486934, 0.15729920705028513066],
  [1.5, 0.96610514647531072707, 0.033894853524689272933],
  [1.9999, 0.99532019790702939169, 0.0046798020929706083079],
  [2, 0.99532226501895273416, 0.0046777349810472658379],
  [2.5, 0.99959304798255504106, 0.00040695201744495893956],
  [3, 0.99997790950300141456, 0.000022090496998585441373],
  [4, 0.99999998458274209972, 1.5417257900280018852e-8],
  [5, 0.99999999999846254021, 1.5374597944280348502e-12],
  [6, 0.99999999999999997848, 2.1519736712498913117e-17],
  [10, 1, 2.088487583762544757e-45],
  [27, 1, 5.237048923789255685e-319],
];

const relErr = (got: number, want: number): number => Math.abs(got - want) / Math.abs(want);

describe('erf / erfc', () => {
  it.each(REFERENCE)('erf(±%s) matches mpmath to 1e-14 relative', (x, e) => {
    expect(relErr(erf(x), e)).toBeLessThan(1e-14);
    expect(relErr(erf(-x), -e)).toBeLessThan(1e-14);
  });

  it.each(REFERENCE)('erfc(%s) matches mpmath to 1e-14 relative, also where it is tiny', (x, _e, c) => {
    // The subnormal 5e-319 carries only ~10 significant bits; compare it absolutely.
    if (c < 1e-300) expect(Math.abs(erfc(x) - c)).toBeLessThan(1e-321);
    else expect(relErr(erfc(x), c)).toBeLessThan(1e-14);
    expect(relErr(erfc(-x), 2 - c)).toBeLessThan(1e-14);
  });

  it('handles 0, infinities and NaN', () => {
    expect(erf(0)).toBe(0);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erfc(Infinity)).toBe(0);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });

  it('is continuous across the series / continued-fraction switch at 2', () => {
    const below = erf(2 - 1e-12);
    const above = erf(2);
    expect(Math.abs(above - below)).toBeLessThan(1e-13);
  });
});
