// Staging of a batch's host data onto a device: the host arrays of one batch (images, targets)
// are packed into one reusable host buffer, sent to the device in ONE host-to-device copy into a
// reusable device buffer, and split there into tensors by device-to-device copies. So a training
// step costs one h2d transfer however many inputs it has. On the cpu the arrays simply become
// tensors (no packing). Policy: the buffers grow to the largest batch seen and are kept until
// dispose(); returned tensors belong to the caller (and to the current tidy scope).
// Not pinned: the host side is a JS Float32Array (pageable); the copy waits for its completion.
import { Tensor, keep, Device } from './tensor';

export interface StagedPart {
  data: Float32Array;
  shape: readonly number[];
}

export class StagingBuffer {
  private host = new Float32Array(0);
  private dev: Tensor | null = null;

  constructor(readonly device: Device) {}

  /** The parts as tensors on the device (one h2d copy in all on a device). */
  upload(parts: readonly StagedPart[]): Tensor[] {
    if (this.device === 'cpu') return parts.map((p) => Tensor.fromArray(p.data, p.shape, { device: 'cpu' }));
    let total = 0;
    for (const p of parts) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (n !== p.data.length) throw new Error(`StagingBuffer.upload: ${p.data.length} values do not fill [${p.shape.join(',')}]`);
      total += n;
    }
    if (this.host.length < total) this.host = new Float32Array(total);
    if (!this.dev || this.dev.size < total) {
      this.dev?.dispose();
      this.dev = keep(Tensor.empty([total], { device: this.device }));
    }
    let off = 0;
    for (const p of parts) {
      this.host.set(p.data, off);
      off += p.data.length;
    }
    if (total > 0) this.dev.writeAt(this.host.subarray(0, total), 0);
    off = 0;
    return parts.map((p) => {
      const t = Tensor.empty(p.shape, { device: this.device });
      t.copyRangeFrom(this.dev!, 0, off, p.data.length);
      off += p.data.length;
      return t;
    });
  }

  dispose(): void {
    this.dev?.dispose();
    this.dev = null;
    this.host = new Float32Array(0);
  }
}
