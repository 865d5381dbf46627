// PyTorch `torch.save` files (`pytorch_model.bin`, `mp_rank_XX_model_states.pt`) without Python.
//
// Since PyTorch 1.6 torch.save writes a zip archive:
//   <archive>/data.pkl     the pickled object, tensors as _rebuild_tensor_v2(storage, offset, size, stride)
//   <archive>/data/<key>   one raw storage per key (little-endian unless <archive>/byteorder says "big")
//   <archive>/version, <archive>/byteorder (PyTorch ≥ 2.1)
// The pickle runs on the safe reader of ./pickle.ts; tensors are read when asked for.
import { closeSync, openSync, readSync } from 'node:fs';
import { decodeTensorBytes, type SafetensorsDtype, type TensorData } from './safetensors.js';
import { ZipReader } from './zip.js';
import { describePickleValue, loadPickle, PickleTuple, TensorRef, type PickleKey, type PickleValue } from './pickle.js';

const STORAGE_DTYPES: Record<string, { dtype: SafetensorsDtype; bytes: number }> = {
  FloatStorage: { dtype: 'F32', bytes: 4 },
  HalfStorage: { dtype: 'F16', bytes: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2 },
  DoubleStorage: { dtype: 'F64', bytes: 8 },
  LongStorage: { dtype: 'I64', bytes: 8 },
  IntStorage: { dtype: 'I32', bytes: 4 },
  ShortStorage: { dtype: 'I16', bytes: 2 },
  CharStorage: { dtype: 'I8', bytes: 1 },
  ByteStorage: { dtype: 'U8', bytes: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1 },
};

export interface TorchTensor {
  /** Storage dtype, in safetensors' names; floats are widened to f32 in `data`. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** An opened torch.save archive: the unpickled object plus lazy access to tensor bytes. */
export class TorchFile {
  readonly root: PickleValue;
  private readonly zip: ZipReader;
  private readonly prefix: string;
  private readonly bigEndian: boolean;

  constructor(readonly file: string) {
    const fd = openSync(file, 'r');
    const magic = Buffer.alloc(4);
    readSync(fd, magic, 0, 4, 0);
    closeSync(fd);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      if (magic[0] === 0x80) {
        throw new Error(`${file}: this is the legacy (pre-1.6) torch.save format, which blankglm does not read; re-save it with torch.save(obj, path) on PyTorch ≥ 1.6`);
      }
      throw new Error(`${file}: not a PyTorch checkpoint (no zip signature at the start)`);
    }
    this.zip = new ZipReader(file);
    try {
      const pkls = [...this.zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pkls.length !== 1) throw new Error(`${file}: expected exactly one <archive>/data.pkl entry, found ${pkls.length}`);
      this.prefix = pkls[0]!.slice(0, -'data.pkl'.length);
      const order = this.zip.entries.has(this.prefix + 'byteorder') ? this.zip.readEntry(this.prefix + 'byteorder').toString('utf8').trim() : 'little';
      if (order !== 'little' && order !== 'big') throw new Error(`${file}: byteorder entry says '${order}', expected little or big`);
      this.bigEndian = order === 'big';
      this.root = loadPickle(this.zip.readEntry(pkls[0]!, 'pickle'), file);
    } catch (e) {
      this.zip.close();
      throw e;
    }
  }

  close(): void {
    this.zip.close();
  }

  /** Reads one tensor (strided views are copied to contiguous row-major). `name` is for errors. */
  readTensor(ref: TensorRef, name: string): TorchTensor {
    const where = `${this.file}: tensor '${name}'`;
    const info = STORAGE_DTYPES[ref.storage.storageType];
    if (!info) throw new Error(`${where}: unsupported storage type torch.${ref.storage.storageType}`);
    if (ref.shape.length !== ref.stride.length) throw new Error(`${where}: size has ${ref.shape.length} dims but stride ${ref.stride.length}`);
    const numel = ref.shape.reduce((a, b) => a * b, 1);
    let maxIndex = ref.storageOffset;
    for (let d = 0; d < ref.shape.length; d++) if (ref.shape[d]! > 0) maxIndex += (ref.shape[d]! - 1) * ref.stride[d]!;
    if (numel > 0 && (ref.storageOffset < 0 || maxIndex >= ref.storage.numel)) {
      throw new Error(`${where}: view (offset ${ref.storageOffset}, size [${ref.shape.join(', ')}], stride [${ref.stride.join(', ')}]) reaches element ${maxIndex} of a storage of ${ref.storage.numel}`);
    }
    const entryName = `${this.prefix}data/${ref.storage.key}`;
    const bytes = this.zip.readEntry(entryName, `storage of tensor '${name}'`);
    if (bytes.length < ref.storage.numel * info.bytes) {
      throw new Error(`${where}: storage '${entryName}' has ${bytes.length} bytes, expected ${ref.storage.numel} × ${info.bytes}`);
    }
    if (this.bigEndian && info.bytes > 1) {
      for (let i = 0; i + info.bytes <= bytes.length; i += info.bytes) bytes.subarray(i, i + info.bytes).reverse();
    }
    const all = decodeTensorBytes(bytes.subarray(0, ref.storage.numel * info.bytes), info.dtype, ref.storage.numel);
    return { dtype: info.dtype, shape: [...ref.shape], data: gatherStrided(all, ref) };
  }
}

/** Copies a (possibly non-contiguous) view out of its storage into a row-major array. */
function gatherStrided(storage: TensorData, ref: TensorRef): TensorData {
  const { shape, stride, storageOffset } = ref;
  const numel = shape.reduce((a, b) => a * b, 1);
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d]! !== 1 && stride[d] !== expect) contiguous = false;
    expect *= shape[d]!;
  }
  if (contiguous) {
    // The whole storage is this tensor (the usual case in a state dict): no copy.
    if (storageOffset === 0 && numel === storage.length) return storage;
    return storage.slice(storageOffset, storageOffset + numel) as TensorData;
  }
  const out = new (storage.constructor as { new (n: number): TensorData })(numel);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < numel; i++) {
    let src = storageOffset;
    for (let d = 0; d < shape.length; d++) src += index[d]! * stride[d]!;
    (out as Float32Array)[i] = (storage as Float32Array)[src]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

/** The key → tensor entries of a state dict inside a torch file (nested dicts are flattened with '.'). */
export function tensorEntries(value: PickleValue, file: string, what: string): Map<string, TensorRef> {
  if (!(value instanceof Map)) throw new Error(`${file}: ${what} is a ${describePickleValue(value)}, expected a dict of tensors`);
  const out = new Map<string, TensorRef>();
  const walk = (m: Map<PickleKey, PickleValue>, prefix: string): void => {
    for (const [k, v] of m) {
      const name = prefix + String(k);
      if (v instanceof TensorRef) out.set(name, v);
      else if (v instanceof Map) walk(v, name + '.');
      else if (v instanceof PickleTuple || v === null) continue;
      else throw new Error(`${file}: ${what} entry '${name}' is a ${describePickleValue(v)}, expected a tensor`);
    }
  };
  walk(value, '');
  return out;
}

/** Reads every tensor of a state-dict file (`pytorch_model.bin`), or of `subKey` inside it (e.g. 'module'). */
export function readTorchStateDict(file: string, subKey?: string): Map<string, TorchTensor> {
  const tf = new TorchFile(file);
  try {
    let root = tf.root;
    if (subKey !== undefined) {
      if (!(root instanceof Map) || !root.has(subKey)) {
        const keys = root instanceof Map ? [...root.keys()].map(String).join(', ') : describePickleValue(root);
        throw new Error(`${file}: no '${subKey}' entry at the top level (found: ${keys})`);
      }
      root = root.get(subKey)!;
    }
    const out = new Map<string, TorchTensor>();
    for (const [name, ref] of tensorEntries(root, file, subKey ? `'${subKey}'` : 'the checkpoint')) out.set(name, tf.readTensor(ref, name));
    return out;
  } finally {
    tf.close();
  }
}
