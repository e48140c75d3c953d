// Full-state checkpoints of an incremental run, written at the end of every epoch and step:
// weights (with BN statistics and both heads), optimizer momentum, bit-packed step masks,
// per-step snapshots (BN, heads), full model snapshots, exemplars, results so far and the run
// position. Everything goes into a fresh folder that replaces the previous one by rename, so
// a crash or full disk leaves the last complete checkpoint in place. Shuffles and flips derive
// from (seed, step, phase, epoch), so no RNG stream needs storing beyond the seed.
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../engine';
import { createAuxModel } from '../nn';
import { writeFileAtomic } from '../io/atomic';
import { StEntry, encodeSafetensors, readSafetensors } from '../io/safetensors';
import { modelEntries, loadModelEntries, tensorToEntry, entryToTensor } from '../io/checkpoint';
import type { StepSnapshot } from '../prune/types';
import { ExemplarMemory } from './exemplars';
import type { OrderRun, RunPosition } from './trainer';
import type { StepResult } from './results';
import { checkFiniteModel } from './guard';
import { removeStaleTemps } from '../io/stale';

const FORMAT = 'm2kd-run-state';
const VERSION = 1;

interface StateJson {
  format: string;
  version: number;
  method: string;
  orderIndex: number;
  order: number[];
  classesSeen: number;
  position: RunPosition;
  results: StepResult[];
  groupHistory: number[][];
  stepSeconds: OrderRun['stepSeconds'];
  lastLoss: number;
  snapshots: { step: number; classesSeen: number; bnNames: string[]; eps: Record<string, number>; fcIn: number; auxIn: number }[];
  fullModels: { step: number; classes: number }[];
  masks: Record<string, { bits: number; count: number; shape: number[] }> | null;
  exemplars: unknown;
  config: unknown;
  files: string[];
}

function f32Entry(a: Float32Array, shape: number[]): StEntry {
  return { dtype: 'F32', shape, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) };
}
function entryF32(e: StEntry | undefined, name: string): Float32Array {
  if (!e || e.dtype !== 'F32') throw new Error(`checkpoint: tensor '${name}' is missing or not F32`);
  const copy = new Uint8Array(e.data);
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

function describePosition(run: OrderRun): string {
  const p = run.position;
  const at = p.epochsDone === 0 && p.phase === 'train' ? `after step ${p.stepsDone}` : `step ${p.stepsDone + 1} · ${p.phase === 'train' ? 'train' : 'fine-tune'} epoch ${p.epochsDone}`;
  return `${run.o.method.name} · order ${run.o.orderIndex + 1} · ${at}`;
}

/** Writes the run's state into dir (replacing an older checkpoint there atomically). */
export function saveRunState(dir: string, run: OrderRun, config: unknown): void {
  checkFiniteModel(run.model, describePosition(run), { method: run.o.method.name, order: run.o.orderIndex, lr: run.o.cfg.lr }); // never replace a good checkpoint by NaN weights
  fs.mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  removeStaleTemps(path.dirname(path.resolve(dir)), { depth: 0 }); // killed writers' folders (dead pids)
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    writeStateFolder(tmp, run, config);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true }); // a full disk: free what the failed write took
    throw e;
  }
  // swap: dir -> dir.old, tmp -> dir, drop dir.old
  const old = `${dir}.old`;
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  fs.rmSync(old, { recursive: true, force: true });
}

function writeStateFolder(tmp: string, run: OrderRun, config: unknown): void {
  try {
    fs.mkdirSync(tmp, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create ${tmp}: ${(e as Error).message}`);
  }
  const files: string[] = [];
  const put = (name: string, data: Uint8Array | string) => {
    writeFileAtomic(path.join(tmp, name), data);
    files.push(name);
  };
  put('model.safetensors', encodeSafetensors(modelEntries(run.model)));
  if (run.opt) {
    const m = new Map<string, StEntry>();
    for (const [i, b] of run.opt.momentumBuffers()) m.set(String(i), tensorToEntry(b));
    put('momentum.safetensors', encodeSafetensors(m));
  }
  let masksMeta: StateJson['masks'] = null;
  if (run.masks) {
    const m = new Map<string, StEntry>();
    masksMeta = {};
    for (const [name, p] of run.masks.pack(run.steps)) {
      m.set(name, { dtype: 'U8', shape: [p.data.length], data: p.data });
      masksMeta[name] = { bits: p.bits, count: p.count, shape: p.shape };
    }
    put('masks.safetensors', encodeSafetensors(m));
  }
  const snaps = new Map<string, StEntry>();
  const snapMeta: StateJson['snapshots'] = [];
  for (const s of run.snapshots) {
    const eps: Record<string, number> = {};
    for (const [bn, b] of Object.entries(s.bn)) {
      snaps.set(`${s.step}.bn.${bn}.weight`, f32Entry(b.weight, [b.weight.length]));
      snaps.set(`${s.step}.bn.${bn}.bias`, f32Entry(b.bias, [b.bias.length]));
      snaps.set(`${s.step}.bn.${bn}.running_mean`, f32Entry(b.runningMean, [b.runningMean.length]));
      snaps.set(`${s.step}.bn.${bn}.running_var`, f32Entry(b.runningVar, [b.runningVar.length]));
      eps[bn] = b.eps;
    }
    snaps.set(`${s.step}.fc.weight`, f32Entry(s.fc.weight, [s.fc.classes, s.fc.inFeatures]));
    snaps.set(`${s.step}.fc.bias`, f32Entry(s.fc.bias, [s.fc.classes]));
    snaps.set(`${s.step}.auxfc.weight`, f32Entry(s.aux.weight, [s.aux.classes, s.aux.inFeatures]));
    snaps.set(`${s.step}.auxfc.bias`, f32Entry(s.aux.bias, [s.aux.classes]));
    snapMeta.push({ step: s.step, classesSeen: s.classesSeen, bnNames: Object.keys(s.bn), eps, fcIn: s.fc.inFeatures, auxIn: s.aux.inFeatures });
  }
  if (snapMeta.length) put('snapshots.safetensors', encodeSafetensors(snaps));
  const fullMeta: StateJson['fullModels'] = [];
  for (const [k, fm] of run.fullModels) {
    put(`snapshot-${k}.safetensors`, encodeSafetensors(modelEntries(fm)));
    fullMeta.push({ step: k, classes: fm.fc.classes });
  }
  let exMeta: unknown = null;
  if (run.exemplars && run.exemplars.size > 0) {
    // as stored (u8 codes + palettes) when the memory holds codes, else float32 images
    const cs = run.exemplars.toCompactState();
    if (cs) {
      put('exemplars.safetensors', encodeSafetensors(new Map([['codes', { dtype: 'U8', shape: [cs.codes.length], data: cs.codes }], ['palette', f32Entry(cs.palette, [cs.palette.length])]])));
      exMeta = cs.meta;
    } else {
      const st = run.exemplars.toState();
      put('exemplars.safetensors', encodeSafetensors(new Map([['images', f32Entry(st.images, [st.images.length])]])));
      exMeta = st.meta;
    }
  }
  const state: StateJson = {
    format: FORMAT,
    version: VERSION,
    method: run.o.method.name,
    orderIndex: run.o.orderIndex,
    order: run.o.order.order,
    classesSeen: run.model.fc.classes,
    position: run.position,
    results: run.results,
    groupHistory: run.groupHistory,
    stepSeconds: run.stepSeconds,
    lastLoss: run.lastLoss,
    snapshots: snapMeta,
    fullModels: fullMeta,
    masks: masksMeta,
    exemplars: exMeta,
    config,
    files: [...files],
  };
  put('state.json', JSON.stringify(state, null, 1)); // written last: a folder without it is incomplete
}

/** The checkpoint folder to resume from: dir, or dir.old if a swap was interrupted. Null if none. */
export function findRunState(dir: string): string | null {
  removeStaleTemps(path.dirname(path.resolve(dir)), { depth: 0 });
  for (const d of [dir, `${dir}.old`]) if (fs.existsSync(path.join(d, 'state.json'))) return d;
  return null;
}

export function readRunStateJson(dir: string): StateJson {
  const file = path.join(dir, 'state.json');
  let st: StateJson;
  try {
    st = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot resume: ${file} is unreadable or truncated (${(e as Error).message})`);
  }
  if (typeof st !== 'object' || st === null || st.format !== FORMAT || st.version !== VERSION) throw new Error(`cannot resume: ${file} is not a ${FORMAT} v${VERSION} checkpoint`);
  const bad = stateProblem(st);
  if (bad) throw new Error(`cannot resume: ${file} is corrupt: ${bad}`);
  return st;
}

const isInt = (v: unknown, min = 0, max = 1e9): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The first structural problem of a state.json (types and ranges of what loading relies on), or null. */
function stateProblem(st: StateJson): string | null {
  if (typeof st.method !== 'string') return 'method is not a string';
  if (!isInt(st.orderIndex)) return 'orderIndex is not a count';
  if (!Array.isArray(st.order) || st.order.length > 100000 || !st.order.every((c) => isInt(c))) return 'order is not a list of class indices';
  if (!isInt(st.classesSeen, 1, 100000)) return `classesSeen ${JSON.stringify(st.classesSeen)} is out of range`;
  const p = st.position;
  if (!isObj(p) || !isInt(p.stepsDone, 0, 100000) || (p.phase !== 'train' && p.phase !== 'finetune') || !isInt(p.epochsDone, 0, 1e6)) return 'position is malformed';
  if (!Array.isArray(st.results) || !st.results.every(isObj)) return 'results is not a list of step results';
  if (!Array.isArray(st.groupHistory) || !st.groupHistory.every((g) => Array.isArray(g) && g.every(isNum))) return 'groupHistory is malformed';
  if (!isObj(st.stepSeconds) || !['train', 'finetune', 'teachers', 'eval'].every((k) => isNum(st.stepSeconds[k as keyof StateJson['stepSeconds']]))) return 'stepSeconds is malformed';
  if (typeof st.lastLoss !== 'number') return 'lastLoss is not a number';
  if (!Array.isArray(st.snapshots)) return 'snapshots is not a list';
  for (const m of st.snapshots)
    if (!isObj(m) || !isInt(m.step, 1, 100000) || !isInt(m.classesSeen, 1, 100000) || !Array.isArray(m.bnNames) || !m.bnNames.every((n) => typeof n === 'string') ||
      !isObj(m.eps) || !m.bnNames.every((n) => isNum(m.eps[n])) || !isInt(m.fcIn, 1, 1e6) || !isInt(m.auxIn, 1, 1e6))
      return 'a snapshot entry is malformed';
  if (!Array.isArray(st.fullModels) || !st.fullModels.every((f) => isObj(f) && isInt(f.step, 1, 100000) && isInt(f.classes, 1, 100000))) return 'fullModels is malformed';
  if (st.masks !== null) {
    if (!isObj(st.masks)) return 'masks is malformed';
    for (const m of Object.values(st.masks)) if (!isObj(m) || !isInt(m.bits, 1, 8) || !isInt(m.count, 0, 1e10) || !Array.isArray(m.shape) || !m.shape.every((d) => isInt(d))) return 'a mask entry is malformed';
  }
  return null;
}

/** Restores a run's state (the run must be freshly constructed with the same method, order and config). */
export function loadRunState(dir: string, run: OrderRun): void {
  try {
    // every tensor read goes where the run lives: a checkpoint holds host data, so a run resumes
    // on either device whichever device wrote it
    run.on(() => loadRunStateUnchecked(dir, run));
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    // every failure names the checkpoint, also those of deep checks that name only a tensor
    throw new Error(msg.includes(dir) ? msg : `cannot resume from checkpoint ${dir}: ${msg}`);
  }
}

function loadRunStateUnchecked(dir: string, run: OrderRun): void {
  const st = readRunStateJson(dir);
  const what = `checkpoint ${dir}`;
  if (st.method !== run.o.method.name) throw new Error(`cannot resume: ${what} is of method ${st.method}, not ${run.o.method.name}`);
  if (st.order.join(',') !== run.o.order.order.join(',')) throw new Error(`cannot resume: ${what} has a different class order`);
  const read = (name: string) => {
    try {
      return readSafetensors(path.join(dir, name)).entries;
    } catch (e) {
      throw new Error(`cannot resume: ${path.join(dir, name)}: ${(e as Error).message}`);
    }
  };
  const total = run.o.dataset.classes;
  if (st.classesSeen > total || st.fullModels.some((f) => f.classes > total) || st.snapshots.some((m) => m.classesSeen > total))
    throw new Error(`cannot resume: ${what} holds more classes than the dataset's ${total}`);
  if (st.position.stepsDone > run.steps) throw new Error(`cannot resume: ${what} has ${st.position.stepsDone} steps done of ${run.steps}`);
  const grow = st.classesSeen - run.model.fc.classes;
  if (grow > 0) run.model.growClasses(grow);
  loadModelEntries(run.model, read('model.safetensors'), what);
  if (st.masks && run.masks) {
    const ent = read('masks.safetensors');
    const packed = new Map<string, { bits: number; count: number; data: Uint8Array }>();
    for (const [name, meta] of Object.entries(st.masks)) {
      const e = ent.get(name);
      if (!e) throw new Error(`cannot resume: ${what}: mask '${name}' is missing`);
      packed.set(name, { bits: meta.bits, count: meta.count, data: new Uint8Array(e.data) });
    }
    run.masks.load(packed);
  }
  if (st.snapshots.length) {
    const ent = read('snapshots.safetensors');
    run.snapshots = st.snapshots.map((m): StepSnapshot => {
      const bn: StepSnapshot['bn'] = {};
      for (const name of m.bnNames)
        bn[name] = {
          weight: entryF32(ent.get(`${m.step}.bn.${name}.weight`), name),
          bias: entryF32(ent.get(`${m.step}.bn.${name}.bias`), name),
          runningMean: entryF32(ent.get(`${m.step}.bn.${name}.running_mean`), name),
          runningVar: entryF32(ent.get(`${m.step}.bn.${name}.running_var`), name),
          eps: m.eps[name],
        };
      return {
        step: m.step,
        classesSeen: m.classesSeen,
        bn,
        fc: { weight: entryF32(ent.get(`${m.step}.fc.weight`), 'fc.weight'), bias: entryF32(ent.get(`${m.step}.fc.bias`), 'fc.bias'), classes: m.classesSeen, inFeatures: m.fcIn },
        aux: { weight: entryF32(ent.get(`${m.step}.auxfc.weight`), 'auxfc.weight'), bias: entryF32(ent.get(`${m.step}.auxfc.bias`), 'auxfc.bias'), classes: m.classesSeen, inFeatures: m.auxIn },
      };
    });
  }
  for (const fm of st.fullModels) {
    const m = createAuxModel(run.model.arch, fm.classes, { inChannels: run.model.conv1.weight.shape[1] });
    loadModelEntries(m, read(`snapshot-${fm.step}.safetensors`), `${what} snapshot ${fm.step}`);
    run.fullModels.set(fm.step, m.eval());
  }
  if (st.exemplars && run.exemplars) {
    const ent = read('exemplars.safetensors');
    const codes = ent.get('codes');
    if (codes) {
      if (codes.dtype !== 'U8') throw new Error(`checkpoint: tensor 'codes' is ${codes.dtype}, not U8`);
      run.exemplars = ExemplarMemory.fromState({ meta: st.exemplars as never, codes: new Uint8Array(codes.data), palette: entryF32(ent.get('palette'), 'palette') });
    } else run.exemplars = ExemplarMemory.fromState({ meta: st.exemplars as never, images: entryF32(ent.get('images'), 'exemplars') });
  }
  if (fs.existsSync(path.join(dir, 'momentum.safetensors')) && st.position.epochsDone > 0) {
    const ent = read('momentum.safetensors');
    run.pendingMomentum = new Map<number, Tensor>();
    for (const [k, e] of ent) run.pendingMomentum.set(Number(k), entryToTensor(e, `momentum ${k}`));
  }
  run.results = st.results;
  run.groupHistory = st.groupHistory;
  run.stepSeconds = st.stepSeconds;
  run.lastLoss = st.lastLoss;
  run.position = st.position;
}
