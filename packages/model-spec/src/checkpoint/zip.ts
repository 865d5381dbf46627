// A minimal zip reader for `torch.save` archives: the central directory (ZIP64 included) is
// parsed from the end of the file and entries are read lazily by offset, so a multi-gigabyte
// checkpoint is never read whole. torch.save stores entries uncompressed; deflated entries
// (a re-zipped archive) are inflated with node:zlib.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { readExactly } from './safetensors.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

function u64(buf: Buffer, at: number, file: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: zip field ${v} is too large`);
  return Number(v);
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly fd: number;
  private readonly size: number;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    try {
      this.size = fstatSync(this.fd).size;
      this.readCentralDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private read(position: number, count: number, what: string): Buffer {
    if (position < 0 || position + count > this.size) {
      throw new Error(`${this.file}: ${what} at byte ${position} (+${count}) lies past the end of the file (${this.size} bytes; truncated?)`);
    }
    return readExactly(this.fd, this.file, position, count, what);
  }

  private readCentralDirectory(): void {
    const tailLen = Math.min(this.size, 22 + 0xffff);
    if (tailLen < 22) throw new Error(`${this.file}: ${this.size} bytes is too short to be a zip archive`);
    const tail = this.read(this.size - tailLen, tailLen, 'end of archive');
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`${this.file}: no zip end-of-central-directory record (truncated, or not a zip archive)`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdAbs = this.size - tailLen + eocd;
    if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && eocdAbs >= 20) {
      const loc = this.read(eocdAbs - 20, 20, 'ZIP64 locator');
      if (loc.readUInt32LE(0) === ZIP64_LOCATOR_SIG) {
        const z64 = this.read(u64(loc, 8, this.file), 56, 'ZIP64 end of central directory');
        if (z64.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw new Error(`${this.file}: bad ZIP64 end-of-central-directory signature`);
        count = u64(z64, 32, this.file);
        cdSize = u64(z64, 40, this.file);
        cdOffset = u64(z64, 48, this.file);
      }
    }
    const cd = this.read(cdOffset, cdSize, 'central directory');
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIG) throw new Error(`${this.file}: central directory entry ${n} is corrupt`);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // ZIP64 extended information: 64-bit values for the fields that hold 0xffffffff, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) (size = u64(cd, q, this.file)), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = u64(cd, q, this.file)), (q += 8);
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(cd, q, this.file);
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      p = extraEnd + commentLen;
    }
  }

  /** The bytes of one entry; `what` says what it is for error messages. */
  readEntry(name: string, what = name): Buffer {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.file}: the archive has no entry '${name}' (${what})`);
    const local = this.read(entry.localHeaderOffset, 30, `local header of '${name}'`);
    if (local.readUInt32LE(0) !== LOCAL_SIG) throw new Error(`${this.file}: local header of '${name}' is corrupt`);
    const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = this.read(dataStart, entry.compressedSize, `entry '${name}' (${what})`);
    if (entry.method === 0) return raw;
    if (entry.method === 8) {
      const out = inflateRawSync(raw);
      if (out.length !== entry.size) throw new Error(`${this.file}: entry '${name}' inflated to ${out.length} bytes, expected ${entry.size}`);
      return out;
    }
    throw new Error(`${this.file}: entry '${name}' uses zip compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  }
}
