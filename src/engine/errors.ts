// The argument checks every layer shares: `fail` throws an Error that names where it happened
// (an op, a function) and, when given, the shapes of the tensors involved; `checkInt` checks a
// count or size. No imports: the il metrics and exemplar math use them without loading the addon.

/** Anything that can describe itself in an error message (a Tensor: dtype, shape, device). */
export interface Describable {
  describe(): string;
}

export function fail(where: string, msg: string, ...ts: (Describable | null | undefined)[]): never {
  const shapes = ts.filter((t): t is Describable => !!t).map((t) => t.describe()).join(' ');
  throw new Error(`${where}: ${msg}${shapes ? ` (${shapes})` : ''}`);
}

/** v must be an integer >= min. */
export function checkInt(where: string, name: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${where}: ${name} must be an integer >= ${min}, got ${v}`);
}
