// Sweep grids as cells. A grid (methods × ratios × memories × class orders) is planned once into
// sweep.json: every cell gets a stable id, its resolved config, and the `m2kd train` arguments
// that run it on its own (`m2kd train <args> --out cells/<id>`). Each cell is an ordinary run
// folder with one method and one class order, so every command that works on a run works on a
// cell. This file owns the sweep.json format; it runs nothing.
import * as fs from 'fs';
import * as path from 'path';
import type { IlConfig } from '../il/config';
import type { MethodSpec } from '../il/methods';
import type { ClassOrder } from '../il/protocol';
import { writeFileAtomic } from '../io/atomic';

export const SWEEP_FILE = 'sweep.json';
export const SWEEP_FORMAT = 'm2kd-sweep';
export const SWEEP_VERSION = 1;

export interface SweepCell {
  /** stable id: the cell's folder name under cells/ */
  id: string;
  /** the method as `m2kd train --method` takes it */
  method: string;
  /** the grid row this cell belongs to: the method, with its swept ratio / memory (e.g. `m2kd[ratio=0.5]`) */
  name: string;
  label: string;
  ratio: number | null;
  memory: number | null;
  /** 0-based index of the class order in the grid */
  order_index: number;
  order: number[];
  order_seed: number | null;
  order_name: string | null;
  /** `m2kd train` arguments of the cell (without --out, --resume and --threads) */
  args: string[];
  /** the resolved configuration the cell trains with */
  config: IlConfig;
}

export interface SweepExecutorRecord {
  kind: 'local' | 'slurm';
  /** local: cells at once */
  jobs?: number;
  /** local: threads in all (divided among the jobs) */
  threads?: number;
  /** slurm: the options given (partition, time, ...) */
  slurm?: Record<string, unknown>;
}

export interface SweepManifest {
  format: typeof SWEEP_FORMAT;
  version: typeof SWEEP_VERSION;
  created: string;
  /** the command line that planned the sweep */
  command: string;
  dataset: string;
  classes: number;
  /** the grid's axes, for the record */
  grid: { methods: string[]; ratios: number[] | null; memories: number[] | null; orders: number };
  cells: SweepCell[];
  /** how the cells were last run (reused by --resume) */
  executor: SweepExecutorRecord;
}

/** The train options a cell forwards to `m2kd train` (the grid-independent ones). */
export interface CellTrainFlags {
  dataset?: string;
  data?: string;
  classesPerStep?: number;
  epochs?: number;
  finetuneEpochs?: number;
  batchSize?: number;
  lr?: number;
  finetuneLr?: 'restart' | 'continue';
  seed?: number;
  trainPerClass?: number;
  testPerClass?: number;
  preset?: string;
  teacherCache?: boolean;
  bnRecalibrate?: boolean;
  flip?: boolean;
  crop?: number;
  plots?: boolean;
  checkpointEvery?: 'epoch' | 'step';
  device?: string;
  arch?: string;
  size?: number;
}

/** The `m2kd train` flags of the options every cell shares. */
export function commonTrainArgs(o: CellTrainFlags): string[] {
  const a: string[] = [];
  const put = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) a.push(`--${flag}`, String(v));
  };
  put('preset', o.preset);
  put('dataset', o.dataset);
  if (o.data !== undefined) put('data', path.resolve(o.data));
  put('classes-per-step', o.classesPerStep);
  put('epochs', o.epochs);
  put('finetune-epochs', o.finetuneEpochs);
  put('batch', o.batchSize);
  put('lr', o.lr);
  put('finetune-lr', o.finetuneLr);
  put('seed', o.seed);
  put('train-per-class', o.trainPerClass);
  put('test-per-class', o.testPerClass);
  put('crop', o.crop);
  put('checkpoint-every', o.checkpointEvery);
  put('arch', o.arch);
  put('size', o.size);
  if (o.device !== undefined && o.device !== 'cpu') put('device', o.device);
  if (o.bnRecalibrate !== undefined) put('bn-recalibrate', o.bnRecalibrate ? 'on' : 'off');
  if (o.teacherCache === false) a.push('--no-cache');
  if (o.flip === false) a.push('--no-flip');
  if (o.plots === false) a.push('--no-plots');
  return a;
}

/** A cell id: the grid row's method, ratio and memory and the order, as a folder name. */
export function cellId(method: string, ratio: number | null, memory: number | null, orderIndex: number): string {
  const parts = [method];
  if (ratio !== null) parts.push(`r${ratio}`);
  if (memory !== null) parts.push(`m${memory}`);
  parts.push(`o${orderIndex + 1}`);
  return parts.join('-').replace(/[^A-Za-z0-9._-]/g, '_');
}

export interface PlanInput {
  flags: CellTrainFlags;
  methods: MethodSpec[];
  /** the configuration every method starts from (presets and defaults resolved) */
  base: IlConfig;
  orders: ClassOrder[];
  /** pruning ratios to sweep (pruning methods only) */
  ratios?: number[];
  /** exemplar budgets to sweep (exemplar methods only) */
  memories?: number[];
  dataset: string;
  classes: number;
  command?: string;
}

/** Expands a grid into cells: rows (method × ratio × memory) in the given order, then orders. */
export function planCells(p: PlanInput): SweepCell[] {
  const common = commonTrainArgs(p.flags);
  const cells: SweepCell[] = [];
  const ids = new Set<string>();
  for (const m of p.methods) {
    const ratios: (number | null)[] = m.prune && p.ratios?.length ? p.ratios : [null];
    const mems: (number | null)[] = m.exemplars && p.memories?.length ? p.memories : [null];
    for (const r of ratios)
      for (const mem of mems) {
        const tags = [r !== null ? `ratio=${r}` : '', mem !== null ? `memory=${mem}` : ''].filter(Boolean);
        const name = tags.length ? `${m.name}[${tags.join(',')}]` : m.name;
        const label = tags.length ? `${m.label} (${tags.join(', ')})` : m.label;
        const config: IlConfig = { ...p.base, ...(r !== null ? { ratio: r } : {}), ...(mem !== null ? { memory: mem } : {}) };
        p.orders.forEach((ord, oi) => {
          const id = cellId(m.name, r, mem, oi);
          if (ids.has(id)) throw new Error(`sweep: two cells would share the id ${id} (a method or value given twice?)`);
          ids.add(id);
          const args = [...common, '--method', m.name];
          if (r !== null) args.push('--ratio', String(r));
          if (mem !== null) args.push('--memory', String(mem));
          if (ord.seed !== null) args.push('--orders', '1', '--order-seed', String(ord.seed));
          else args.push('--order', ord.name && ord.name !== 'explicit' ? ord.name : ord.order.join(','));
          cells.push({ id, method: m.name, name, label, ratio: r, memory: mem, order_index: oi, order: ord.order, order_seed: ord.seed, order_name: ord.name, args, config });
        });
      }
  }
  return cells;
}

export function planManifest(p: PlanInput, executor: SweepExecutorRecord): SweepManifest {
  return {
    format: SWEEP_FORMAT,
    version: SWEEP_VERSION,
    created: new Date().toISOString(),
    command: p.command ?? '',
    dataset: p.dataset,
    classes: p.classes,
    grid: { methods: p.methods.map((m) => m.name), ratios: p.ratios?.length ? p.ratios : null, memories: p.memories?.length ? p.memories : null, orders: p.orders.length },
    cells: planCells(p),
    executor,
  };
}

export function sweepFile(dir: string): string {
  return path.join(dir, SWEEP_FILE);
}

export function cellDir(dir: string, id: string): string {
  return path.join(dir, 'cells', id);
}

export function isSweepDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory() && fs.existsSync(sweepFile(dir));
  } catch {
    return false;
  }
}

export function writeManifest(dir: string, m: SweepManifest): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = sweepFile(dir);
  writeFileAtomic(file, JSON.stringify(m, null, 2) + '\n');
  return file;
}

/** Reads and checks a sweep folder's sweep.json. */
export function readManifest(dir: string): SweepManifest {
  const file = sweepFile(dir);
  let m: SweepManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`${dir} is not a sweep folder (no ${SWEEP_FILE})`);
    throw new Error(`${file} is unreadable or not valid JSON: ${err.message}`);
  }
  if (m.format !== SWEEP_FORMAT || m.version !== SWEEP_VERSION) throw new Error(`${file} is not a ${SWEEP_FORMAT} v${SWEEP_VERSION} file`);
  if (!Array.isArray(m.cells) || m.cells.some((c) => typeof c.id !== 'string' || !Array.isArray(c.args))) throw new Error(`${file}: malformed cells`);
  return m;
}

/** The same grid? (a --resume with new grid flags must not silently mix two sweeps) */
export function sameCells(a: SweepCell[], b: SweepCell[]): boolean {
  return a.length === b.length && a.every((c, i) => c.id === b[i].id && c.args.join('\u0000') === b[i].args.join('\u0000'));
}
