// The library's high-level API: what `m2kd train` and `m2kd sweep` do, as typed functions that
// return Promises and report progress through a callback (or the Experiment's events). Loads
// the dataset, resolves presets and per-dataset defaults, runs the experiment with checkpoints
// and resume, and writes results.json and the plots into the output folder.
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset, ImageDataset, datasetName } from './data';
import { runtimeInfo } from './engine';
import { Experiment, ExperimentOptions } from './il/experiment';
import { IlConfig, defaultConfig, PAPER_CIFAR100 } from './il/config';
import { MethodSpec, parseMethods } from './il/methods';
import { ClassOrder, randomOrder, parseOrder } from './il/protocol';
import type { IlEvent } from './il/trainer';
import type { RunResults } from './il/results';
import { writeFileAtomic } from './io/atomic';
import { writeResults, renderPlots } from './report';

export interface TrainOptions {
  /** mnist (built-in, default), fashion-mnist, cifar10, cifar100, folder */
  dataset?: string;
  /** where the dataset's files are */
  data?: string;
  /** a method name, a comma list, or an array (default: m2kd,lwf-mc,ft) */
  methods?: string | string[];
  classesPerStep?: number;
  epochs?: number;
  finetuneEpochs?: number;
  batchSize?: number;
  lr?: number;
  ratio?: number;
  /** --prune-block: 1 (default, unstructured), 4, 8 or 16 output channels per pruned block */
  pruneBlock?: number;
  finetuneLr?: 'restart' | 'continue';
  /** number of seeded random class orders (default 1) */
  orders?: number;
  /** a named order (A, B) or an explicit comma list; overrides orders */
  order?: string;
  /** seed of the training (init, shuffles, flips) */
  seed?: number;
  /** seed of the first class order (order i uses orderSeed + i; default: seed) */
  orderSeed?: number;
  trainPerClass?: number;
  testPerClass?: number;
  /** iCaRL exemplars in total */
  memory?: number;
  device?: 'cpu' | 'cuda';
  /** output folder (results.json, plots, checkpoints); null: write nothing */
  out?: string | null;
  resume?: boolean;
  /** 'paper-cifar100': the paper's CIFAR-100 recipe */
  preset?: string;
  teacherCache?: boolean;
  /** re-estimate BatchNorm statistics at the end of each step (default: on for mnist, fashion-mnist) */
  bnRecalibrate?: boolean;
  flip?: boolean;
  crop?: number;
  plots?: boolean;
  checkpointEvery?: 'epoch' | 'step';
  /** the command line, recorded in results.json */
  command?: string;
  onProgress?: (e: IlEvent) => void;
  /** called with the results so far after every (method, order) */
  onPartial?: (r: RunResults) => void;
  signal?: AbortSignal;
  /** overrides any IlConfig field */
  config?: Partial<IlConfig>;
}

export interface TrainOutcome {
  results: RunResults;
  /** the output folder, or null */
  out: string | null;
  /** files written (results.json, plots) */
  files: string[];
}

export const PRESETS: Record<string, { dataset: string; classesPerStep: number; config: Partial<IlConfig> }> = {
  'paper-cifar100': { dataset: 'cifar100', classesPerStep: 10, config: PAPER_CIFAR100 },
};

/** The configuration a train call would use (after presets and defaults), without running. */
export function resolveConfig(opts: TrainOptions, datasetClasses: number): IlConfig {
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
  if (opts.preset && !preset) throw new Error(`unknown preset '${opts.preset}' (available: ${Object.keys(PRESETS).join(', ')})`);
  const ds = datasetName(opts.dataset ?? preset?.dataset ?? 'mnist');
  const cps = opts.classesPerStep ?? preset?.classesPerStep ?? (datasetClasses >= 100 ? 10 : 2);
  if (datasetClasses % cps !== 0)
    throw new Error(`the dataset's ${datasetClasses} classes cannot be split into steps of ${cps} classes (${datasetClasses} is not divisible by ${cps})`);
  let cfg: IlConfig = { ...defaultConfig(ds, cps), ...(preset?.config ?? {}) };
  if (opts.ratio === undefined) cfg.ratio = cps >= 20 ? 0.8 : 0.75; // the paper: 0.8 for 20-class groups
  const set = <K extends keyof IlConfig>(k: K, v: IlConfig[K] | undefined) => {
    if (v !== undefined) cfg[k] = v;
  };
  if (opts.epochs !== undefined && opts.epochs !== cfg.epochs) {
    // keep the schedule's shape: milestones and fine-tuning scale with the epochs
    cfg.milestones = cfg.milestones.map((m) => Math.max(1, Math.round((m * opts.epochs!) / cfg.epochs))).filter((m) => m < opts.epochs!);
    cfg.finetuneEpochs = Math.max(1, Math.round(opts.epochs / 2));
    cfg.epochs = opts.epochs;
  }
  set('finetuneEpochs', opts.finetuneEpochs);
  set('batchSize', opts.batchSize);
  set('lr', opts.lr);
  set('ratio', opts.ratio);
  set('pruneBlock', opts.pruneBlock);
  set('finetuneLr', opts.finetuneLr);
  set('seed', opts.seed);
  set('memory', opts.memory);
  set('teacherCache', opts.teacherCache);
  set('bnRecalibrate', opts.bnRecalibrate);
  set('flip', opts.flip);
  set('crop', opts.crop);
  cfg = { ...cfg, ...(opts.config ?? {}) };
  return cfg;
}

/** Class orders for a run: a named/explicit one, or `orders` seeded random ones. */
export function resolveOrders(opts: TrainOptions, classes: number): ClassOrder[] {
  if (opts.order) return [parseOrder(opts.order, classes)];
  const n = opts.orders ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`orders must be a positive integer, got ${n}`);
  const base = opts.orderSeed ?? opts.seed ?? 1;
  return Array.from({ length: n }, (_, i) => randomOrder(classes, base + i));
}

export function resolveMethods(m: string | string[] | undefined): MethodSpec[] {
  return parseMethods(Array.isArray(m) ? m.join(',') : m ?? 'm2kd,lwf-mc,ft');
}

function checkDevice(device: string | undefined): void {
  if (device === undefined || device === 'cpu') return;
  if (device !== 'cuda') throw new Error(`unknown device '${device}' (cpu or cuda)`);
  const info = runtimeInfo();
  if (!info.cudaAvailable)
    throw new Error(`device cuda is not available: ${info.cudaCompiled ? 'no CUDA device or driver was found' : 'this is a CPU-only build (npm run build:cuda builds the CUDA backend)'}`);
  throw new Error('device cuda: incremental training runs on the CPU in this version; the CUDA backend serves the ops, the teacher bank and the benchmarks');
}

/** Loads the dataset a train call names. */
export async function loadTrainDataset(opts: TrainOptions): Promise<ImageDataset> {
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
  return loadDataset(opts.dataset ?? preset?.dataset ?? 'mnist', { path: opts.data, trainPerClass: opts.trainPerClass, testPerClass: opts.testPerClass });
}

function prepareOut(out: string | null | undefined, resume: boolean | undefined): string | null {
  if (out === null) {
    if (resume) throw new Error('--resume needs the output folder of the run to continue (--out DIR)');
    return null;
  }
  if (out === undefined) {
    if (resume) throw new Error('--resume needs the output folder of the run to continue (--out DIR)');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    out = path.join('runs', stamp);
  }
  try {
    fs.mkdirSync(out, { recursive: true });
    fs.accessSync(out, fs.constants.W_OK);
    const probe = path.join(out, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (e) {
    throw new Error(`output folder ${out} is not writable: ${(e as Error).message}`);
  }
  if (resume && !fs.existsSync(path.join(out, 'checkpoints'))) throw new Error(`--resume: ${out} holds no checkpoints to continue from`);
  return out;
}

/** Builds the Experiment of a train call (for callers that want its events directly). */
export async function createExperiment(opts: TrainOptions, extraMethods?: { spec: MethodSpec; config: IlConfig }[]): Promise<{ experiment: Experiment; dataset: ImageDataset; out: string | null }> {
  checkDevice(opts.device);
  const methods = extraMethods ? extraMethods.map((m) => m.spec) : resolveMethods(opts.methods);
  const out = prepareOut(opts.out, opts.resume);
  const dataset = await loadTrainDataset(opts);
  const base = resolveConfig(opts, dataset.classes);
  const cfgOf = (m: MethodSpec): IlConfig => extraMethods?.find((e) => e.spec === m)?.config ?? base;
  const eo: ExperimentOptions = {
    dataset,
    methods,
    orders: resolveOrders(opts, dataset.classes),
    config: cfgOf,
    out,
    resume: opts.resume,
    checkpointEvery: opts.checkpointEvery,
    command: opts.command,
    signal: opts.signal,
  };
  return { experiment: new Experiment(eo), dataset, out };
}

async function finish(results: RunResults, out: string | null, plots: boolean): Promise<string[]> {
  if (!out) return [];
  const files = [writeResults(out, results)];
  if (plots) files.push(...(await renderPlots(results, out)));
  return files;
}

/** Runs methods × orders on a dataset: what `m2kd train` does. */
export async function train(opts: TrainOptions = {}): Promise<TrainOutcome> {
  const { experiment, out } = await createExperiment(opts);
  if (opts.onProgress) experiment.on('progress', opts.onProgress);
  experiment.on('partial', (r) => {
    if (out) writeResults(out, r);
    opts.onPartial?.(r);
  });
  const results = await experiment.run();
  const files = await finish(results, out, opts.plots ?? true);
  return { results, out, files };
}

export interface SweepOptions extends TrainOptions {
  /** pruning ratios to sweep (pruning methods only) */
  ratios?: number[];
  /** exemplar budgets to sweep (iCaRL methods only) */
  memories?: number[];
}

/** method × order × ratio (× memory) grids: the paper's Table 1 and Fig. 9 in one call each. */
export async function sweep(opts: SweepOptions): Promise<TrainOutcome> {
  const preview = await loadTrainDataset({ ...opts, trainPerClass: 1, testPerClass: 1 });
  const base = resolveConfig(opts, preview.classes);
  const grid: { spec: MethodSpec; config: IlConfig }[] = [];
  for (const m of resolveMethods(opts.methods)) {
    const ratios = m.prune && opts.ratios?.length ? opts.ratios : [undefined];
    const mems = m.exemplars && opts.memories?.length ? opts.memories : [undefined];
    for (const r of ratios)
      for (const mem of mems) {
        const tags = [r !== undefined ? `ratio=${r}` : '', mem !== undefined ? `memory=${mem}` : ''].filter(Boolean);
        const name = tags.length ? `${m.name}[${tags.join(',')}]` : m.name;
        grid.push({ spec: { ...m, name, label: tags.length ? `${m.label} (${tags.join(', ')})` : m.label }, config: { ...base, ...(r !== undefined ? { ratio: r } : {}), ...(mem !== undefined ? { memory: mem } : {}) } });
      }
  }
  const { experiment, out } = await createExperiment(opts, grid);
  if (opts.onProgress) experiment.on('progress', opts.onProgress);
  experiment.on('partial', (r) => {
    if (out) writeResults(out, r);
    opts.onPartial?.(r);
  });
  const results = await experiment.run();
  return { results, out, files: await finish(results, out, opts.plots ?? true) };
}

export { writeFileAtomic };
