// File helpers shared by the dataset loaders: read a file whole, un-gzipping it when it starts
// with the gzip magic bytes (1f 8b) whatever its name, and find the first existing candidate
// name in a folder. Errors name the file and what is wrong with it.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** The largest file a gzipped dataset file may inflate to (CIFAR-100's train.bin is 150 MiB). */
export const MAX_GUNZIP_BYTES = 2 ** 30;

/** The bytes of a file, gunzipped when it is gzip data (detected by its magic bytes). */
export function readMaybeGzip(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot read ${file}: ${err.code ? err.code + ' ' : ''}${err.message}`);
  }
  if (!isGzip(raw)) return raw;
  try {
    // bounded: a small gzip that inflates without end (a "zip bomb") is an error, not an allocation
    return zlib.gunzipSync(raw, { maxOutputLength: MAX_GUNZIP_BYTES });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE')
      throw new Error(`${file}: gzip data inflates to more than ${MAX_GUNZIP_BYTES / 2 ** 30} GiB; not a dataset file m2kd reads`);
    throw new Error(`${file}: corrupt or truncated gzip data (${err.message})`);
  }
}

export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The first of `names` (each also tried with .gz) that is a file in dir, or null. */
export function findFile(dir: string, names: readonly string[]): string | null {
  for (const n of names)
    for (const cand of [n, n + '.gz']) {
      const p = path.join(dir, cand);
      if (isFile(p)) return p;
    }
  return null;
}

/** Throws a clear error when dir is missing or not a folder. */
export function requireDir(dir: string, what: string, hint = ''): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new Error(`${what}: folder ${dir} does not exist${hint ? ` (${hint})` : ''}`);
  }
  if (!st.isDirectory()) throw new Error(`${what}: ${dir} is not a folder${hint ? ` (${hint})` : ''}`);
}

/** Fills out[i] = src[i] / 255 (u8 pixels to [0, 1] floats). */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);
export function bytesToUnit(src: Uint8Array, out: Float32Array, outOffset = 0): void {
  for (let i = 0; i < src.length; i++) out[outOffset + i] = UNIT[src[i]];
}
