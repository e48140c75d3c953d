// The class-incremental protocol: class orders (seeded permutations, or the named CIFAR-100
// orders), groups of n classes per step, and the mapping from dataset labels to head columns
// (column j = the j-th class in the order, so a step's new classes are the last columns).
import { Rng } from '../engine';

/**
 * Named CIFAR-100 class orders.
 * A: iCaRL's order (the shuffle of its official code with seed 1993), used by most later work.
 * B: the second fixed order found in this literature's code bases (PODNet's "trial 0").
 */
export const NAMED_ORDERS: Record<string, number[]> = {
  A: [
    68, 56, 78, 8, 23, 84, 90, 65, 74, 76, 40, 89, 3, 92, 55, 9, 26, 80, 43, 38, 58, 70, 77, 1, 85, 19, 17, 50, 28, 53, 13, 81, 45, 82, 6, 59, 83, 16, 15, 44,
    91, 41, 72, 60, 79, 52, 20, 10, 31, 54, 37, 95, 14, 71, 96, 98, 97, 2, 64, 66, 42, 22, 35, 86, 24, 34, 87, 21, 99, 0, 88, 27, 18, 94, 11, 12, 47, 25, 30, 46,
    62, 69, 36, 61, 7, 63, 75, 5, 32, 4, 51, 48, 73, 93, 39, 67, 29, 49, 57, 33,
  ],
  B: [
    62, 54, 84, 20, 94, 22, 40, 29, 78, 27, 26, 79, 17, 76, 68, 88, 3, 19, 31, 21, 33, 60, 24, 14, 6, 10, 16, 82, 70, 92, 25, 5, 28, 9, 61, 36, 50, 90, 8, 48,
    47, 56, 11, 98, 35, 93, 44, 64, 75, 66, 15, 38, 97, 42, 43, 12, 37, 55, 72, 95, 18, 7, 23, 71, 49, 53, 57, 86, 39, 87, 34, 63, 81, 89, 69, 46, 2, 1, 73, 32,
    67, 91, 0, 51, 83, 13, 58, 80, 74, 65, 4, 30, 45, 77, 99, 85, 41, 96, 59, 52,
  ],
};

export interface ClassOrder {
  order: number[];
  /** the seed of a random order, else null */
  seed: number | null;
  /** 'A' / 'B' for named orders, 'explicit' for a given list, null for random ones */
  name: string | null;
}

/** A seeded random permutation of the dataset's classes. */
export function randomOrder(classes: number, seed: number): ClassOrder {
  const perm = new Rng(seed, 0x0de5).permutation(classes);
  return { order: Array.from(perm), seed, name: null };
}

/** Checks that an order is a permutation of 0..classes-1. */
export function validateOrder(order: number[], classes: number, what = 'class order'): void {
  if (order.length !== classes) throw new Error(`${what} has ${order.length} classes, the dataset has ${classes}`);
  const seen = new Uint8Array(classes);
  for (const c of order) {
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new Error(`${what}: class ${c} is not in 0..${classes - 1}`);
    if (seen[c]) throw new Error(`${what}: class ${c} appears twice`);
    seen[c] = 1;
  }
}

/**
 * Parses an --order value: 'A' or 'B' (CIFAR-100 only), or a comma list of all class ids.
 */
export function parseOrder(spec: string, classes: number): ClassOrder {
  const s = spec.trim();
  if (NAMED_ORDERS[s.toUpperCase()]) {
    const o = NAMED_ORDERS[s.toUpperCase()];
    if (o.length !== classes) throw new Error(`order ${s.toUpperCase()} is a CIFAR-100 order (100 classes); this dataset has ${classes} classes`);
    return { order: [...o], seed: null, name: s.toUpperCase() };
  }
  const parts = s.split(',').map((p) => p.trim());
  const order = parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`--order: '${p}' is not a class id (use A, B or a comma list of ${classes} class ids)`);
    return Number(p);
  });
  validateOrder(order, classes, '--order');
  return { order, seed: null, name: 'explicit' };
}

/** The groups G_1..G_T of an order, n classes each. */
export function groupsOf(order: number[], n: number): number[][] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`classes per step must be a positive integer, got ${n}`);
  if (order.length % n !== 0) throw new Error(`the ${order.length} classes cannot be split into groups of ${n}: ${order.length} is not divisible by ${n}`);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += n) out.push(order.slice(i, i + n));
  return out;
}

/** Maps dataset labels to head columns: column[label] = position of the class in the order. */
export function columnOf(order: number[], classes: number): Int32Array {
  const col = new Int32Array(classes).fill(-1);
  order.forEach((c, j) => (col[c] = j));
  return col;
}
