// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): the output is a pure
// function of (seed, stream, counter), so every random draw in a run (init, shuffles, flips)
// is reproducible from its seed, and a checkpoint only needs the counter to resume.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

function mulhi(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const t = a0 * b0;
  const m1 = a1 * b0 + (t >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16)) >>> 0;
}

/** One Philox4x32-10 block: 4 random 32-bit words for counter (c0..c3) and key (k0,k1). */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0, n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

export interface RngState {
  seed: number;
  stream: number;
  counter: number;
  /** words already used of the current block (0..4) */
  offset: number;
}

export class Rng {
  private readonly k0: number;
  private readonly k1: number;
  private counter = 0; // blocks drawn so far (< 2^53)
  private buf = new Uint32Array(4);
  private bufPos = 4;

  /** seed: any integer in [0, 2^53); stream: an independent sequence for the same seed. */
  constructor(readonly seed: number, readonly stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`Rng: seed must be a non-negative safe integer, got ${seed}`);
    if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) throw new Error(`Rng: stream must be a uint32, got ${stream}`);
    this.k0 = seed >>> 0;
    this.k1 = Math.floor(seed / 4294967296) >>> 0;
  }

  /** An independent generator for the same seed (e.g. one per purpose). */
  fork(stream: number): Rng {
    return new Rng(this.seed, stream);
  }

  state(): RngState {
    return { seed: this.seed, stream: this.stream, counter: this.counter, offset: this.bufPos };
  }

  static fromState(s: RngState): Rng {
    const r = new Rng(s.seed, s.stream);
    if (s.offset < 4 && s.counter > 0) {
      r.counter = s.counter - 1;
      r.bufPos = 4;
      r.nextU32();
      r.bufPos = s.offset;
    }
    r.counter = s.counter;
    return r;
  }

  /** Next random uint32. */
  nextU32(): number {
    if (this.bufPos === 4) {
      const c = this.counter++;
      philox4x32(c >>> 0, Math.floor(c / 4294967296) >>> 0, this.stream >>> 0, 0x6d326b64, this.k0, this.k1, this.buf);
      this.bufPos = 0;
    }
    return this.buf[this.bufPos++];
  }

  /** Uniform float in [0, 1) with 24 random bits. */
  nextFloat(): number {
    return (this.nextU32() >>> 8) * (1 / 16777216);
  }

  uniform(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.nextFloat();
    return out;
  }

  /** Gaussian samples (Box-Muller). */
  normal(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = ((this.nextU32() >>> 8) + 1) * (1 / 16777217); // (0, 1]
      const u2 = this.nextFloat();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  /** Uniform integer in [0, max), unbiased. */
  int(max: number): number {
    if (!Number.isInteger(max) || max <= 0 || max > 0x100000000) throw new Error(`Rng.int: bad bound ${max}`);
    const limit = Math.floor(4294967296 / max) * max;
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % max;
    }
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** n independent coin flips with probability p of 1. */
  bernoulli(n: number, p = 0.5): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextFloat() < p ? 1 : 0;
    return out;
  }
}
