// @blankglm/conformance: seeded cases for every op of the catalogue, run against any Backend and
// compared with the reference backend like ggml's test-backend-ops (NMSE per output, thresholds per
// op class), plus safety checks (guards, leaks, read-only inputs). The vitest helper lives in the
// `@blankglm/conformance/vitest` entry so this one does not depend on vitest.
export {
  runConformance, runCase, listCases, caseSeed, buildReport,
  type ConformanceOptions, type ConformanceReport, type CaseResult, type CaseStatus, type OpSummary,
} from './run.js';
export { formatReport } from './report.js';
export { THRESHOLDS, OP_THRESHOLD_CLASS, thresholdFor, type ThresholdClass } from './thresholds.js';
export { bf16Ulp, compareFloat, compareExact, firstDifference, formatNumber, formatValue, MAX_LISTED_DIFFS, type TensorComparison, type ElementDiff } from './compare.js';
export { caseName, defineCase, type ConformanceCase, type CaseInputs, type PrepareStep, type TensorInit, type Tier, type FloatDType } from './case.js';
export { allCases } from './cases/index.js';
export { defaultReference } from './reference.js';
