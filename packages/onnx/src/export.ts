// One call from a loaded checkpoint to .onnx file(s).
import type { GlmConfig, StateDict } from '@blankglm/model-spec';
import { buildGlmOnnxModel, type GlmOnnxOptions } from './glm-graph.js';
import { writeOnnxModel, type WriteOnnxOptions, type WrittenOnnx } from './write.js';

export interface ExportGlmOptions extends GlmOnnxOptions, WriteOnnxOptions {}

/** Builds the GLM graph of `config` + `stateDict` and writes it to `path` (see buildGlmOnnxModel, writeOnnxModel). */
export function exportGlmToOnnx(config: GlmConfig, stateDict: StateDict, path: string, options: ExportGlmOptions = {}): WrittenOnnx {
  const model = buildGlmOnnxModel(config, stateDict, options);
  return writeOnnxModel(model, path, options);
}
