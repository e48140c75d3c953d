// Argument checks shared by the ops: every op validates dtype, rank, shape and device at the
// TypeScript boundary and throws an Error that names the op and the shapes.
import { Tensor } from '../tensor';
import { fail } from '../errors';

export { fail, checkInt } from '../errors';

export function shapeStr(t: Tensor): string {
  return `[${t.shape.join(',')}]`;
}

/** All tensors must be live, f32 (unless dtype given) and on one device. */
export function checkTensors(op: string, ts: (Tensor | null | undefined)[], dtype: 'f32' | 'i32' | 'u8' = 'f32'): void {
  let device: string | null = null;
  for (const t of ts) {
    if (!t) continue;
    if (!(t instanceof Tensor)) fail(op, `expected a Tensor, got ${typeof t}`);
    if (t.disposed) fail(op, `tensor ${t.describe()} was disposed`);
    if (t.dtype !== dtype) fail(op, `expected dtype ${dtype}, got ${t.dtype}`, t);
    if (device === null) device = t.device;
    else if (t.device !== device) fail(op, `device mismatch: ${device} and ${t.device} (no implicit copies)`, ...ts);
  }
}

export function checkRank(op: string, t: Tensor, rank: number, what = 'input'): void {
  if (t.rank !== rank) fail(op, `${what} must have rank ${rank}, got ${shapeStr(t)}`, t);
}

export function sameShape(a: Tensor, b: Tensor): boolean {
  return a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]);
}

export function checkSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a, b)) fail(op, `shapes ${shapeStr(a)} and ${shapeStr(b)} differ`, a, b);
}
