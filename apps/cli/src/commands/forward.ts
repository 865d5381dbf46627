// `blankglm forward`: runs a checkpoint over a batch given as JSON and prints per-target
// log-probabilities, the loss, chosen logits rows and (optionally) every parameter's gradient norm.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GlmModel, parseBatchJson, type RowPosition } from '@blankglm/model-spec';
import { CliError, type Command } from '../cli.js';
import { BACKEND_OPTIONS, CONFIG_OPTIONS, describeConfig, FORMAT_NAMES, loadCheckpointForCli, openBackend } from '../checkpoint-io.js';
import { ENGINE_NAMES, onnxForward, openOnnxModel, parseEngine } from '../onnx-engine.js';

function parseLogitsAt(values: string[], lengths: number[]): RowPosition[] {
  return values.map((v) => {
    const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
    if (!m) throw new CliError(`--logits '${v}': expected ROW,POSITION (two non-negative integers, e.g. 0,5)`);
    const row = Number(m[1]);
    const position = Number(m[2]);
    if (row >= lengths.length) throw new CliError(`--logits ${v}: row ${row} does not exist (the batch has ${lengths.length} rows)`);
    if (position >= lengths[row]!) throw new CliError(`--logits ${v}: position ${position} is past row ${row}'s end (length ${lengths[row]})`);
    return { row, position };
  });
}

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'Run a checkpoint over a batch (batch.json): target log-probs, loss, logits, gradient norms',
  description: `
batch.json holds GLM inputs in the THUDM model's layout, one entry per row:
  input_ids     [[ids...], ...]
  position_ids  [[[positions...], [block positions...]], ...]
  sep           [s, ...]                 where each row's Part B starts
  targets       [[ids...], ...]          optional: the token each position predicts (no shift)
  loss_mask     [[0/1...], ...]          optional, with targets (default: all 1)
Rows may differ in length: shorter rows are padded as the original pads them (token 0,
positions 0, loss mask 0, after the row's end, where no real token attends to them).

Dropout is off (evaluation). The loss is the mean cross-entropy over loss-mask positions of the
whole batch, as the original computes it.

Examples:
  blankglm forward ./glm-large-bg --inputs batch.json
  blankglm forward ./glm-large-bg --inputs batch.json --json --logits 0,5 --grads
  blankglm forward ./glm-large-bg --inputs batch.json --json --engine onnx --onnx glm-large.onnx`,
  positionals: [{ name: 'checkpoint', required: true, description: 'A checkpoint folder (blankglm, THUDM Hugging Face, original release).' }],
  options: {
    inputs: { type: 'string', placeholder: 'batch.json', description: 'The batch to run (format above).' },
    json: { type: 'boolean', description: 'Print one JSON object instead of text.' },
    logits: { type: 'string', multiple: true, placeholder: 'row,pos', description: 'Also print the full logits row at this position (repeatable).' },
    grads: { type: 'boolean', description: 'Run backward and print the gradient norm of every parameter (needs targets).' },
    ...BACKEND_OPTIONS,
    engine: { type: 'string', placeholder: 'name', default: 'native', description: `${ENGINE_NAMES.join(' or ')}: onnx runs --onnx <model.onnx> (from 'blankglm export-onnx') with onnxruntime-node.` },
    onnx: { type: 'string', placeholder: 'model.onnx', description: 'The exported model for --engine onnx.' },
    'onnx-provider': { type: 'string', placeholder: 'ep', description: 'ONNX Runtime execution provider for --engine onnx: cpu (default), cuda, webgpu, ...' },
    ...CONFIG_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const inputs = options.inputs as string | undefined;
    if (!inputs) throw new CliError("missing --inputs <batch.json>\nRun 'blankglm forward --help' for the format.");
    const engine = parseEngine(options.engine);
    const onnxPath = options.onnx as string | undefined;
    if (engine === 'onnx' && !onnxPath) throw new CliError("--engine onnx needs --onnx <model.onnx> (write one with 'blankglm export-onnx <checkpoint> --out model.onnx')");
    if (engine === 'onnx' && options.grads) throw new CliError('--grads needs --engine native: the ONNX export is forward only');
    const { name: backendName, backend } = engine === 'onnx' ? { name: 'onnx', backend: null } : await openBackend(options);
    const inputsPath = resolve(io.cwd, inputs);
    if (!existsSync(inputsPath)) throw new CliError(`--inputs: ${inputsPath} does not exist`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(inputsPath, 'utf8'));
    } catch (e) {
      throw new CliError(`${inputsPath}: not valid JSON (${(e as Error).message})`);
    }

    const ck = loadCheckpointForCli(positionals[0]!, options, io.cwd);
    let parsed;
    try {
      parsed = parseBatchJson(json, ck.config, inputsPath);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const { batch, lengths } = parsed;
    const logitsAt = parseLogitsAt((options.logits as string[] | undefined) ?? [], lengths);
    const wantGrads = Boolean(options.grads);
    if (wantGrads && !batch.lossMask) throw new CliError(`--grads needs 'targets' (and optionally 'loss_mask') in ${inputsPath}: there is no loss to differentiate`);

    const onnx = engine === 'onnx' ? await openOnnxModel(resolve(io.cwd, onnxPath!), { expectConfig: ck.config, executionProviders: [(options['onnx-provider'] as string | undefined) ?? 'cpu'] }) : null;
    const model = backend ? GlmModel.create(backend, ck.config, { stateDict: ck.stateDict }) : null;
    try {
      const result = onnx ? await onnxForward(onnx, batch, logitsAt) : model!.forward(batch, { mode: 'eval', keepActivations: wantGrads, logitsAt });
      let gradNorms: Map<string, number> | null = null;
      if (wantGrads && model) {
        if (result.numTargets === 0) throw new CliError(`--grads: the loss mask in ${inputsPath} selects no position`);
        model.zeroGrad();
        model.backward();
        gradNorms = model.gradNorms();
      }
      const targets = Array.from(result.targets.row, (row, k) => ({
        row,
        position: result.targets.position[k]!,
        token: result.targets.tokenId[k]!,
        log_prob: result.targets.logProb[k]!,
      }));
      const logits = (result.logits?.at ?? []).map((p, k) => ({
        row: p.row,
        position: p.position,
        values: Array.from(result.logits!.values.subarray(k * result.logits!.vocabSize, (k + 1) * result.logits!.vocabSize)),
      }));
      if (options.json) {
        const out: Record<string, unknown> = { backend: backendName, rows: batch.batchSize, lengths, loss: result.loss, num_targets: result.numTargets, targets };
        if (logits.length) out.logits = logits;
        if (gradNorms) out.grad_norms = Object.fromEntries(gradNorms);
        io.stdout.write(JSON.stringify(out) + '\n');
        return;
      }
      const w = (s: string): void => void io.stdout.write(s + '\n');
      w(`checkpoint: ${FORMAT_NAMES[ck.format]}; ${describeConfig(ck.config)}`);
      w(`backend: ${backendName}; batch: ${batch.batchSize} rows, lengths ${lengths.join(', ')}`);
      if (result.loss === null) w('loss: (no targets in the batch)');
      else w(`loss: ${result.loss.toFixed(6)} (mean over ${result.numTargets} target positions)`);
      if (targets.length) {
        w('row  pos  target  log p(target)');
        for (const t of targets) w(`${String(t.row).padStart(3)}  ${String(t.position).padStart(3)}  ${String(t.token).padStart(6)}  ${t.log_prob.toFixed(6)}`);
      }
      for (const l of logits) {
        let best = 0;
        for (let v = 1; v < l.values.length; v++) if (l.values[v]! > l.values[best]!) best = v;
        w(`logits at row ${l.row}, position ${l.position} (argmax ${best}): ${l.values.map((x) => x.toFixed(5)).join(' ')}`);
      }
      if (gradNorms) {
        w('gradient norms:');
        for (const [name, n] of gradNorms) w(`  ${name.padEnd(56)} ${n.toExponential(6)}`);
      }
    } finally {
      model?.dispose();
      await onnx?.release();
    }
  },
};
