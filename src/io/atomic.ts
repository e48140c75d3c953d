// Atomic file writes: write to a temporary file in the same folder, fsync, then rename over
// the target, so a crash or a full disk never leaves a half-written checkpoint or result.
import * as fs from 'fs';
import * as path from 'path';

export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot write ${file}: ${err.code ? err.code + ' ' : ''}${err.message}`);
  }
}
