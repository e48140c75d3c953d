// The library's high-level API: what `m2kd train` and `m2kd sweep` do, as typed functions that
// return Promises and report progress through a callback (or the Experiment's events). Loads
// the dataset, resolves presets and per-dataset defaults, runs the experiment with checkpoints
// and resume, and writes results.json and the plots into the output folder.
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset, ImageDataset, datasetName } from './data';
import { runtimeInfo, checkDevice as checkEngineDevice } from './engine';
import { Experiment, ExperimentOptions } from './il/experiment';
import { IlConfig, LossNorm, defaultConfig, defaultLr, scaleMilestones, PAPER_CIFAR100, PAPER_IMAGENET100 } from './il/config';
import { parseArch, defaultArch } from './nn/auxnet';
import { MethodSpec, parseMethods } from './il/methods';
import { ClassOrder, randomOrder, parseOrder } from './il/protocol';
import type { IlEvent } from './il/trainer';
import type { RunResults } from './il/results';
import { writeFileAtomic } from './io/atomic';
import { writeResults, renderPlots } from './report';
import { planManifest, writeManifest, readManifest, isSweepDir, sameCells, runLocal, mergeSweep } from './sweep';
import type { SweepCell, SweepManifest, SweepExecutorRecord, CellOutcome } from './sweep';

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
  /** 'paper-cifar100': the paper's CIFAR-100 recipe; 'paper-imagenet100': its iILSVRC-small recipe (a folder of 100 classes) */
  preset?: string;
  /** --arch: resnet32 or resnet18 (default: resnet18 for images of side >= 64, else resnet32) */
  arch?: string;
  /** --size: image side a folder data set is resized to (default 32; the ImageNet preset 224) */
  size?: number;
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
  /** --loss-norm: 'dataset' (default, iCaRL's scale: ÷ batch × the dataset's classes) or 'seen' (÷ batch × classes seen) */
  lossNorm?: LossNorm;
  /** --milestones: epochs at which the lr is multiplied by gamma (taken as given, not scaled with epochs); [] for none */
  milestones?: number[];
  /** --gamma: the lr factor at each milestone (default 0.2) */
  gamma?: number;
  /** folder datasets: read batches from the decode cache on disk (true), decode into memory (false), or 'auto' (default: stream past 1 GiB of float32 images) */
  stream?: boolean | 'auto';
}

export interface TrainOutcome {
  results: RunResults;
  /** the output folder, or null */
  out: string | null;
  /** files written (results.json, plots) */
  files: string[];
}

export interface Preset {
  dataset: string;
  classesPerStep: number;
  config: Partial<IlConfig>;
  /** image side for folder data sets */
  size?: number;
  /** the metric tables and plots lead with (the paper: top-1 on CIFAR-100, top-5 on iILSVRC-small) */
  headline?: 'top1' | 'top5';
}

export const PRESETS: Record<string, Preset> = {
  'paper-cifar100': { dataset: 'cifar100', classesPerStep: 10, config: PAPER_CIFAR100 },
  'paper-imagenet100': { dataset: 'folder', classesPerStep: 10, config: PAPER_IMAGENET100, size: 224, headline: 'top5' },
};

/** The configuration a train call would use (after presets and defaults), without running. */
export function resolveConfig(opts: TrainOptions, datasetClasses: number): IlConfig {
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
  if (opts.preset && !preset) throw new Error(`unknown preset '${opts.preset}' (available: ${Object.keys(PRESETS).join(', ')})`);
  const ds = datasetName(opts.dataset ?? preset?.dataset ?? 'mnist');
  const cps = opts.classesPerStep ?? preset?.classesPerStep ?? (datasetClasses >= 100 ? 10 : 2);
  if (datasetClasses % cps !== 0)
    throw new Error(`the dataset's ${datasetClasses} classes cannot be split into steps of ${cps} classes (${datasetClasses} is not divisible by ${cps})`);
  let cfg: IlConfig = { ...defaultConfig(ds, cps, datasetClasses), ...(preset?.config ?? {}) };
  if (opts.ratio === undefined) cfg.ratio = cps >= 20 ? 0.8 : 0.75; // the paper: 0.8 for 20-class groups
  const set = <K extends keyof IlConfig>(k: K, v: IlConfig[K] | undefined) => {
    if (v !== undefined) cfg[k] = v;
  };
  if (opts.epochs !== undefined && opts.epochs !== cfg.epochs) {
    // keep the schedule's shape: milestones and fine-tuning scale with the epochs
    cfg.milestones = scaleMilestones(cfg.milestones, cfg.epochs, opts.epochs);
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
  set('milestones', opts.milestones ? [...opts.milestones] : undefined);
  set('gamma', opts.gamma);
  set('lossNorm', opts.lossNorm);
  // the default lr follows the normalisation (defaultLr) unless one is given
  if (opts.lr === undefined && opts.config?.lr === undefined && cfg.lossNorm === 'seen') cfg.lr = defaultLr(datasetClasses, cps, 'seen');
  if (opts.arch !== undefined) cfg.arch = parseArch(opts.arch);
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
  if (!info.cudaCompiled) throw new Error('device cuda is not available: this is a CPU-only build (npm run build:cuda builds the CUDA backend)');
  checkEngineDevice('cuda'); // names why no device is usable
}

/** Loads the dataset a train call names. */
export async function loadTrainDataset(opts: TrainOptions): Promise<ImageDataset> {
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
  const size = opts.size ?? preset?.size;
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) throw new Error(`size must be a positive integer, got ${size}`);
  return loadDataset(opts.dataset ?? preset?.dataset ?? 'mnist', { path: opts.data, trainPerClass: opts.trainPerClass, testPerClass: opts.testPerClass, stream: opts.stream, ...(size !== undefined ? { size } : {}) });
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
  // the backbone follows the images unless asked for (recorded in results.json's config)
  const side = Math.min(dataset.train.height, dataset.train.width);
  if (base.arch === undefined) base.arch = defaultArch(side);
  const withArch = (c: IlConfig): IlConfig => (c.arch === undefined ? { ...c, arch: base.arch } : c);
  const cfgOf = (m: MethodSpec): IlConfig => withArch(extraMethods?.find((e) => e.spec === m)?.config ?? base);
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
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
    headline: preset?.headline,
    device: opts.device ?? 'cpu',
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
  /** cells at once, as child processes (with an output folder; default 1) */
  jobs?: number;
  /** threads in all, divided among the jobs (default: the engine's thread count) */
  threads?: number;
  /** called as each cell starts and ends (with an output folder) */
  onCell?: (e: { kind: 'start'; cell: SweepCell; threads: number } | { kind: 'end'; cell: SweepCell; outcome: CellOutcome }) => void;
}

export interface SweepOutcome extends TrainOutcome {
  /** cells not done (failed or stopped): rerun with resume to continue them */
  missing: string[];
}

/** The grid of a sweep as cells (sweep.json's content), without running anything. */
export async function planSweep(opts: SweepOptions, executor: SweepExecutorRecord = { kind: 'local' }): Promise<SweepManifest> {
  const preview = await loadTrainDataset({ ...opts, trainPerClass: 1, testPerClass: 1 });
  const base = resolveConfig(opts, preview.classes);
  const preset = opts.preset ? PRESETS[opts.preset] : undefined;
  if (opts.ratio !== undefined && !opts.ratios) opts = { ...opts, ratios: [opts.ratio] };
  if (opts.memory !== undefined && !opts.memories) opts = { ...opts, memories: [opts.memory] };
  return planManifest(
    {
      flags: { ...opts, device: opts.device },
      methods: resolveMethods(opts.methods),
      base,
      orders: resolveOrders(opts, preview.classes),
      ratios: opts.ratios,
      memories: opts.memories,
      dataset: datasetName(opts.dataset ?? preset?.dataset ?? 'mnist'),
      classes: preview.classes,
      command: opts.command,
    },
    executor,
  );
}

/**
 * Runs the unfinished cells of the sweep in `dir` locally (`jobs` child processes at once),
 * then merges every finished cell into <dir>/results.json (and the plots).
 */
export async function runSweep(dir: string, o: Pick<SweepOptions, 'jobs' | 'threads' | 'signal' | 'onCell' | 'plots'> & { cli?: string } = {}): Promise<SweepOutcome> {
  const m = readManifest(dir);
  await runLocal(dir, m, {
    jobs: o.jobs,
    threads: o.threads ?? runtimeInfo().threads,
    cli: o.cli,
    signal: o.signal,
    onStart: (cell, threads) => o.onCell?.({ kind: 'start', cell, threads }),
    onEnd: (cell, outcome) => o.onCell?.({ kind: 'end', cell, outcome }),
  });
  const merged = mergeSweep(dir);
  if (!merged.results) throw new Error(`sweep ${dir}: no cell finished (m2kd sweep --status ${dir} shows why)`);
  return { results: merged.results, out: dir, files: await finish(merged.results, dir, o.plots ?? true), missing: merged.missing };
}

/**
 * method × order × ratio (× memory) grids: the paper's Table 1 and Fig. 9 in one call each.
 * With an output folder the grid is written to <out>/sweep.json and each (row, order) cell runs
 * as its own run folder <out>/cells/<id> (see runSweep); resume continues a sweep folder. With
 * out: null the grid runs in this process and nothing is written.
 */
export async function sweep(opts: SweepOptions): Promise<SweepOutcome> {
  if (opts.out !== null) {
    const dir = prepareOut(opts.out, false);
    if (!dir) throw new Error('sweep: no output folder');
    const planned = await planSweep(opts, { kind: 'local', jobs: opts.jobs ?? 1, threads: opts.threads });
    if (isSweepDir(dir)) {
      const old = readManifest(dir);
      if (!opts.resume) throw new Error(`${dir} already holds a sweep (sweep.json): continue it with resume (m2kd sweep --resume ${dir}) or choose another folder`);
      if (!sameCells(old.cells, planned.cells)) throw new Error(`${dir} holds a different grid (its sweep.json); resume it without grid options, or choose another folder`);
    } else {
      if (opts.resume) throw new Error(`--resume: ${dir} holds no sweep (no sweep.json) to continue`);
      writeManifest(dir, planned);
    }
    return runSweep(dir, opts);
  }
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
  experiment.on('partial', (r) => opts.onPartial?.(r));
  const results = await experiment.run();
  return { results, out, files: await finish(results, out, opts.plots ?? true), missing: [] };
}

export { writeFileAtomic };
