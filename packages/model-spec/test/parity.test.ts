// Model-level parity with the original implementation (llm.c's test_gpt2 style): the fixtures in
// ../fixtures were written by make_fixtures.py running THUDM's modeling_glm.py structure in
// PyTorch. We load the same weights through our checkpoint readers, run our forward and backward
// on the reference backend, and compare logits, loss and every gradient, tensor by tensor.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { loadCheckpoint } from '../src/index.js';
import { checkParity, compare, fixtureCheckpoint, fixtures, fixturesDir, runOurs } from './parity-helpers.js';

describe('parity with PyTorch (THUDM modeling_glm.py)', () => {
  const ck = fixtureCheckpoint();
  const { expected } = fixtures();

  it('uses exact-erf GELU for a THUDM folder, as the HF port computes', () => {
    expect(ck.config.hidden_act).toBe('gelu_erf');
  });

  it('reproduces logits, loss and the gradient of every parameter', () => {
    console.log('parity relative errors:', checkParity(createReferenceBackend()));
  });

  it('reproduces the tanh-GELU variant (what the original trained with)', () => {
    const ours = runOurs(createReferenceBackend(), { ...ck.config, hidden_act: 'gelu_tanh' }, ck.stateDict, false);
    compare('tanh logits', ours.logits, expected.get('tanh.logits')!.data as Float32Array, 1e-5);
    compare('tanh loss', [ours.loss], expected.get('tanh.loss')!.data as Float32Array, 1e-6);
    // and the two activations really differ at this scale (the test would catch a mix-up)
    expect(() => compare('erf vs tanh', ours.logits, expected.get('logits')!.data as Float32Array, 1e-5)).toThrow(/relative error/);
  });

  it('the original-release MP=1 and MP=2 folders hold the identical weights', () => {
    for (const dir of ['tiny-original-mp1', 'tiny-original-mp2']) {
      const other = loadCheckpoint(join(fixturesDir(), dir), { config: ck.config, configSource: 'tiny-thudm/config.json' });
      for (const [name, data] of ck.stateDict) expect(other.stateDict.get(name), `${dir} ${name}`).toEqual(data);
    }
  });
});
