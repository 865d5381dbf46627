// A safe pickle reader: a small stack machine that knows the opcodes `torch.save` writes for
// dictionaries of tensors, and calls nothing.
//
// A pickle can name any Python callable (GLOBAL/STACK_GLOBAL) and call it (REDUCE/NEWOBJ/BUILD/
// INST/OBJ); Python's unpickler imports and runs it, which is how a checkpoint can run code. Here
// every global is looked up in a fixed table instead:
//   - constructors we interpret ourselves: collections.OrderedDict (→ Map), torch._utils.
//     _rebuild_tensor_v2 / _rebuild_parameter(_with_state) (→ a lazy TensorRef), torch.Size
//     (→ tuple), torch.*Storage types and torch dtypes (→ inert markers);
//   - inert records: argparse.Namespace, numpy arrays/dtypes and _codecs.encode, which original
//     `mp_rank_XX_model_states.pt` files carry beside the weights (args, RNG states). They become
//     `OpaqueObject`s holding their arguments and state; nothing is executed;
//   - anything else (os.system, builtins.eval, posix.system, subprocess.*, ...) is refused the
//     moment the pickle names it, before any call could happen.
// INST, OBJ and the EXT opcodes are refused for the same reason.

export type PickleKey = string | number | bigint | boolean | null;

/** A tensor rebuilt from the pickle: storage and view metadata only; the bytes are read on demand. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A persistent-id storage reference: ('storage', torch.<Type>Storage, key, location, numel). */
export class StorageRef {
  constructor(
    readonly storageType: string,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}

/** A Python global the reader allows to appear (storage types, dtypes, and callables it interprets). */
export class GlobalRef {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object the reader recognises but never builds (argparse.Namespace, numpy arrays): its arguments and state, inert. */
export class OpaqueObject {
  state: PickleValue = null;
  constructor(
    readonly type: string,
    readonly args: PickleValue[],
  ) {}
}

export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | Map<PickleKey, PickleValue>
  | TensorRef
  | StorageRef
  | GlobalRef
  | OpaqueObject;

const TORCH_STORAGE_TYPES = new Set([
  'FloatStorage', 'HalfStorage', 'BFloat16Storage', 'DoubleStorage', 'LongStorage', 'IntStorage',
  'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage',
]);
const TORCH_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'float', 'half', 'double', 'long', 'int']);
const INTERPRETED = new Set([
  'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state', 'torch.Size',
]);
const INERT_RECORDS = new Set([
  'argparse.Namespace', 'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
  'numpy.ndarray', 'numpy.dtype', 'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar', '_codecs.encode',
]);

function allowedGlobal(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (INTERPRETED.has(q) || INERT_RECORDS.has(q)) return true;
  if (module === 'torch' && (TORCH_STORAGE_TYPES.has(name) || TORCH_DTYPES.has(name))) return true;
  return false;
}

export class PickleSecurityError extends Error {
  override name = 'PickleSecurityError';
}

function refuse(file: string, what: string): never {
  throw new PickleSecurityError(`refusing to load ${file}: the pickle asks to call ${what}, which a tensor checkpoint never needs`);
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

function toKey(v: PickleValue, file: string): PickleKey {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return v;
  if (v instanceof PickleTuple) return JSON.stringify(v.items.map((x) => toKey(x, file)), (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  throw new Error(`${file}: a dictionary key of an unsupported type`);
}

function asNumber(v: PickleValue): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  throw new Error(`expected an integer, got ${describePickleValue(v)}`);
}

function asIntList(v: PickleValue, what: string): number[] {
  const items = v instanceof PickleTuple ? v.items : Array.isArray(v) ? v : null;
  if (!items) throw new Error(`${what}: expected a tuple of integers, got ${describePickleValue(v)}`);
  return items.map(asNumber);
}

/** A short description of a value, for error messages. */
export function describePickleValue(v: PickleValue | undefined): string {
  if (v === null || v === undefined) return 'None';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PickleTuple) return 'tuple';
  if (v instanceof TensorRef) return `tensor [${v.shape.join(', ')}]`;
  if (v instanceof OpaqueObject) return `<${v.type}>`;
  if (v instanceof GlobalRef) return v.qualified;
  if (v instanceof StorageRef) return 'storage';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function callInterpreted(fn: GlobalRef, args: PickleValue[], file: string): PickleValue {
  switch (fn.qualified) {
    case 'collections.OrderedDict': {
      const m = new Map<PickleKey, PickleValue>();
      const init = args[0];
      if (Array.isArray(init)) {
        for (const pair of init) {
          if (!(pair instanceof PickleTuple) || pair.items.length !== 2) throw new Error(`${file}: OrderedDict initialiser must be a list of pairs`);
          m.set(toKey(pair.items[0]!, file), pair.items[1]!);
        }
      }
      return m;
    }
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef)) throw new Error(`${file}: _rebuild_tensor_v2 got ${describePickleValue(storage)} instead of a storage`);
      return new TensorRef(storage, asNumber(offset ?? 0), asIntList(size ?? null, `${file}: tensor size`), asIntList(stride ?? null, `${file}: tensor stride`));
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return args[0] ?? null;
    case 'torch.Size':
      return new PickleTuple(args[0] instanceof PickleTuple ? args[0].items : []);
    default:
      if (INERT_RECORDS.has(fn.qualified)) return new OpaqueObject(fn.qualified, args);
      return refuse(file, fn.qualified);
  }
}

/**
 * Runs a pickle (protocols 2–5) and returns the top object. `file` names the source in errors.
 * Storages (BINPERSID) become StorageRefs; nothing outside the table above is ever invoked.
 */
export function loadPickle(bytes: Uint8Array, file: string): PickleValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let p = 0;
  const need = (n: number): void => {
    if (p + n > buf.length) throw new Error(`${file}: the pickle ends in the middle of an opcode at byte ${p} (truncated?)`);
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new Error(`${file}: pickle stack underflow at byte ${p}`);
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new Error(`${file}: pickle stack underflow at byte ${p}`);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new Error(`${file}: pickle MARK missing at byte ${p}`);
    const items = stack.splice(m) as PickleValue[];
    items.shift(); // the MARK itself
    return items;
  };
  const readLine = (): string => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) throw new Error(`${file}: unterminated text line in the pickle at byte ${p}`);
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const pushGlobal = (module: string, name: string): void => {
    if (!allowedGlobal(module, name)) refuse(file, `${module}.${name}`);
    stack.push(new GlobalRef(module, name));
  };
  const setItems = (target: PickleValue, items: PickleValue[]): void => {
    if (!(target instanceof Map)) throw new Error(`${file}: SETITEM(S) on a ${describePickleValue(target)}`);
    for (let i = 0; i + 1 < items.length; i += 2) target.set(toKey(items[i]!, file), items[i + 1]!);
  };
  const appendItems = (target: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(target)) throw new Error(`${file}: APPEND(S) on a ${describePickleValue(target)}`);
    target.push(...items);
  };

  for (;;) {
    need(1);
    const op = buf[p++]!;
    switch (op) {
      case 0x80: // PROTO
        need(1);
        p += 1;
        break;
      case 0x95: // FRAME (a length hint; the bytes follow inline)
        need(8);
        p += 8;
        break;
      case 0x2e: // STOP
        return pop();
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PickleTuple([]));
        break;
      case 0x8f: // EMPTY_SET (kept as a list)
        stack.push([]);
        break;
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x64: // DICT
        {
          const m = new Map<PickleKey, PickleValue>();
          setItems(m, popMark());
          stack.push(m);
        }
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push(new PickleTuple(popMark()));
        break;
      case 0x91: // FROZENSET
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push(new PickleTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(new PickleTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PickleTuple([pop(), b, c]));
        break;
      }
      case 0x4a: // BININT
        need(4);
        stack.push(buf.readInt32LE(p));
        p += 4;
        break;
      case 0x4b: // BININT1
        need(1);
        stack.push(buf[p]!);
        p += 1;
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(buf.readUInt16LE(p));
        p += 2;
        break;
      case 0x8a: // LONG1
      case 0x8b: { // LONG4
        const lenBytes = op === 0x8a ? 1 : 4;
        need(lenBytes);
        const n = op === 0x8a ? buf[p]! : buf.readUInt32LE(p);
        p += lenBytes;
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]!);
        if (n > 0 && buf[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian f64)
        need(8);
        stack.push(buf.readDoubleBE(p));
        p += 8;
        break;
      case 0x58: // BINUNICODE
      case 0x8c: // SHORT_BINUNICODE
      case 0x8d: // BINUNICODE8
      case 0x54: // BINSTRING
      case 0x55: // SHORT_BINSTRING
      case 0x42: // BINBYTES
      case 0x43: // SHORT_BINBYTES
      case 0x8e: { // BINBYTES8
        const width = op === 0x8c || op === 0x55 || op === 0x43 ? 1 : op === 0x8d || op === 0x8e ? 8 : 4;
        need(width);
        const n = width === 1 ? buf[p]! : width === 4 ? buf.readUInt32LE(p) : Number(buf.readBigUInt64LE(p));
        p += width;
        need(n);
        if (op === 0x42 || op === 0x43 || op === 0x8e) stack.push(new Uint8Array(buf.subarray(p, p + n)));
        else stack.push(buf.toString(op === 0x54 || op === 0x55 ? 'latin1' : 'utf8', p, p + n));
        p += n;
        break;
      }
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x71: // BINPUT
        need(1);
        memo.set(buf[p]!, top());
        p += 1;
        break;
      case 0x72: // LONG_BINPUT
        need(4);
        memo.set(buf.readUInt32LE(p), top());
        p += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const w = op === 0x68 ? 1 : 4;
        need(w);
        const idx = w === 1 ? buf[p]! : buf.readUInt32LE(p);
        p += w;
        if (!memo.has(idx)) throw new Error(`${file}: pickle refers to memo entry ${idx}, which was never stored`);
        stack.push(memo.get(idx)!);
        break;
      }
      case 0x30: // POP
        if (stack[stack.length - 1] === MARK) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS (sets kept as lists)
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = readLine();
        const name = readLine();
        pushGlobal(module, name);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new Error(`${file}: STACK_GLOBAL needs two strings`);
        pushGlobal(module, name);
        break;
      }
      case 0x52: // REDUCE
      case 0x81: { // NEWOBJ
        const args = pop();
        const fn = pop();
        if (!(fn instanceof GlobalRef)) throw new Error(`${file}: REDUCE/NEWOBJ on ${describePickleValue(fn)}, which is not a known callable`);
        if (!(args instanceof PickleTuple)) throw new Error(`${file}: REDUCE/NEWOBJ arguments must be a tuple`);
        stack.push(callInterpreted(fn, args.items, file));
        break;
      }
      case 0x62: { // BUILD: set an object's state; kept inert, never __setstate__
        const state = pop();
        const obj = top();
        if (obj instanceof OpaqueObject) obj.state = state;
        // Map (OrderedDict with a `_metadata` attribute) and tensors: the state carries nothing we use.
        break;
      }
      case 0x51: { // BINPERSID: torch storages
        const pid = pop();
        if (!(pid instanceof PickleTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) {
          throw new Error(`${file}: unsupported persistent id ${describePickleValue(pid)} (expected ('storage', type, key, location, numel))`);
        }
        const [, type, key, location, numel] = pid.items;
        if (!(type instanceof GlobalRef)) throw new Error(`${file}: storage type is ${describePickleValue(type)}`);
        stack.push(new StorageRef(type.name, String(key), String(location), asNumber(numel!)));
        break;
      }
      case 0x69: { // INST "module\nname\n": creates and calls a class
        const module = readLine();
        const name = readLine();
        refuse(file, `${module}.${name}`);
        break;
      }
      case 0x6f: { // OBJ
        const args = popMark();
        refuse(file, describePickleValue(args[0]));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry
        refuse(file, 'a copyreg extension-registry entry');
        break;
      default:
        throw new Error(`${file}: unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1} (not a torch.save tensor checkpoint?)`);
    }
  }
}
