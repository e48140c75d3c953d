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
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e || typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
      throw new Error(`${what}: tensor '${name}' has unsupported dtype ${String(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`${what}: tensor '${name}' has a bad shape`);
    const [b, en] = e.data_offsets ?? [-1, -1];
    const n = e.shape.reduce((a, c) => a * c, 1) * DTYPE_BYTES[e.dtype as StDType];
    if (!Number.isInteger(b) || !Number.isInteger(en) || b < 0 || en - b !== n)
      throw new Error(`${what}: tensor '${name}' has bad data offsets [${b}, ${en}] for ${n} bytes`);
    if (en > dataLen)
      throw new Error(`${what} is truncated: tensor '${name}' ends at byte ${base + en}, the file has ${buf.length}`);
    maxEnd = Math.max(maxEnd, en);
    // copy (a Buffer's slice() is a view) so the entry is aligned and owns its bytes
    entries.set(name, { dtype: e.dtype as StDType, shape: e.shape, data: new Uint8Array(buf.subarray(base + b, base + en)) });
  }
  if (maxEnd !== dataLen) throw new Error(`${what} is corrupt: ${dataLen - maxEnd} bytes after the last tensor`);
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
