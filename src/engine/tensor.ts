// Tensor: shape, dtype, device and a reference-counted native storage. Owns the memory
// policy of the engine: tensors are released deterministically by dispose() or by the
// scope (tidy) they were created in; a FinalizationRegistry only backs up forgotten ones.
// Gradients of leaf tensors (parameters) live on `grad` and survive scopes.
// Devices: 'cpu' always; 'cuda' when the CUDA build is loaded and a device is present. Data
// moves between devices only through explicit copies (to()); ops refuse mixed devices.
import { native, Handle } from '../native';

export type DType = 'f32' | 'i32' | 'u8';
export type Device = 'cpu' | 'cuda';
export type TypedArrayFor<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint8Array;

/** A node of the autograd tape: the op that produced a tensor. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Accumulates into the inputs' gradients, given the output gradient. */
  backward(gradOut: Tensor): void;
}

/** Native buffer shared by a tensor and its reshaped views. */
class Storage {
  refs = 1;
  constructor(readonly handle: Handle, readonly count: number, readonly dtype: DType) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) native.free(this.handle);
  }
}

const finalizer = new FinalizationRegistry<Storage>((s) => {
  try {
    s.release();
  } catch {
    /* already released */
  }
});

// ------------------------------------------------------------------ scopes
const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Removes t from every open scope so that it outlives them. Returns t. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value as Record<string, unknown>)) collectTensors(v, out, depth + 1);
}

/**
 * Runs fn in a memory scope: every tensor created inside and not returned (directly, in an
 * array or in a plain object) nor kept is disposed when fn returns or throws. Synchronous only.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy: fn must be synchronous (it returned a Promise)');
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

// ------------------------------------------------------------------ tensor
export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
  name?: string;
}

function checkShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(',')}]: dimensions must be integers >= 0`);
    n *= d;
  }
  return n;
}

let cudaState: { available: boolean; reason: string } | null = null;

/** Whether tensors can be allocated on 'cuda', and if not, why. Probed once. */
export function cudaStatus(): { available: boolean; reason: string } {
  if (!cudaState) {
    const info = typeof native.cuda_info === 'function' ? native.cuda_info() : null;
    cudaState = info
      ? { available: info.available, reason: info.available ? '' : info.reason }
      : { available: false, reason: 'this addon has no CUDA support' };
  }
  return cudaState;
}

export function checkDevice(device: Device): void {
  if (device === 'cpu') return;
  if (device === 'cuda') {
    const st = cudaStatus();
    if (st.available) return;
    throw new Error(`device cuda is not available: ${st.reason} (see \`m2kd doctor\`)`);
  }
  throw new Error(`unknown device '${String(device)}' (expected cpu or cuda)`);
}

let defaultDevice: Device = 'cpu';

/** The device factories use when no device is given (cpu unless inside withDevice). */
export function getDefaultDevice(): Device {
  return defaultDevice;
}

/**
 * Runs fn with `device` as the default of the tensor factories (zeros, empty, full, fromArray):
 * a model built inside lives on that device. Synchronous only; restores the previous default.
 */
export function withDevice<T>(device: Device, fn: () => T): T {
  checkDevice(device);
  const prev = defaultDevice;
  defaultDevice = device;
  try {
    return fn();
  } finally {
    defaultDevice = prev;
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  requiresGrad: boolean;
  /** Accumulated gradient (leaf tensors keep it across backward calls until zeroGrad). */
  grad: Tensor | null = null;
  /** @internal the op that produced this tensor, while its graph is alive */
  node: GradNode | null = null;
  name?: string;
  private storage: Storage | null;

  /** @internal use the factory functions (zeros, empty, fromArray) */
  constructor(shape: readonly number[], dtype: DType, device: Device, storage: Storage, requiresGrad = false) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
    this.size = storage.count;
    this.storage = storage;
    this.requiresGrad = requiresGrad;
    finalizer.register(this, storage, this);
    track(this);
  }

  /** Allocates an uninitialised tensor (contents undefined). */
  static empty(shape: readonly number[], opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? 'f32';
    const device = opts.device ?? defaultDevice;
    checkDevice(device);
    const n = checkShape(shape);
    const st = new Storage(device === 'cpu' ? native.alloc(dtype, n, false) : native.alloc(dtype, n, false, device), n, dtype);
    const t = new Tensor(shape, dtype, device, st, opts.requiresGrad ?? false);
    if (opts.name) t.name = opts.name;
    return t;
  }

  static zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? 'f32';
    const device = opts.device ?? defaultDevice;
    checkDevice(device);
    const n = checkShape(shape);
    // large f32 host buffers are zeroed by the threaded fill kernel rather than a serial memset
    const big = device === 'cpu' && dtype === 'f32' && n >= 1 << 16;
    const st = new Storage(device === 'cpu' ? native.alloc(dtype, n, !big) : native.alloc(dtype, n, true, device), n, dtype);
    if (big) native.fill(st.handle, n, 0);
    const t = new Tensor(shape, dtype, device, st, opts.requiresGrad ?? false);
    if (opts.name) t.name = opts.name;
    return t;
  }

  static full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
    const t = Tensor.empty(shape, opts);
    if (t.dtype !== 'f32') throw new Error('Tensor.full supports f32 only');
    native.fill(t.handle, t.size, value);
    return t;
  }

  /** Copies data into a new tensor of the given shape (dtype inferred from the array type). */
  static fromArray(data: Float32Array | Int32Array | Uint8Array | number[], shape?: readonly number[], opts: TensorOptions = {}): Tensor {
    let arr: Float32Array | Int32Array | Uint8Array;
    let dtype: DType;
    if (Array.isArray(data)) {
      dtype = opts.dtype ?? 'f32';
      arr = dtype === 'f32' ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : Uint8Array.from(data);
    } else {
      arr = data;
      dtype = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u8';
      if (opts.dtype && opts.dtype !== dtype) throw new Error(`fromArray: data is ${dtype} but dtype ${opts.dtype} was asked for`);
    }
    const sh = shape ?? [arr.length];
    const n = checkShape(sh);
    if (n !== arr.length) throw new Error(`fromArray: ${arr.length} values do not fill shape [${sh.join(',')}] (${n} elements)`);
    const t = Tensor.empty(sh, { ...opts, dtype });
    if (n > 0) native.write(t.handle, arr, 0);
    return t;
  }

  static scalar(value: number, opts: TensorOptions = {}): Tensor {
    return Tensor.fromArray(new Float32Array([value]), [], opts);
  }

  /** Native handle; throws if the tensor was disposed. */
  get handle(): Handle {
    if (!this.storage) throw new Error(`tensor ${this.describe()} used after dispose`);
    return this.storage.handle;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  describe(): string {
    return `${this.name ? this.name + ':' : ''}${this.dtype}[${this.shape.join(',')}]`;
  }

  /** Releases the native memory now. Idempotent. Does not touch `grad`. */
  dispose(): void {
    if (!this.storage) return;
    finalizer.unregister(this);
    this.storage.release();
    this.storage = null;
    this.node = null;
  }

  /** Copies the contents out to a typed array. */
  toArray(): Float32Array | Int32Array | Uint8Array {
    return native.read(this.handle, 0, this.size);
  }

  toFloat32(): Float32Array {
    if (this.dtype !== 'f32') throw new Error(`toFloat32: tensor ${this.describe()} is not f32`);
    return native.read(this.handle, 0, this.size) as Float32Array;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor ${this.describe()} has ${this.size} elements, not 1`);
    return native.read(this.handle, 0, 1)[0];
  }

  /** Overwrites the contents (same number of elements, same dtype). */
  set(data: Float32Array | Int32Array | Uint8Array): this {
    if (data.length !== this.size) throw new Error(`set: ${data.length} values for tensor ${this.describe()}`);
    native.write(this.handle, data, 0);
    return this;
  }

  /** Copies another tensor's contents into this one (no autograd). */
  copyFrom(src: Tensor): this {
    if (src.size !== this.size || src.dtype !== this.dtype)
      throw new Error(`copyFrom: ${src.describe()} does not match ${this.describe()}`);
    if (src.device !== this.device) throw new Error(`copyFrom: device mismatch ${src.device} -> ${this.device}`);
    native.copy(this.handle, 0, src.handle, 0, this.size);
    return this;
  }

  /**
   * Copies `count` elements of src, from element srcOffset, into this tensor at dstOffset (same
   * dtype and device; no autograd). On a device this is a device-to-device copy.
   */
  copyRangeFrom(src: Tensor, dstOffset: number, srcOffset: number, count: number): this {
    if (src.dtype !== this.dtype) throw new Error(`copyRangeFrom: ${src.describe()} does not match ${this.describe()}`);
    if (src.device !== this.device) throw new Error(`copyRangeFrom: device mismatch ${src.device} -> ${this.device}`);
    for (const [v, what] of [[dstOffset, 'dstOffset'], [srcOffset, 'srcOffset'], [count, 'count']] as const)
      if (!Number.isInteger(v) || v < 0) throw new Error(`copyRangeFrom: ${what} must be an integer >= 0, got ${v}`);
    if (dstOffset + count > this.size || srcOffset + count > src.size)
      throw new Error(`copyRangeFrom: ${count} elements from ${srcOffset} of ${src.describe()} to ${dstOffset} of ${this.describe()} overflow`);
    if (count > 0) native.copy(this.handle, dstOffset, src.handle, srcOffset, count);
    return this;
  }

  /** Writes host data at an element offset (a host-to-device copy when the tensor is on a device). */
  writeAt(data: Float32Array | Int32Array | Uint8Array, offset: number): this {
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > this.size)
      throw new Error(`writeAt: ${data.length} values at ${offset} overflow tensor ${this.describe()}`);
    if (data.length > 0) native.write(this.handle, data, offset);
    return this;
  }

  /**
   * A copy on `device` (the one explicit way data crosses devices; no autograd). Returns a new
   * tensor even when the device is the same (then it is a clone), so the caller always owns it.
   */
  to(device: Device): Tensor {
    checkDevice(device);
    if (device === this.device) return this.clone();
    const h = native.to_device(this.handle, device);
    const t = new Tensor(this.shape, this.dtype, device, new Storage(h, this.size, this.dtype));
    if (this.name) t.name = this.name;
    return t;
  }

  /** A new tensor with a copy of the data (no autograd). */
  clone(): Tensor {
    const t = Tensor.empty(this.shape, { dtype: this.dtype, device: this.device });
    return t.copyFrom(this);
  }

  /** @internal a tensor of another shape over the same storage (no autograd: see ops.reshape) */
  viewAs(shape: readonly number[]): Tensor {
    const n = checkShape(shape);
    if (n !== this.size) throw new Error(`reshape: cannot view ${this.describe()} as [${shape.join(',')}]`);
    const st = this.storage;
    if (!st) throw new Error(`tensor ${this.describe()} used after dispose`);
    st.retain();
    return new Tensor(shape, this.dtype, this.device, st);
  }

  /** Fills with zeros in place. */
  zero_(): this {
    if (this.dtype === 'f32') native.fill(this.handle, this.size, 0);
    else native.write(this.handle, this.dtype === 'i32' ? new Int32Array(this.size) : new Uint8Array(this.size), 0);
    return this;
  }

  /** Runs backpropagation from this (scalar) tensor. See autograd.backward. */
  backward(): void {
    // late import to keep the module graph acyclic at load time
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    (require('./autograd') as typeof import('./autograd')).backward(this);
  }

  toString(): string {
    return `Tensor(${this.describe()}, ${this.device})`;
  }
}

/** Live native bytes and pool statistics. */
export function memory(): import('../native').MemoryStats {
  return native.memory_stats();
}

/**
 * Host <-> device transfers since load (or the last reset): h2d and d2h copies (and the values a
 * kernel reads back); all zeros in a CPU-only build. What the copy-count tests read.
 */
export function copyStats(reset = false): import('../native').HostCopyStats {
  return native.copy_stats(reset);
}

/** Frees the pooled (unused) native buffers back to the OS. */
export function emptyCache(): void {
  native.empty_cache();
}
