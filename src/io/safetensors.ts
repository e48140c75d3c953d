// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__: {...}},
// then the raw little-endian tensor bytes. Read and written here without dependencies;
// PyTorch reads the files with safetensors.torch.load_file. Every structural problem of a
// file (truncation, bad offsets, unknown dtypes) is an Error naming the file.
import * as fs from 'fs';
import { writeFileAtomic } from './atomic';

export type StDType = 'F32' | 'I32' | 'U8' | 'I64' | 'F64';

export interface StEntry {
  dtype: StDType;
  shape: number[];
  /** raw little-endian bytes */
  data: Uint8Array;
}

const DTYPE_BYTES: Record<StDType, number> = { F32: 4, I32: 4, U8: 1, I64: 8, F64: 8 };

export function encodeSafetensors(entries: Map<string, StEntry>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, e] of entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (n * DTYPE_BYTES[e.dtype] !== e.data.length)
      throw new Error(`safetensors: '${name}' has ${e.data.length} bytes for shape [${e.shape.join(',')}] ${e.dtype}`);
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.length] };
    offset += e.data.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.length;
  for (const e of entries.values()) {
    out.set(e.data, p);
    p += e.data.length;
  }
  return out;
}

export function writeSafetensors(file: string, entries: Map<string, StEntry>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(entries, metadata));
}

export interface SafetensorsFile {
  entries: Map<string, StEntry>;
  metadata: Record<string, string>;
}

export function decodeSafetensors(buf: Uint8Array, what = 'safetensors data'): SafetensorsFile {
  if (buf.length < 8) throw new Error(`${what} is truncated: ${buf.length} bytes, not even a header length`);
  const hlen = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (hlen > 100_000_000 || 8 + hlen > buf.length)
    throw new Error(`${what} is truncated or corrupt: header of ${hlen} bytes, file has ${buf.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, hlen).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${what} has a corrupt header: ${(e as Error).message}`);
  }
  const base = 8 + hlen;
  const dataLen = buf.length - base;
  const entries = new Map<string, StEntry>();
  let metadata: Record<string, string> = {};
  let maxEnd = 0;
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${what} has a corrupt header: not a JSON object`);
  // every size is checked against the file before any tensor is copied
  const ranges: { name: string; b: number; en: number }[] = [];
  const specs: { name: string; dtype: StDType; shape: number[] }[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.values(v as object).every((x) => typeof x === 'string'))
        throw new Error(`${what}: __metadata__ must be an object of strings`);
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object' || typeof e.dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, e.dtype))
      throw new Error(`${what}: tensor '${name}' has unsupported dtype ${String((e as { dtype?: unknown } | null)?.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`${what}: tensor '${name}' has a bad shape ${JSON.stringify(shape)?.slice(0, 80)}`);
    const off = e.data_offsets;
    const [b, en] = Array.isArray(off) && off.length === 2 ? (off as unknown[]) : [NaN, NaN];
    const n = (shape as number[]).reduce((a, c) => a * c, 1) * DTYPE_BYTES[e.dtype as StDType];
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(en) || (b as number) < 0 || (en as number) - (b as number) !== n)
      throw new Error(`${what}: tensor '${name}' has bad data offsets ${JSON.stringify(off)?.slice(0, 80)} for ${n} bytes`);
    if ((en as number) > dataLen)
      throw new Error(`${what} is truncated: tensor '${name}' ends at byte ${base + (en as number)}, the file has ${buf.length}`);
    ranges.push({ name, b: b as number, en: en as number });
    specs.push({ name, dtype: e.dtype as StDType, shape: shape as number[] });
    maxEnd = Math.max(maxEnd, en as number);
  }
  // the tensors tile the data exactly: no overlap, no hole
  const sorted = [...ranges].sort((x, y) => x.b - y.b || x.en - y.en);
  let at = 0;
  for (const r of sorted) {
    if (r.b < at) throw new Error(`${what} is corrupt: tensor '${r.name}' [${r.b}, ${r.en}) overlaps another tensor`);
    if (r.b > at) throw new Error(`${what} is corrupt: ${r.b - at} unused bytes before tensor '${r.name}'`);
    at = r.en;
  }
  if (maxEnd !== dataLen) throw new Error(`${what} is corrupt: ${dataLen - maxEnd} bytes after the last tensor`);
  specs.forEach((sp, i) => {
    const r = ranges[i];
    // copy (a Buffer's slice() is a view) so the entry is aligned and owns its bytes
    entries.set(sp.name, { dtype: sp.dtype, shape: sp.shape, data: new Uint8Array(buf.subarray(base + r.b, base + r.en)) });
  });
  return { entries, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  return decodeSafetensors(buf, file);
}
