// The per-channel palette of the exemplar memory's lossless u8 storage (exemplarMemory.ts).

/**
 * Up to 256 distinct float32 values of one channel, matched by bit pattern (so -0, 0 and NaN
 * payloads stay exact): an open-addressing table of 1024 slots (load <= 1/4) over the bits.
 */
export class Palette {
  readonly values = new Float32Array(256);
  private readonly bits = new Uint32Array(this.values.buffer);
  private readonly keys = new Uint32Array(1024);
  private readonly slots = new Int16Array(1024).fill(-1);
  size = 0;

  private static hash(b: number): number {
    return Math.imul(b, 0x9e3779b1) >>> 22;
  }

  /** The code of a bit pattern, adding it if new; -1 when the palette is full. */
  code(b: number): number {
    let h = Palette.hash(b);
    for (;;) {
      const s = this.slots[h];
      if (s < 0) break;
      if (this.keys[h] === b) return s;
      h = (h + 1) & 1023;
    }
    if (this.size === 256) return -1;
    this.keys[h] = b;
    this.slots[h] = this.size;
    this.bits[this.size] = b;
    return this.size++;
  }

  /** Drops the entries from `size` on (undo of a failed encode). */
  truncate(size: number): void {
    if (size === this.size) return;
    this.slots.fill(-1);
    const n = size;
    this.size = 0;
    for (let i = 0; i < n; i++) this.code(this.bits[i]);
  }
}
