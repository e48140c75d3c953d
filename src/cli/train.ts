// `m2kd train` and `m2kd sweep`: flags → TrainOptions, progress bars with ETA while it runs,
// a table after every step, the comparison at the end. Holds no math: everything is in api.ts.
import { Flags } from './args';
import { ProgressBar } from './progress';
import { setThreads } from '../engine';
import { train, sweep, TrainOptions, SweepOptions } from '../api';
import type { IlEvent } from '../il/trainer';
import type { StepResult } from '../il/results';
import { renderTable, comparisonTable, perStepComparisonTable, fmtBytes, fmtSeconds } from '../report';

export const TRAIN_USAGE = `  m2kd train [options]              class-incremental training of one or more methods
      --dataset mnist|fashion-mnist|cifar10|cifar100|folder (mnist)   --data PATH
      --method NAME[,NAME...] (m2kd,lwf-mc,ft): ft, lwf-mc, lwf-mc-aux, lwf-mc-mmd, m2kd,
               m2kd-noprune, m2kd-skip1, m2kd-skip2, icarl, icarl-aux, icarl-m2kd
      --classes-per-step N (2; 10 for 100 classes)  --epochs N  --finetune-epochs N (epochs/2)
      --ratio R (0.75; 0.8 for 20-class steps)  --finetune-lr restart|continue (restart)
      --prune-block B (1: unstructured; 4, 8, 16: blocks of B output channels, by block norm)
      --orders N (1) | --order A|B|i,j,k,...   --seed S (1)  --order-seed S (seed)
      --train-per-class N  --test-per-class N  --memory N (2000, iCaRL)  --lr X  --batch N (128)
      --preset paper-cifar100   --no-cache (teacher outputs on the fly)  --crop P (0)  --no-flip
      --bn-recalibrate on|off (on for mnist/fashion-mnist: re-estimate BN statistics after each step)
      --device cpu|cuda  --out DIR (runs/<time>)  --resume  --no-plots  --checkpoint-every epoch|step
  m2kd sweep [train options] [--ratio R,R,...] [--memory M,M,...]
                                    method × order × ratio (× memory) grids, e.g. Table 1 / Fig. 9`;

function list(f: Flags, name: string): number[] | undefined {
  const s = f.str(name, '');
  if (!s) return undefined;
  return s.split(',').map((p) => {
    const v = Number(p.trim());
    if (!Number.isFinite(v)) throw new Error(`--${name}: '${p}' is not a number`);
    return v;
  });
}

function optInt(f: Flags, name: string, min = 1): number | undefined {
  return f.str(name, '') ? f.int(name, 0, min) : undefined;
}
function optNum(f: Flags, name: string): number | undefined {
  return f.str(name, '') ? f.num(name, 0) : undefined;
}

export function trainOptions(f: Flags, argv: string[], forSweep: boolean): TrainOptions {
  const threads = optInt(f, 'threads');
  if (threads) setThreads(threads);
  const ftLr = f.str('finetune-lr', '');
  if (ftLr && ftLr !== 'restart' && ftLr !== 'continue') throw new Error(`--finetune-lr must be restart or continue, got '${ftLr}'`);
  const every = f.str('checkpoint-every', 'epoch');
  if (every !== 'epoch' && every !== 'step') throw new Error(`--checkpoint-every must be epoch or step, got '${every}'`);
  const device = f.str('device', 'cpu');
  const bnRecal = f.str('bn-recalibrate', '');
  if (bnRecal && bnRecal !== 'on' && bnRecal !== 'off') throw new Error(`--bn-recalibrate must be on or off, got '${bnRecal}'`);
  const opts: TrainOptions = {
    dataset: f.str('dataset', '') || undefined,
    data: f.str('data', '') || undefined,
    methods: f.str('method', '') || undefined,
    classesPerStep: optInt(f, 'classes-per-step'),
    epochs: optInt(f, 'epochs'),
    finetuneEpochs: optInt(f, 'finetune-epochs', 0),
    batchSize: optInt(f, 'batch', 2),
    lr: optNum(f, 'lr'),
    finetuneLr: (ftLr || undefined) as TrainOptions['finetuneLr'],
    orders: optInt(f, 'orders'),
    order: f.str('order', '') || undefined,
    seed: optInt(f, 'seed', 0),
    orderSeed: optInt(f, 'order-seed', 0),
    trainPerClass: optInt(f, 'train-per-class'),
    testPerClass: optInt(f, 'test-per-class'),
    device: device as TrainOptions['device'],
    out: f.str('out', '') || undefined,
    resume: f.bool('resume'),
    preset: f.str('preset', '') || undefined,
    teacherCache: f.bool('no-cache') ? false : undefined,
    bnRecalibrate: bnRecal === '' ? undefined : bnRecal === 'on',
    flip: f.bool('no-flip') ? false : undefined,
    crop: optInt(f, 'crop', 0),
    plots: !f.bool('no-plots'),
    checkpointEvery: every,
    command: ['m2kd', ...argv].join(' '),
  };
  if (!forSweep) {
    opts.ratio = optNum(f, 'ratio');
    opts.pruneBlock = optNum(f, 'prune-block');
    opts.memory = optInt(f, 'memory', 0);
  }
  return opts;
}

function stepRow(s: StepResult): string[] {
  return [
    String(s.step),
    String(s.classes_seen),
    s.top1.toFixed(2),
    s.top5.toFixed(2),
    s.per_group.map((g) => g.toFixed(1)).join(' '),
    s.mean_forgetting.toFixed(2),
    fmtBytes(s.memory.total),
    fmtSeconds(s.seconds.total),
  ];
}

/** Progress display: a bar per epoch (and for the teacher cache), a table row per step. */
export function progressPrinter(): (e: IlEvent) => void {
  let bar: ProgressBar | null = null;
  const rows = new Map<string, string[][]>();
  return (e) => {
    switch (e.kind) {
      case 'step-start':
        console.error(`\n${e.method} · order ${e.order + 1} · step ${e.step}/${e.steps}: classes ${e.classes.join(',')} (${e.images} training images)`);
        break;
      case 'resumed':
        console.error(`${e.method} · order ${e.order + 1}: resuming step ${e.step}, ${e.phase} after epoch ${e.epoch}`);
        break;
      case 'teachers':
        if (e.done === 1) bar = new ProgressBar('  teacher outputs', e.total);
        bar?.update(e.done, e.elapsed);
        break;
      case 'batch':
        if (e.batch === 1) bar = new ProgressBar(`  ${e.phase === 'train' ? 'train' : 'fine-tune'} epoch ${e.epoch}/${e.epochs}`, e.batches);
        bar?.update(e.batch, e.elapsed, `loss ${e.loss.toFixed(4)}`);
        break;
      case 'step': {
        const key = `${e.method}/${e.order}`;
        const r = rows.get(key) ?? [];
        r.push(stepRow(e.result));
        rows.set(key, r);
        console.log(
          '\n' +
            renderTable({
              title: `${e.method} · order ${e.order + 1}`,
              headers: ['step', 'classes', 'top-1', 'top-5', 'top-1 per group', 'forgetting', 'memory', 'seconds'],
              align: ['right', 'right', 'right', 'right', 'left', 'right', 'right', 'right'],
              rows: r,
            }),
        );
        break;
      }
      default:
        break;
    }
  };
}

export async function trainCommand(f: Flags, argv: string[]): Promise<void> {
  const opts = trainOptions(f, argv, false);
  f.done();
  const t0 = Date.now();
  const { results, out, files } = await train({ ...opts, onProgress: progressPrinter() });
  console.log('\n' + comparisonTable(results));
  console.log(perStepComparisonTable(results));
  console.log(`${fmtSeconds((Date.now() - t0) / 1000)} in all`);
  if (out) console.log(`results and plots in ${out}: ${files.map((p) => p.split('/').pop()).join(', ')}`);
}

export async function sweepCommand(f: Flags, argv: string[]): Promise<void> {
  const opts: SweepOptions = { ...trainOptions(f, argv, true), ratios: list(f, 'ratio'), memories: list(f, 'memory')?.map((m) => Math.round(m)) };
  f.done();
  const { results, out } = await sweep({ ...opts, onProgress: progressPrinter() });
  console.log('\n' + comparisonTable(results));
  console.log(perStepComparisonTable(results));
  if (out) console.log(`results and plots in ${out}`);
}
