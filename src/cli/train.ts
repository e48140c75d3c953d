// `m2kd train`: flags → TrainOptions, progress bars with ETA while it runs, a table after every
// step, the comparison at the end. Holds no math: everything is in api.ts. (`m2kd sweep`: sweep.ts.)
import { Flags } from './args';
import { ProgressBar } from './progress';
import { setThreads } from '../engine';
import { train, TrainOptions } from '../api';
import type { IlEvent } from '../il/trainer';
import type { StepResult } from '../il/results';
import { renderTable, comparisonTable, perStepComparisonTable, fmtBytes, fmtSeconds } from '../report';
import * as path from 'path';
import { acquireRunLock, removeStaleTemps } from '../io';
import { installStopHandlers, exitCodeOf, StoppedError } from './signals';
import { NumericFaultError } from '../il/guard';

export const TRAIN_USAGE = `  m2kd train [options]              class-incremental training of one or more methods
      --dataset mnist|fashion-mnist|cifar10|cifar100|folder (mnist)   --data PATH
      --method NAME[,NAME...] (m2kd,lwf-mc,ft): ft, lwf-mc, lwf-mc-aux, lwf-mc-mmd, m2kd,
               m2kd-noprune, m2kd-skip1, m2kd-skip2, icarl, icarl-aux, icarl-m2kd
      --classes-per-step N (2; 10 for 100 classes)  --epochs N  --finetune-epochs N (epochs/2)
      --ratio R (0.75; 0.8 for 20-class steps)  --finetune-lr restart|continue (restart)
      --prune-block B (1: unstructured; 4, 8, 16: blocks of B output channels, by block norm)
      --orders N (1) | --order A|B|i,j,k,...   --seed S (1)  --order-seed S (seed)
      --train-per-class N  --test-per-class N  --memory N (2000, iCaRL)  --lr X  --batch N (128)
      --arch resnet32|resnet18 (resnet18 for images of side >= 64)  --size N (folder image side: 32)
      --preset paper-cifar100|paper-imagenet100   --no-cache (teacher outputs on the fly)  --crop P (0)  --no-flip
      --bn-recalibrate on|off (on for mnist/fashion-mnist: re-estimate BN statistics after each step)
      --device cpu|cuda  --out DIR (runs/<time>)  --resume  --no-plots  --checkpoint-every epoch|step
      --loss-norm dataset|seen (dataset: ÷ batch × dataset classes; seen: ÷ batch × classes seen)
      --milestones E,E,...|none  --gamma G (0.2): lr × G at each milestone epoch
      --stream on|off|auto (auto) folder datasets: read batches from the decode cache on disk`;

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
  const lossNorm = f.str('loss-norm', '');
  if (lossNorm && lossNorm !== 'dataset' && lossNorm !== 'seen') throw new Error(`--loss-norm must be dataset or seen, got '${lossNorm}'`);
  const ms = f.str('milestones', '');
  const milestones = !ms ? undefined : ms === 'none' ? [] : ms.split(',').map((v) => {
    if (!/^\d+$/.test(v.trim())) throw new Error(`--milestones must be a comma list of epochs (or none), got '${ms}'`);
    return Number(v);
  });
  const stream = f.str('stream', '');
  if (stream && !['on', 'off', 'auto'].includes(stream)) throw new Error(`--stream must be on, off or auto, got '${stream}'`);
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
    arch: f.str('arch', '') || undefined,
    size: optInt(f, 'size'),
    teacherCache: f.bool('no-cache') ? false : undefined,
    bnRecalibrate: bnRecal === '' ? undefined : bnRecal === 'on',
    flip: f.bool('no-flip') ? false : undefined,
    crop: optInt(f, 'crop', 0),
    plots: !f.bool('no-plots'),
    checkpointEvery: every,
    lossNorm: (lossNorm || undefined) as TrainOptions['lossNorm'],
    milestones,
    gamma: optNum(f, 'gamma'),
    stream: stream === '' ? undefined : stream === 'auto' ? 'auto' : stream === 'on',
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

/** The command line that continues a run: the same arguments, with --out and --resume. */
function resumeCommand(argv: string[], out: string): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const args = ['m2kd', ...argv];
  if (!argv.some((a) => a === '--out' || a.startsWith('--out='))) args.push('--out', out);
  if (!argv.some((a) => a === '--resume' || a.startsWith('--resume='))) args.push('--resume');
  return args.map(q).join(' ');
}

/** The command line of a fresh start in the same folder with another --lr. */
function withLr(argv: string[], out: string, lr: number): string {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--resume' || a.startsWith('--resume=') || a.startsWith('--lr=')) continue;
    if (a === '--lr') {
      i++;
      continue;
    }
    args.push(a);
  }
  return resumeCommand([...args, '--lr', String(lr)], out).replace(/ --resume$/, '');
}

type CheckpointEvent = Extract<IlEvent, { kind: 'checkpoint' }>;

function describeCheckpoint(c: CheckpointEvent | null, out: string): string {
  if (!c) return `the checkpoints in ${path.join(out, 'checkpoints')} are those of the previous session (none were written in this one)`;
  const at = c.phase === 'step' ? `after step ${c.step}` : `step ${c.step + 1}, ${c.phase === 'train' ? 'train' : 'fine-tune'} epoch ${c.epoch}`;
  return `the last checkpoint (${c.method} · order ${c.order + 1} · ${at}) is in ${c.dir}`;
}

export async function trainCommand(f: Flags, argv: string[]): Promise<void> {
  const opts = trainOptions(f, argv, false);
  f.done();
  const t0 = Date.now();
  if (opts.out === undefined && !opts.resume) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    opts.out = path.join('runs', stamp);
  }
  if (opts.out === undefined || opts.out === null) throw new Error('--resume needs the output folder of the run to continue (--out DIR)');
  const outDir = opts.out;
  // one writer per run folder, for the whole run (released on exit, errors and signals)
  const lock = acquireRunLock(outDir, {
    command: opts.command,
    onStale: (o) => console.error(`m2kd: taking over the lock of ${outDir} from pid ${o.pid} on ${o.host} (started ${o.startedAt}), which is no longer running`),
  });
  const stop = installStopHandlers((sig) => console.error(`\nm2kd: ${sig}: stopping at the end of the current batch (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again exits at once)`));
  let last: CheckpointEvent | null = null;
  try {
    // leftovers of killed writes: hidden atomic-write temps in the run folder, anything under checkpoints/
    const removed = [...removeStaleTemps(outDir, { locked: true, depth: 0, hiddenOnly: true }), ...removeStaleTemps(path.join(outDir, 'checkpoints'), { locked: true, depth: 3 })];
    if (removed.length) console.error(`m2kd: removed ${removed.length} temporary file(s) left by an interrupted run: ${removed.map((p) => path.relative(outDir, p)).join(', ')}`);
    const printer = progressPrinter();
    const onProgress = (e: IlEvent) => {
      if (e.kind === 'checkpoint') last = e;
      printer(e);
    };
    const { results, out, files } = await train({ ...opts, signal: stop.signal, onProgress });
    console.log('\n' + comparisonTable(results));
    console.log(perStepComparisonTable(results));
    console.log(`${fmtSeconds((Date.now() - t0) / 1000)} in all`);
    if (out) console.log(`results and plots in ${out}: ${files.map((p) => p.split('/').pop()).join(', ')}`);
  } catch (e) {
    const sig = stop.requested();
    if (sig)
      throw new StoppedError(`stopped by ${sig}; ${describeCheckpoint(last, outDir)}. Continue with:\n  ${resumeCommand(argv, outDir)}`, exitCodeOf(sig));
    if (/\b(ENOSPC|EDQUOT)\b/.test((e as Error).message ?? ''))
      throw new Error(`${(e as Error).message}\n  the disk is full: ${describeCheckpoint(last, outDir)} and is intact. Free some space, then continue with:\n  ${resumeCommand(argv, outDir)}`);
    if (e instanceof NumericFaultError) {
      const lr = e.suggestedLr;
      throw new Error(`${e.message}\n  ${describeCheckpoint(last, outDir)}.${lr !== undefined ? ` Start again with a lower learning rate:\n  ${withLr(argv, outDir, lr)}` : ''}`);
    }
    throw e;
  } finally {
    stop.dispose();
    lock.release();
  }
}
