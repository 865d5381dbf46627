import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateRawSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointMismatchError,
  PickleSecurityError,
  configFromJson,
  detectCheckpointFormat,
  loadCheckpoint,
  loadPickle,
  mergeModelParallel,
  parameterSpecs,
  readSafetensors,
  readTorchStateDict,
  saveCheckpoint,
  writeSafetensors,
  type GlmConfig,
  type LoadedTensor,
} from '../src/index.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const THUDM = join(FIXTURES, 'tiny-thudm');
const tinyConfig = (): GlmConfig => configFromJson(JSON.parse(readFileSync(join(THUDM, 'config.json'), 'utf8')));

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'blankglm-ckpt-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ---- a hand-made pickle/zip writer, to craft torch.save-like files the tests need ----

class PickleWriter {
  private parts: number[] = [0x80, 2];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.op(0x58, ...u32(b.length), ...b);
  }
  int(n: number): this {
    return this.op(0x4a, ...i32(n));
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  tupleOfInts(xs: number[]): this {
    this.op(0x28);
    for (const x of xs) this.int(x);
    return this.op(0x74);
  }
  /** _rebuild_tensor_v2(storage('key', type, numel), offset, size, stride, False, OrderedDict()). */
  tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    this.op(0x28).str('storage').global('torch', storageType).str(key).str('cpu').int(numel).op(0x74, 0x51);
    this.int(offset).tupleOfInts(size).tupleOfInts(stride).op(0x89);
    this.global('collections', 'OrderedDict').op(0x29, 0x52);
    return this.op(0x74, 0x52);
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.parts, 0x2e]);
  }
}
const u32 = (n: number): number[] => [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
const i32 = (n: number): number[] => u32(n >>> 0);

/**
 * A zip archive as torch.save writes them (stored entries). `deflate` compresses the entries;
 * `zip64` writes the ZIP64 records (64-bit offsets in extra fields, ZIP64 end of directory).
 */
function writeZip(file: string, entries: [string, Uint8Array][], opts: { deflate?: boolean; zip64?: boolean } = {}): void {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, raw] of entries) {
    const data = opts.deflate ? deflateRawSync(raw) : Buffer.from(raw);
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(opts.deflate ? 8 : 0, 8);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(n.length, 26);
    chunks.push(local, n, data);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(opts.deflate ? 8 : 0, 10);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(raw.length, 24);
    c.writeUInt16LE(n.length, 28);
    let extra = Buffer.alloc(0);
    if (opts.zip64) {
      c.writeUInt32LE(0xffffffff, 42);
      extra = Buffer.alloc(12);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(8, 2);
      extra.writeBigUInt64LE(BigInt(offset), 4);
      c.writeUInt16LE(extra.length, 30);
    } else {
      c.writeUInt32LE(offset, 42);
    }
    central.push(c, n, extra);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  const tail: Buffer[] = [];
  if (opts.zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeBigUInt64LE(BigInt(entries.length), 24);
    z.writeBigUInt64LE(BigInt(entries.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(z, loc);
    eocd.writeUInt16LE(0xffff, 8);
    eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12);
    eocd.writeUInt32LE(0xffffffff, 16);
  } else {
    eocd.writeUInt16LE(entries.length, 8);
    eocd.writeUInt16LE(entries.length, 10);
    eocd.writeUInt32LE(cd.length, 12);
    eocd.writeUInt32LE(offset, 16);
  }
  writeFileSync(file, Buffer.concat([...chunks, cd, ...tail, eocd]));
}

/** A torch.save-like file of a flat {name: f32 tensor} dict. */
function writeTorchStateDict(file: string, tensors: Map<string, LoadedTensor>): void {
  const w = new PickleWriter().op(0x7d, 0x28);
  const entries: [string, Uint8Array][] = [];
  let key = 0;
  for (const [name, t] of tensors) {
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    w.str(name).tensor('FloatStorage', String(key), t.data.length, 0, t.shape, stride);
    entries.push([`archive/data/${key}`, new Uint8Array((t.data as Float32Array).buffer.slice(0))]);
    key++;
  }
  w.op(0x75);
  writeZip(file, [['archive/data.pkl', w.bytes()], ...entries, ['archive/byteorder', Buffer.from('little')]]);
}

describe('safetensors', () => {
  it('round-trips f32, i32 and i64 tensors with metadata', () => {
    const file = join(work, 'rt.safetensors');
    const f = Float32Array.from([1.5, -2, 3.25, 0, 1e-30, -7]);
    writeSafetensors(
      file,
      new Map<string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }>([
        ['a.weight', { shape: [2, 3], data: f }],
        ['ids', { shape: [3], data: Int32Array.from([7, -1, 2 ** 30]) }],
        ['big', { shape: [1], data: BigInt64Array.from([-(2n ** 40n)]) }],
      ]),
      { note: 'hello' },
    );
    const read = readSafetensors(file);
    expect(read.metadata).toEqual({ note: 'hello' });
    expect(read.tensors.get('a.weight')).toEqual({ dtype: 'F32', shape: [2, 3], data: f });
    expect([...(read.tensors.get('ids')!.data as Int32Array)]).toEqual([7, -1, 2 ** 30]);
    expect(read.tensors.get('big')!.data[0]).toBe(-(2n ** 40n));
    // header length is 8-aligned
    expect(Number(readFileSync(file).readBigUInt64LE(0)) % 8).toBe(0);
  });

  const handmade = (header: object, data: Buffer): string => {
    const file = join(work, `h${Math.abs(JSON.stringify(header).length * 31 + data.length)}-${Date.now()}.safetensors`);
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    writeFileSync(file, Buffer.concat([len, h, data]));
    return file;
  };

  it('widens F16 and BF16 to f32', () => {
    const data = Buffer.alloc(12);
    [0x3c00, 0xc000, 0x0001].forEach((b, i) => data.writeUInt16LE(b, i * 2)); // 1, -2, smallest subnormal
    [0x3f80, 0xc040, 0x7f80].forEach((b, i) => data.writeUInt16LE(b, 6 + i * 2)); // 1, -3, +inf
    const file = handmade({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, b: { dtype: 'BF16', shape: [3], data_offsets: [6, 12] } }, data);
    const t = readSafetensors(file).tensors;
    expect([...t.get('h')!.data]).toEqual([1, -2, 2 ** -24]);
    expect([...t.get('b')!.data]).toEqual([1, -3, Infinity]);
  });

  it('reports corrupt files naming the file and the tensor', () => {
    const file = join(work, 'cut.safetensors');
    writeSafetensors(file, new Map([['layer.weight', { shape: [4, 4], data: new Float32Array(16) }]]));
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 10));
    expect(() => readSafetensors(file)).toThrow(/cut\.safetensors: tensor 'layer\.weight': data_offsets \[0, 64\] run past the end of the file/);
    writeFileSync(file, whole.subarray(0, 20));
    expect(() => readSafetensors(file)).toThrow(/cut\.safetensors: header length \d+ runs past the end of the file/);
    writeFileSync(file, whole.subarray(0, 5));
    expect(() => readSafetensors(file)).toThrow(/too short/);
    const z = Buffer.alloc(16);
    expect(() => readSafetensors(handmade({ x: { dtype: 'F8', shape: [2], data_offsets: [0, 2] } }, z))).toThrow(/tensor 'x': unknown dtype "F8"/);
    expect(() => readSafetensors(handmade({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, z))).toThrow(/tensor 'x': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/);
    expect(() =>
      readSafetensors(handmade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, z)),
    ).toThrow(/'x' \[0, 8\) and 'y' \[4, 12\) overlap/);
    expect(() => readSafetensors(handmade({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 4] } }, z))).toThrow(/data_offsets must be \[begin, end\]/);
  });
});

describe('pickle reader', () => {
  it('refuses a pickle that asks to run code, before running anything', () => {
    const evil = new PickleWriter().global('os', 'system').str('echo pwned').op(0x85, 0x52).bytes();
    expect(() => loadPickle(evil, 'evil.pkl')).toThrow(PickleSecurityError);
    expect(() => loadPickle(evil, 'evil.pkl')).toThrow("refusing to load evil.pkl: the pickle asks to call os.system, which a tensor checkpoint never needs");
    const stackGlobal = new PickleWriter().str('builtins').str('eval').op(0x93).str('1+1').op(0x85, 0x52).bytes();
    expect(() => loadPickle(stackGlobal, 'e.pkl')).toThrow(/asks to call builtins\.eval/);
    const inst = new PickleWriter().op(0x28, 0x69, ...Buffer.from('posix\nsystem\n')).bytes();
    expect(() => loadPickle(inst, 'i.pkl')).toThrow(/asks to call posix\.system/);
  });

  it('refuses the same inside a .bin file, naming the file', () => {
    const file = join(work, 'evil.bin');
    const evil = new PickleWriter().global('os', 'system').str('touch /tmp/pwned').op(0x85, 0x52).bytes();
    writeZip(file, [['archive/data.pkl', evil]]);
    expect(() => readTorchStateDict(file)).toThrow(`refusing to load ${file}: the pickle asks to call os.system, which a tensor checkpoint never needs`);
  });

  it('reads Namespace and numpy objects as inert records', () => {
    const ns = new PickleWriter().op(0x7d, 0x28).str('args').global('argparse', 'Namespace').op(0x29, 0x81, 0x7d).str('lr').op(0x47, ...Buffer.from([0x3f, 0x1a, 0x36, 0xe2, 0xeb, 0x1c, 0x43, 0x2d])).op(0x73, 0x62, 0x75).bytes();
    const root = loadPickle(ns, 'ns.pkl') as Map<string, unknown>;
    const args = root.get('args') as { type: string; state: Map<string, number> };
    expect(args.type).toBe('argparse.Namespace');
    expect(args.state.get('lr')).toBeCloseTo(1e-4, 12);
  });

  it('copies non-contiguous views and widens f16 storages', () => {
    const file = join(work, 'strided.bin');
    // storage 0: f32 [[0,1,2],[3,4,5]] saved as its transpose view (size [3,2], stride [1,3]); storage 1: f16 at offset 1
    const w = new PickleWriter().op(0x7d, 0x28);
    w.str('t').tensor('FloatStorage', '0', 6, 0, [3, 2], [1, 3]);
    w.str('h').tensor('HalfStorage', '1', 3, 1, [2], [1]);
    w.op(0x75);
    const half = Buffer.alloc(6);
    [0x3c00, 0x4000, 0xbc00].forEach((b, i) => half.writeUInt16LE(b, i * 2));
    writeZip(file, [
      ['archive/data.pkl', w.bytes()],
      ['archive/data/0', new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer)],
      ['archive/data/1', half],
    ]);
    const sd = readTorchStateDict(file);
    expect(sd.get('t')!.shape).toEqual([3, 2]);
    expect([...sd.get('t')!.data]).toEqual([0, 3, 1, 4, 2, 5]);
    expect([...sd.get('h')!.data]).toEqual([2, -1]);
  });

  it('reads ZIP64 archives and deflated entries', () => {
    const w = new PickleWriter().op(0x7d, 0x28).str('w').tensor('FloatStorage', '0', 3, 0, [3], [1]).op(0x75);
    const entries: [string, Uint8Array][] = [['a/data.pkl', w.bytes()], ['a/data/0', new Uint8Array(Float32Array.from([1, 2, 3]).buffer)]];
    for (const opts of [{ zip64: true }, { deflate: true }, { zip64: true, deflate: true }]) {
      const file = join(work, `z-${Object.keys(opts).join('-')}.bin`);
      writeZip(file, entries, opts);
      expect([...readTorchStateDict(file).get('w')!.data], JSON.stringify(opts)).toEqual([1, 2, 3]);
    }
  });

  it('names the legacy (pre-1.6) torch.save format instead of misreading it', () => {
    const file = join(work, 'legacy.bin');
    writeFileSync(file, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]));
    expect(() => readTorchStateDict(file)).toThrow(/legacy \(pre-1\.6\) torch\.save format/);
  });

  it('reports a view that reaches past its storage', () => {
    const file = join(work, 'oob.bin');
    const w = new PickleWriter().op(0x7d, 0x28).str('w').tensor('FloatStorage', '0', 4, 2, [2, 2], [2, 1]).op(0x75);
    writeZip(file, [['archive/data.pkl', w.bytes()], ['archive/data/0', new Uint8Array(16)]]);
    expect(() => readTorchStateDict(file)).toThrow(/tensor 'w': view \(offset 2, size \[2, 2\], stride \[2, 1\]\) reaches element 5 of a storage of 4/);
  });

  it('reports a truncated .bin clearly', () => {
    const file = join(work, 'truncated.bin');
    const whole = readFileSync(join(THUDM, 'pytorch_model.bin'));
    writeFileSync(file, whole.subarray(0, Math.floor(whole.length / 2)));
    expect(() => readTorchStateDict(file)).toThrow(/truncated\.bin: no zip end-of-central-directory record \(truncated, or not a zip archive\)/);
  });
});

describe('checkpoint folders', () => {
  it('loads the THUDM folder written by torch.save, strictly', () => {
    const ck = loadCheckpoint(THUDM);
    expect(ck.format).toBe('thudm-hf');
    expect(ck.config.hidden_act).toBe('gelu_erf');
    expect([...ck.stateDict.keys()]).toEqual(parameterSpecs(ck.config).map((s) => s.name));
  });

  it('original release folders, MP=1 and MP=2 (merged), give the same tensors as the THUDM folder', () => {
    const ref = loadCheckpoint(THUDM);
    for (const dir of ['tiny-original-mp1', 'tiny-original-mp2']) {
      const ck = loadCheckpoint(join(FIXTURES, dir), { config: ref.config, configSource: 'test' });
      expect(ck.format).toBe('original-release');
      for (const [name, data] of ref.stateDict) expect(ck.stateDict.get(name), `${dir}: ${name}`).toEqual(data);
    }
  });

  it('strips a glm. prefix and reads sharded folders', () => {
    const ref = loadCheckpoint(THUDM);
    const dir = join(work, 'prefixed');
    mkdirSync(dir);
    copyFileSync(join(THUDM, 'config.json'), join(dir, 'config.json'));
    const names = [...ref.stateDict.keys()];
    const shards: [string, string[]][] = [
      ['pytorch_model-00001-of-00002.bin', names.slice(0, 10)],
      ['pytorch_model-00002-of-00002.bin', names.slice(10)],
    ];
    const weightMap: Record<string, string> = {};
    for (const [file, keys] of shards) {
      const m = new Map<string, LoadedTensor>();
      for (const k of keys) {
        const spec = parameterSpecs(ref.config).find((s) => s.name === k)!;
        m.set('glm.' + k, { shape: spec.shape, data: ref.stateDict.get(k)! });
        weightMap['glm.' + k] = file;
      }
      writeTorchStateDict(join(dir, file), m);
    }
    writeFileSync(join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const ck = loadCheckpoint(dir);
    expect(ck.notes.join('; ')).toMatch(/read 2 weight shards; stripped the 'glm\.' prefix from 29 tensor names/);
    for (const [name, data] of ref.stateDict) expect(ck.stateDict.get(name)).toEqual(data);
  });

  it('reports missing, unexpected and wrongly shaped tensors by name and shape', () => {
    const wide = { ...tinyConfig(), hidden_size: 64 };
    const e1 = (() => {
      try {
        loadCheckpoint(THUDM, { config: wide, configSource: 'hidden 64' });
      } catch (e) {
        return e as CheckpointMismatchError;
      }
      throw new Error('expected a mismatch');
    })();
    expect(e1).toBeInstanceOf(CheckpointMismatchError);
    expect(e1.message).toMatch(/the tensors do not match the config \(hidden 64\)/);
    expect(e1.message).toMatch(/wrongly shaped \(29\):\n {2}word_embeddings\.weight: expected \[128, 64\], got \[128, 32\]/);
    const deeper = { ...tinyConfig(), num_layers: 3 };
    expect(() => loadCheckpoint(THUDM, { config: deeper })).toThrow(/missing \(12\):\n {2}transformer\.layers\.2\.input_layernorm\.weight \[32\]/);
    const shallow = { ...tinyConfig(), num_layers: 1 };
    expect(() => loadCheckpoint(THUDM, { config: shallow })).toThrow(/unexpected \(12\):\n {2}transformer\.layers\.1\.input_layernorm\.weight \[32\]/);
    const ok = loadCheckpoint(THUDM, { config: shallow, allowUnexpected: true });
    expect(ok.notes[0]).toMatch(/ignored 12 tensors/);
  });

  it('explains what is missing in an original release folder', () => {
    const dir = join(work, 'orig-no-latest');
    cpSync(join(FIXTURES, 'tiny-original-mp1'), dir, { recursive: true });
    expect(() => loadCheckpoint(dir)).toThrow(/carries no config; give its shape with --preset NAME or --config FILE/);
    rmSync(join(dir, 'latest_checkpointed_iteration.txt'));
    expect(() => loadCheckpoint(dir, { config: tinyConfig() })).toThrow(/not a checkpoint folder: expected config\.json .* or latest_checkpointed_iteration\.txt \(original GLM release; missing here\)/);
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), '2000\n');
    expect(() => loadCheckpoint(dir, { config: tinyConfig() })).toThrow(/names tag '2000', but .*2000 .* does not exist/);
    expect(() => detectCheckpointFormat(join(work, 'nope'))).toThrow(/no such checkpoint folder/);
  });

  it('merges Megatron shards by the split of each layer, and checks replicated ones agree', () => {
    const f = (shape: number[], xs: number[]): LoadedTensor => ({ shape, data: Float32Array.from(xs) });
    // h = 2 split over 2 ranks: QKV rows [q0,q1,k0,k1,v0,v1] → rank 0 [q0,k0,v0], rank 1 [q1,k1,v1]
    const r0 = new Map([
      ['transformer.layers.0.attention.query_key_value.bias', f([3], [10, 20, 30])],
      ['transformer.layers.0.attention.dense.weight', f([2, 1], [1, 3])],
      ['transformer.layers.0.attention.dense.bias', f([2], [5, 6])],
      ['word_embeddings.weight', f([1, 2], [1, 2])],
    ]);
    const r1 = new Map([
      ['transformer.layers.0.attention.query_key_value.bias', f([3], [11, 21, 31])],
      ['transformer.layers.0.attention.dense.weight', f([2, 1], [2, 4])],
      ['transformer.layers.0.attention.dense.bias', f([2], [5, 6])],
      ['word_embeddings.weight', f([1, 2], [3, 4])],
    ]);
    const m = mergeModelParallel([r0, r1], ['r0', 'r1']);
    expect([...m.get('transformer.layers.0.attention.query_key_value.bias')!.data]).toEqual([10, 11, 20, 21, 30, 31]);
    expect(m.get('transformer.layers.0.attention.dense.weight')).toEqual(f([2, 2], [1, 2, 3, 4]));
    expect(m.get('word_embeddings.weight')).toEqual(f([2, 2], [1, 2, 3, 4]));
    r1.set('transformer.layers.0.attention.dense.bias', f([2], [5, 7]));
    expect(() => mergeModelParallel([r0, r1], ['r0', 'r1'])).toThrow(/r1: tensor 'transformer\.layers\.0\.attention\.dense\.bias' should be replicated .* element 1 \(7 vs 6\)/);
  });

  it('saves blankglm folders atomically and loads them back', () => {
    const ref = loadCheckpoint(THUDM);
    const out = join(work, 'saved');
    saveCheckpoint(out, ref.config, ref.stateDict, { tokenizerFiles: { 'vocab.txt': 'a\nb\n' } });
    const back = loadCheckpoint(out);
    expect(back.format).toBe('blankglm');
    expect(back.config).toEqual(ref.config);
    expect(back.tokenizerFiles).toEqual(['vocab.txt']);
    for (const [name, data] of ref.stateDict) expect(back.stateDict.get(name)).toEqual(data);
    expect(() => saveCheckpoint(out, ref.config, ref.stateDict)).toThrow(/already exists/);
    saveCheckpoint(out, ref.config, ref.stateDict, { overwrite: true });
    expect(loadCheckpoint(out).tokenizerFiles).toEqual([]);
    const partial = new Map(ref.stateDict);
    partial.delete('transformer.final_layernorm.bias');
    expect(() => saveCheckpoint(join(work, 'partial'), ref.config, partial)).toThrow(/lacks transformer\.final_layernorm\.bias/);
  });
});
