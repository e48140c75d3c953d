// Seeded mutations for the fuzz harness: a small PRNG of our own (mulberry32, so a case is
// reproducible from (seed, case) alone), byte-level mutations (truncation, bit flips, special
// bytes, inserted/deleted/duplicated ranges, appended garbage) and JSON-aware mutations (a value
// anywhere in the tree replaced by a hostile one, a key removed, a type swapped).

export class FuzzRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A per-case seed from the run seed and the case number. */
export function caseSeed(seed: number, n: number): number {
  let h = (seed ^ 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ n, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

const SPECIAL = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe, 0x20, 0x22, 0x5c, 0x7b, 0x7d];

/** One or a few byte-level mutations of buf (a new buffer). */
export function mutateBytes(rng: FuzzRng, buf: Uint8Array): Buffer {
  let b = Buffer.from(buf);
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? rng.int(b.length) : 0;
    switch (rng.int(8)) {
      case 0: // truncate
        b = b.subarray(0, rng.chance(0.3) ? rng.int(Math.min(b.length + 1, 16)) : at);
        break;
      case 1: // bit flips
        for (let k = 1 + rng.int(8); k > 0 && b.length; k--) b[rng.int(b.length)] ^= 1 << rng.int(8);
        break;
      case 2: // special bytes
        for (let k = 1 + rng.int(4); k > 0 && b.length; k--) b[rng.int(b.length)] = rng.pick(SPECIAL);
        break;
      case 3: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.int(256))), b.subarray(at)]);
        break;
      case 4: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(64)))]);
        break;
      case 5: // duplicate a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + rng.int(64)), b.subarray(at)]);
        break;
      case 6: // append garbage
        b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + rng.int(32) }, () => rng.int(256)))]);
        break;
      default: // overwrite a 4-byte word with a hostile integer (sizes, counts)
        if (b.length >= 4) {
          const v = rng.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 65536, 0x10000000]);
          const p = rng.int(b.length - 3);
          if (rng.chance(0.5)) b.writeUInt32BE(v >>> 0, p);
          else b.writeUInt32LE(v >>> 0, p);
        }
    }
  }
  return b;
}

const HOSTILE: readonly unknown[] = [
  null, true, false, 0, -1, 1.5, -0.5, 1e308, -1e308, 2 ** 53, 2 ** 31, 4294967295, 1e9, 'x', '', '../../../../etc/passwd',
  'NaN', 'Infinity', '\u0000', '\ud800', [], [1, 2, 3], [-1, 1e12], {}, { a: 1 }, [[[]]], 'F16', 'toString', '__proto__', 'constructor',
];

function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = [], depth = 0): (string | number)[][] {
  out.push(prefix);
  if (depth > 8 || out.length > 4000) return out;
  if (Array.isArray(v)) {
    const n = v.length;
    // long arrays: sample a few indices
    const idx = n <= 8 ? [...Array(n).keys()] : [0, 1, n >> 1, n - 1];
    for (const i of idx) paths(v[i], [...prefix, i], out, depth + 1);
  } else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...prefix, k], out, depth + 1);
  return out;
}

/** One hostile value, deep-copied: the same object must never be inserted twice (a cycle). */
function hostile(rng: FuzzRng): unknown {
  const v = rng.pick(HOSTILE);
  return v !== null && typeof v === 'object' ? JSON.parse(JSON.stringify(v)) : v;
}

/** A JSON value with one to three structure-aware mutations. */
export function mutateJson(rng: FuzzRng, value: unknown): unknown {
  let root = JSON.parse(JSON.stringify(value)) as unknown;
  for (let r = 1 + rng.int(3); r > 0; r--) {
    const all = paths(root);
    const p = rng.pick(all);
    if (p.length === 0) {
      root = rng.chance(0.5) ? hostile(rng) : root;
      continue;
    }
    let parent = root as Record<string | number, unknown>;
    for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
    const key = p[p.length - 1];
    const cur = parent[key];
    switch (rng.int(5)) {
      case 0:
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      case 1: // numbers nudged to hostile neighbours
        parent[key] = typeof cur === 'number' ? rng.pick([cur + 1, cur - 1, -cur, cur * 1e6, cur + 0.5, 0, -1]) : hostile(rng);
        break;
      case 2: // arrays grown, shrunk or swapped for their elements
        parent[key] = Array.isArray(cur) ? rng.pick([cur.slice(1), [...cur, ...cur], cur[0], []]) : hostile(rng);
        break;
      default:
        parent[key] = hostile(rng);
    }
  }
  return root;
}

/** The text of a mutated JSON document: structure-aware most of the time, raw bytes otherwise. */
export function mutateJsonText(rng: FuzzRng, text: string): Buffer {
  if (rng.chance(0.25)) return mutateBytes(rng, Buffer.from(text, 'utf8'));
  return Buffer.from(JSON.stringify(mutateJson(rng, JSON.parse(text)), null, rng.chance(0.5) ? 1 : 0), 'utf8');
}
