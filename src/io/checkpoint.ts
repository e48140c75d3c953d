// Checkpoints of a model and its optimizer: `<dir>/model.safetensors` (PyTorch state-dict
// names: parameters, buffers, num_batches_tracked as I64), `<dir>/optimizer.safetensors`
// (momentum buffers named "<param>.momentum_buffer") and `<dir>/manifest.json` (format,
// names, shapes, hyper-parameters, user metadata). Every file is written atomically and the
// manifest last, so a checkpoint folder is either complete or still the previous one.
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../engine';
import { Module } from '../nn';
import { SGD } from '../optim';
import { writeFileAtomic } from './atomic';
import { StEntry, writeSafetensors, readSafetensors } from './safetensors';

export const CHECKPOINT_FORMAT = 'm2kd-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointManifest {
  format: string;
  version: number;
  created: string;
  model: { file: string; tensors: Record<string, number[]> };
  optimizer?: { file: string; lr: number; momentum: number; weightDecay: number; buffers: string[] };
  meta: Record<string, unknown>;
}

export function tensorToEntry(t: Tensor): StEntry {
  const a = t.toArray();
  const dtype = t.dtype === 'f32' ? 'F32' : t.dtype === 'i32' ? 'I32' : 'U8';
  return { dtype, shape: [...t.shape], data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) };
}

export function entryToTensor(e: StEntry, name: string): Tensor {
  const copy = new Uint8Array(e.data); // an aligned copy that owns its ArrayBuffer
  switch (e.dtype) {
    case 'F32':
      return Tensor.fromArray(new Float32Array(copy.buffer, 0, copy.length / 4), e.shape);
    case 'I32':
      return Tensor.fromArray(new Int32Array(copy.buffer, 0, copy.length / 4), e.shape);
    case 'U8':
      return Tensor.fromArray(copy, e.shape);
    default:
      throw new Error(`checkpoint: tensor '${name}' has dtype ${e.dtype}, which the engine does not hold`);
  }
}

function i64Entry(v: number): StEntry {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
  return { dtype: 'I64', shape: [], data: b };
}

function i64Value(e: StEntry): number {
  return Number(new DataView(e.data.buffer, e.data.byteOffset, 8).getBigInt64(0, true));
}

/** Model state as safetensors entries with PyTorch names. */
export function modelEntries(model: Module): Map<string, StEntry> {
  const m = new Map<string, StEntry>();
  for (const [n, t] of model.stateDict()) m.set(n, tensorToEntry(t));
  for (const [n, c] of model.namedCounters()) m.set(n, i64Entry(c.get()));
  return m;
}

/** Loads model state from entries (strict: names and shapes must match). */
export function loadModelEntries(model: Module, entries: Map<string, StEntry>, what: string): void {
  const state = new Map<string, Tensor>();
  try {
    for (const [n] of model.stateDict()) {
      const e = entries.get(n);
      if (!e) throw new Error(`${what}: missing tensor '${n}'`);
      state.set(n, entryToTensor(e, n));
    }
    const known = new Set([...model.stateDict().keys(), ...model.namedCounters().map(([n]) => n)]);
    const extra = [...entries.keys()].filter((k) => !known.has(k));
    if (extra.length) throw new Error(`${what}: unexpected tensors [${extra.join(', ')}]`);
    model.loadStateDict(state, true);
    for (const [n, c] of model.namedCounters()) {
      const e = entries.get(n);
      if (e) c.set(e.dtype === 'I64' ? i64Value(e) : Number(entryToTensor(e, n).item()));
    }
  } finally {
    for (const t of state.values()) t.dispose();
  }
}

export interface SaveOptions {
  optimizer?: SGD;
  meta?: Record<string, unknown>;
}

export function saveCheckpoint(dir: string, model: Module, opts: SaveOptions = {}): CheckpointManifest {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create checkpoint folder ${dir}: ${(e as Error).message}`);
  }
  const entries = modelEntries(model);
  writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: CHECKPOINT_FORMAT });
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    created: new Date().toISOString(),
    model: { file: 'model.safetensors', tensors: Object.fromEntries([...entries].map(([n, e]) => [n, e.shape])) },
    meta: opts.meta ?? {},
  };
  if (opts.optimizer) {
    const opt = opts.optimizer;
    const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
    const bufs = new Map<string, StEntry>();
    for (const [i, b] of opt.momentumBuffers()) {
      const n = names.get(opt.params[i]) ?? `param${i}`;
      bufs.set(`${n}.momentum_buffer`, tensorToEntry(b));
    }
    writeSafetensors(path.join(dir, 'optimizer.safetensors'), bufs, { format: CHECKPOINT_FORMAT });
    manifest.optimizer = { file: 'optimizer.safetensors', lr: opt.lr, momentum: opt.momentum, weightDecay: opt.weightDecay, buffers: [...bufs.keys()] };
  }
  writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

export function readManifest(dir: string): CheckpointManifest {
  const file = path.join(dir, 'manifest.json');
  let m: CheckpointManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: cannot read manifest.json: ${(e as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`checkpoint ${dir}: manifest.json is not a JSON object`);
  if (m.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint ${dir}: not an m2kd checkpoint (format ${String(m.format)})`);
  if (!Number.isInteger(m.version) || m.version < 1) throw new Error(`checkpoint ${dir}: manifest.json has a bad version ${JSON.stringify(m.version)}`);
  if (m.version > CHECKPOINT_VERSION) throw new Error(`checkpoint ${dir}: version ${m.version} is newer than this m2kd (${CHECKPOINT_VERSION})`);
  const plainFile = (f: unknown) => typeof f === 'string' && f.length > 0 && f.length < 256 && path.basename(f) === f && f !== '..' && f !== '.';
  if (typeof m.model !== 'object' || m.model === null || !plainFile(m.model.file))
    throw new Error(`checkpoint ${dir}: manifest.json names no model file (model.file must be a file name inside the folder)`);
  if (m.optimizer !== undefined) {
    const o = m.optimizer;
    if (typeof o !== 'object' || o === null || !plainFile(o.file) || ![o.lr, o.momentum, o.weightDecay].every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new Error(`checkpoint ${dir}: manifest.json has a malformed optimizer entry (file, lr, momentum, weightDecay)`);
  }
  return m;
}

/** Loads a checkpoint into a model of the same architecture (and optionally its optimizer). */
export function loadCheckpoint(dir: string, model: Module, optimizer?: SGD): CheckpointManifest {
  try {
    return loadCheckpointUnchecked(dir, model, optimizer);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    // every failure names the checkpoint (deep errors, e.g. a shape mismatch, name only a tensor)
    throw new Error(msg.includes(dir) ? msg : `checkpoint ${dir}: ${msg}`);
  }
}

function loadCheckpointUnchecked(dir: string, model: Module, optimizer?: SGD): CheckpointManifest {
  const manifest = readManifest(dir);
  const mf = path.join(dir, manifest.model.file);
  loadModelEntries(model, readSafetensors(mf).entries, mf);
  if (optimizer && manifest.optimizer) {
    const of = path.join(dir, manifest.optimizer.file);
    const { entries } = readSafetensors(of);
    const index = new Map(optimizer.params.map((p, i) => [p, i]));
    for (const [n, t] of model.namedParameters()) {
      const e = entries.get(`${n}.momentum_buffer`);
      const i = index.get(t);
      if (!e || i === undefined) continue;
      const b = entryToTensor(e, n);
      optimizer.setMomentumBuffer(i, b);
      b.dispose();
    }
    optimizer.lr = manifest.optimizer.lr;
    optimizer.momentum = manifest.optimizer.momentum;
    optimizer.weightDecay = manifest.optimizer.weightDecay;
  }
  return manifest;
}
