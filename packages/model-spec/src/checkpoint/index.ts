export { readSafetensors, writeSafetensors, decodeTensorBytes, type SafetensorsDtype, type SafetensorsFile, type NamedTensor, type TensorData, type TensorToWrite } from './safetensors.js';
export { f16ToF32, bf16ToF32 } from './dtype.js';
export { ZipReader, type ZipEntry } from './zip.js';
export { loadPickle, describePickleValue, PickleSecurityError, TensorRef, StorageRef, GlobalRef, OpaqueObject, PickleTuple, type PickleValue, type PickleKey } from './pickle.js';
export { parseBatchJson, type ParsedBatch } from './batch-json.js';
export { TorchFile, readTorchStateDict, tensorEntries, type TorchTensor } from './torch.js';
export {
  detectCheckpointFormat,
  loadCheckpoint,
  saveCheckpoint,
  mergeModelParallel,
  modelParallelRule,
  originalReleaseShards,
  CheckpointMismatchError,
  TOKENIZER_FILE_NAMES,
  LATEST_FILE,
  type CheckpointFormat,
  type LoadedCheckpoint,
  type LoadedTensor,
  type LoadCheckpointOptions,
  type SaveCheckpointOptions,
} from './folders.js';
