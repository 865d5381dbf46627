// The PyTorch parity fixtures (../fixtures, written by make_fixtures.py running THUDM's
// modeling_glm.py structure in PyTorch) and how a backend is compared with them: shared by this
// package's parity test (reference backend) and the CUDA backend's suite.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '@blankglm/tensor';
import { GlmModel, loadCheckpoint, parseBatchJson, readSafetensors, type GlmConfig, type StateDict } from '../src/index.js';

/** The fixtures folder: BLANKGLM_MODEL_FIXTURES (a bundled copy of this code, run elsewhere), else ../fixtures. */
export function fixturesDir(): string {
  return process.env.BLANKGLM_MODEL_FIXTURES || join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
}

let cached: { expected: ReturnType<typeof readSafetensors>['tensors']; batchJson: unknown } | undefined;
/** PyTorch's outputs (expected.safetensors) and the batch (batch.json), read on first use. */
export function fixtures(): NonNullable<typeof cached> {
  cached ??= {
    expected: readSafetensors(join(fixturesDir(), 'expected.safetensors')).tensors,
    batchJson: JSON.parse(readFileSync(join(fixturesDir(), 'batch.json'), 'utf8')),
  };
  return cached;
}

/**
 * Relative error of a tensor: max |ours − theirs| / max |theirs|. The fixture is float64 PyTorch
 * stored as f32; ours keeps f32 buffers with f64 accumulation, so errors are f32 rounding through
 * two layers: about 1e-7..1e-6 of the tensor's scale.
 */
export function compare(name: string, ours: ArrayLike<number>, theirs: ArrayLike<number>, tolerance: number): number {
  if (ours.length !== theirs.length) throw new Error(`${name}: ${ours.length} values, fixture has ${theirs.length}`);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < theirs.length; i++) {
    if (!Number.isFinite(ours[i]!)) throw new Error(`${name}[${i}] = ${ours[i]} is not finite`);
    maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - theirs[i]!));
    scale = Math.max(scale, Math.abs(theirs[i]!));
  }
  const rel = maxDiff / Math.max(scale, 1e-30);
  if (rel > tolerance) {
    const firsts: string[] = [];
    for (let i = 0; i < theirs.length && firsts.length < 5; i++) {
      if (Math.abs(ours[i]! - theirs[i]!) > tolerance * scale) firsts.push(`  [${i}] ours ${ours[i]} vs fixture ${theirs[i]} (diff ${Math.abs(ours[i]! - theirs[i]!)})`);
    }
    throw new Error(`${name}: relative error ${rel.toExponential(2)} > ${tolerance} (max |diff| ${maxDiff}, scale ${scale}); first differing elements:\n${firsts.join('\n')}`);
  }
  return rel;
}

export function runOurs(backend: Backend, config: GlmConfig, stateDict: StateDict, withGrads: boolean): { logits: Float32Array; loss: number; grads: StateDict | null } {
  const { batch } = parseBatchJson(fixtures().batchJson, config, 'fixtures/batch.json');
  const model = GlmModel.create(backend, config, { stateDict });
  try {
    const at = [];
    for (let b = 0; b < batch.batchSize; b++) for (let i = 0; i < batch.seqLength; i++) at.push({ row: b, position: i });
    const result = model.forward(batch, { mode: 'eval', keepActivations: withGrads, logitsAt: at });
    let grads: StateDict | null = null;
    if (withGrads) {
      model.zeroGrad();
      model.backward();
      grads = model.gradDict();
    }
    return { logits: result.logits!.values, loss: result.loss!, grads };
  } finally {
    model.dispose();
  }
}

/** The THUDM-format tiny checkpoint the fixtures were made from. */
export function fixtureCheckpoint(): ReturnType<typeof loadCheckpoint> {
  return loadCheckpoint(join(fixturesDir(), 'tiny-thudm'));
}

/**
 * Logits, loss and every parameter gradient of `backend` against the fixture (relative error per
 * tensor, throwing past `tolerance`); returns the errors.
 */
export function checkParity(backend: Backend, tolerance = { logits: 1e-5, loss: 1e-6, grads: 1e-5 }): { logits: number; loss: number; worstGradient: number; gradients: number } {
  const ck = fixtureCheckpoint();
  const { expected } = fixtures();
  const ours = runOurs(backend, ck.config, ck.stateDict, true);
  const logits = compare('logits', ours.logits, expected.get('logits')!.data as Float32Array, tolerance.logits);
  const loss = compare('loss', [ours.loss], expected.get('loss')!.data as Float32Array, tolerance.loss);
  let worstGradient = 0;
  for (const [name, grad] of ours.grads!) {
    const theirs = expected.get('grad.' + name);
    if (!theirs) throw new Error(`the fixture has no gradient for ${name}`);
    worstGradient = Math.max(worstGradient, compare(`grad ${name}`, grad, theirs.data as Float32Array, tolerance.grads));
  }
  const gradients = [...expected.keys()].filter((k) => k.startsWith('grad.')).length;
  if (ours.grads!.size !== gradients) throw new Error(`${ours.grads!.size} gradients, the fixture has ${gradients}`);
  return { logits, loss, worstGradient, gradients };
}
