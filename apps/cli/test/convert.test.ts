// `blankglm convert`, in-process, on the PyTorch-written fixtures of @blankglm/model-spec.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '@blankglm/model-spec';
import { runCommand } from './fill-helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages', 'model-spec', 'fixtures');
const work = mkdtempSync(join(tmpdir(), 'blankglm-convert-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (argv: string[]): ReturnType<typeof runCommand> => runCommand(['convert', ...argv], work);

describe('blankglm convert', () => {
  it('converts the THUDM folder to blankglm format with identical tensors', async () => {
    const out = join(work, 'thudm-bg');
    const r = await run([join(FIXTURES, 'tiny-thudm'), '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^found: THUDM Hugging Face folder/m);
    expect(r.out).toMatch(/2 layers, hidden 32, 4 heads, vocab 128, max_sequence_length 32, block positions on, gelu_erf/);
    expect(r.out).toMatch(/parameters: 31,680 in 29 tensors/);
    expect(r.out).toMatch(/^tokenizer: none \(/m);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const a = loadCheckpoint(join(FIXTURES, 'tiny-thudm'));
    const b = loadCheckpoint(out);
    expect(b.format).toBe('blankglm');
    expect(b.config).toEqual(a.config);
    for (const [k, v] of a.stateDict) expect(b.stateDict.get(k)).toEqual(v);
  });

  it('converts an MP=2 original release folder given --config, merging the shards', async () => {
    const out = join(work, 'mp2-bg');
    const r = await run([join(FIXTURES, 'tiny-original-mp2'), '--config', join(FIXTURES, 'tiny-thudm', 'config.json'), '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^found: original GLM release folder/m);
    expect(r.out).toMatch(/^note: merged 2 model-parallel shards of tag '1000'$/m);
    const a = loadCheckpoint(join(FIXTURES, 'tiny-thudm'));
    const b = loadCheckpoint(out);
    for (const [k, v] of a.stateDict) expect(b.stateDict.get(k)).toEqual(v);
  });

  it('saves the embedded BERT vocabulary for a BERT-family model', async () => {
    // a glm-tiny shaped blankglm folder with random weights: the converter adds vocab.txt
    const { getPreset, initParameters, saveCheckpoint } = await import('@blankglm/model-spec');
    const { Rng } = await import('@blankglm/tensor');
    const config = { ...getPreset('glm-tiny'), num_layers: 1, hidden_size: 8, num_attention_heads: 2, max_sequence_length: 8 };
    const src = join(work, 'bert-src');
    saveCheckpoint(src, config, initParameters(config, new Rng(1)));
    const r = await run([src, '--out', join(work, 'bert-out')]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/tokenizer: saved the embedded BERT uncased vocabulary as vocab\.txt/);
    expect(loadCheckpoint(join(work, 'bert-out')).tokenizerFiles).toEqual(['vocab.txt']);
  });

  it('refuses to overwrite --out without --force', async () => {
    const out = join(work, 'exists');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'x');
    const r = await run([join(FIXTURES, 'tiny-thudm'), '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already exists; pass --force to replace it/);
    expect(existsSync(join(out, 'keep.txt'))).toBe(true);
    const forced = await run([join(FIXTURES, 'tiny-thudm'), '--out', out, '--force']);
    expect(forced.code).toBe(0);
    expect(existsSync(join(out, 'keep.txt'))).toBe(false);
  });

  it('reports what is wrong: no config, unknown preset, shapes not matching, not a checkpoint', async () => {
    const mp1 = join(FIXTURES, 'tiny-original-mp1');
    let r = await run([mp1, '--out', join(work, 'x1')]);
    expect(r.err).toMatch(/carries no config; give its shape with --preset NAME or --config FILE/);
    r = await run([mp1, '--preset', 'glm-huge', '--out', join(work, 'x2')]);
    expect(r.err).toMatch(/--preset: unknown preset 'glm-huge'; known presets: glm-base, glm-large/);
    r = await run([mp1, '--preset', 'glm-tiny', '--out', join(work, 'x3')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the tensors do not match the config \(preset glm-tiny\):\nwrongly shaped \(29\):\n {2}word_embeddings\.weight: expected \[30592, 128\], got \[128, 32\]/);
    expect(existsSync(join(work, 'x3'))).toBe(false);
    const empty = join(work, 'empty');
    mkdirSync(empty);
    r = await run([empty, '--out', join(work, 'x4')]);
    expect(r.err).toMatch(/not a checkpoint folder: expected config\.json .* or latest_checkpointed_iteration\.txt \(original GLM release; missing here\)/);
    r = await run([join(FIXTURES, 'tiny-thudm')]);
    expect(r.err).toMatch(/missing --out <dir>/);
  });
});
