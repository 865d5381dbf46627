// The GPU checks' own harness, run here with the reference backend standing in for the GPU: a
// bug in the tracking or determinism code must show up before the one GPU run, not during it.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { describe, expect, it } from 'vitest';
import { checkDeterminism, trackReferenceTraining } from './gpu-checks.js';

describe('GPU check harness (reference standing in for the GPU)', () => {
  it('training tracking passes against itself, bit for bit', () => {
    const stand = createReferenceBackend();
    const r = trackReferenceTraining(stand, { steps: 4 });
    expect(r.ok, r.detail).toBe(true);
    expect(r.steps.every((s) => s.lossRelDiff === 0 && s.gradNormRelDiff === 0)).toBe(true);
    expect(r.maxParamRelDiff).toBe(0);
    expect(stand.liveBuffers()).toBe(0);
  });

  it('determinism check passes on a deterministic backend', () => {
    const r = checkDeterminism(() => createReferenceBackend());
    expect(r.ok, r.detail).toBe(true);
  });
});
