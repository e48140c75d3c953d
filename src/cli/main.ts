#!/usr/bin/env node
// The `m2kd` command. Parses arguments, calls the library, prints. Holds no math.
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs, Flags } from './args';
import { ProgressBar } from './progress';
import { reportCommand, compareCommand, REPORT_USAGE } from '../report/commands';
import { trainCommand, TRAIN_USAGE } from './train';
import { sweepCommand, SWEEP_USAGE } from './sweep';
import { memoryCommand, MEMORY_USAGE } from './memory';
import { runtimeInfo, setThreads, checkDevice, cudaInfo } from '../engine';
import type { Device } from '../engine';
import { ResNet32, parseArch } from '../nn';
import { loadMnist } from '../data';
import { trainSupervised, evaluate, MNIST_DEFAULTS } from '../train';
import { benchTrain, benchReconstruct } from '../bench';
import { saveCheckpoint } from '../io';

const HELP = `m2kd — class-incremental learning with M²KD on a native tensor engine

usage:
${TRAIN_USAGE}
${SWEEP_USAGE}
${REPORT_USAGE}
${MEMORY_USAGE}
  m2kd doctor                       version, addon, SIMD level, threads, CUDA backend
  m2kd train-mnist [options]        plain (not incremental) ResNet-32 training on the built-in MNIST digits
      --epochs N (4)  --batch N (128)  --lr X (0.1)  --seed S (1)  --out DIR (save a checkpoint)
  m2kd bench train [--json] [--steps N (20)] [--batch N (128)] [--device cpu|cuda]
                                    ResNet-32 train/eval images/s and conv GFLOP/s
  m2kd bench reconstruct [--json] [--k 4,9,19] [--batch N (128)] [--ratio X (0.75)] [--repeats N (10)]
                         [--prune-block B (1)] [--no-shapes] [--arch resnet32|resnet18 --size N (32; 224)]
                         [--device cpu|cuda (no per-shape rates)]
                                    teacher-bank images x models/s (K pruned models in one pass)
common options: --threads N (default: all cores; env M2KD_THREADS), --device cpu|cuda (train, bench train, bench reconstruct)
environment: M2KD_SIMD=avx2|scalar forces a lower SIMD level
`;

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Applies --threads and validates --device (which must exist and be usable); returns the device. */
function common(f: Flags): Device {
  const threads = f.str('threads', '');
  if (threads) setThreads(f.int('threads', 1));
  const device = f.str('device', 'cpu') as Device;
  checkDevice(device);  // explains why cuda is unavailable
  return device;
}

function doctor(f: Flags): void {
  f.done();
  const info = runtimeInfo();
  const lines: [string, string][] = [
    ['m2kd', version()],
    ['node', process.version],
    ['addon', info.addonPath],
    ['simd', `${info.isa} (best on this CPU: ${info.bestIsa})`],
    ['threads', String(info.threads)],
    ['native ops', String(info.ops)],
    ['cuda compiled', info.cudaCompiled ? 'yes' : 'no'],
    ['cuda available', info.cudaAvailable ? 'yes' : `no${info.cudaCompiled ? '' : ' (CPU-only build; npm run build:cuda)'}`],
  ];
  const cu = cudaInfo();
  if (cu.fallback && cu.fallback !== 'no CUDA build (npm run build:cuda)') lines.push(['cuda addon', `not used: ${cu.fallback}`]);
  if (cu.compiled && cu.archs === 'emulated') {
    lines.push(['cuda device', `CUDA emulated on the CPU (npm run build:cuda-emu; ${cu.smCount} emulated SMs): ` +
      'the CUDA kernels run as fibers with race, bounds and initialisation checks']);
  } else if (cu.compiled) {
    const v = (n?: number) => (n ? `${Math.floor(n / 1000)}.${(n % 1000) / 10}` : 'none');
    lines.push(['cuda driver', v(cu.driverVersion)], ['cuda runtime', v(cu.runtimeVersion)]);
    if (cu.archs) lines.push(['cuda archs', `sm_${cu.archs.split(',').join(', sm_')}`]);
    if (cu.available)
      lines.push(['cuda device', `${cu.deviceName} (compute ${cu.computeCapability}, ${cu.smCount} SMs, ` +
        `${((cu.totalMemory ?? 0) / 2 ** 30).toFixed(1)} GiB)`]);
    else lines.push(['cuda reason', cu.reason]);
  }
  for (const [k, v] of lines) console.log(`${k.padEnd(15)} ${v}`);
}

async function trainMnist(f: Flags): Promise<void> {
  const cfg = {
    ...MNIST_DEFAULTS,
    epochs: f.int('epochs', MNIST_DEFAULTS.epochs),
    batchSize: f.int('batch', MNIST_DEFAULTS.batchSize, 2),
    lr: f.num('lr', MNIST_DEFAULTS.lr),
    seed: f.int('seed', MNIST_DEFAULTS.seed, 0),
  };
  const out = f.str('out', '');
  if (common(f) !== 'cpu') throw new Error('train-mnist runs on the cpu only for now (--device cuda: use bench train)');
  f.done();
  cfg.milestones = [Math.max(1, Math.round(cfg.epochs * 2 / 3))];
  const data = loadMnist();
  const info = runtimeInfo();
  console.log(`ResNet-32 on the built-in MNIST digits: ${data.train.n} train / ${data.test.n} test, padded to 32x32`);
  console.log(`${cfg.epochs} epochs, batch ${cfg.batchSize}, lr ${cfg.lr} (x${cfg.gamma} at epoch ${cfg.milestones.join(',')}), ` +
    `SGD momentum ${cfg.momentum}, weight decay ${cfg.weightDecay}; ${info.threads} threads, ${info.isa}`);
  const model = new ResNet32(10, { inChannels: 1, seed: cfg.seed });
  let bar: ProgressBar | null = null;
  const history = await trainSupervised(model, data, cfg, (e) => {
    if (e.kind === 'batch') {
      if (e.batch === 1) bar = new ProgressBar(`epoch ${e.epoch + 1}/${cfg.epochs}`, e.batches);
      bar?.update(e.batch, e.elapsed, `loss ${e.loss.toFixed(4)} ${e.imagesPerSecond.toFixed(0)} img/s`);
    } else {
      console.log(`epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)}, train accuracy ${(100 * e.trainAccuracy).toFixed(2)}%, ` +
        `${e.seconds.toFixed(1)} s (${e.imagesPerSecond.toFixed(0)} img/s)`);
    }
  });
  const acc = await evaluate(model, data.test);
  console.log(`test accuracy: ${(100 * acc).toFixed(2)}% on ${data.test.n} held-out digits`);
  if (out) {
    saveCheckpoint(out, model, { meta: { task: 'mnist', testAccuracy: acc, history } });
    console.log(`checkpoint written to ${out}`);
  }
  model.dispose();
}

// Benchmarks. --device reaches each bench through common(f) (validated, with the reason when cuda
// is unavailable); a bench builds its work inside withDevice(device, ...) and closes each timed
// call with synchronize(device); `bench reconstruct` passes `device` to benchReconstruct (the
// teacher bank runs on cuda through masked_conv_forward_cuda).
function benchReconstructCmd(f: Flags): void {
  const json = f.bool('json');
  const K = f.str('k', '4,9,19').split(',').map((s) => Number(s.trim()));
  const batch = f.int('batch', 128);
  const ratio = f.num('ratio', 0.75);
  const repeats = f.int('repeats', 10);
  const pruneBlock = f.int('prune-block', 1);
  const arch = parseArch(f.str('arch', 'resnet32'));
  const size = f.str('size', '') ? f.int('size', 32, 8) : undefined;
  const device = common(f);
  // the per-shape rates time the CPU's blocked layout: off on a device
  const shapes = device === 'cpu' && !f.bool('no-shapes') && arch === 'resnet32' && (size ?? 32) === 32;
  f.done();
  const r = benchReconstruct({ K, batch, ratio, repeats, pruneBlock, shapes, arch, size, device });
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  console.log(`teacher bank, ${r.arch === 'resnet18' ? 'ResNet-18' : 'ResNet-32'} at ${r.size}x${r.size}, batch ${r.batch}, ratio ${r.ratio}, prune block ${r.prune_block}, ${r.device}, ${r.threads} threads, ${r.isa}`);
  for (const x of r.results) {
    console.log(`  K=${String(x.K).padStart(3)}  ${x.images_models_per_s.toFixed(0).padStart(7)} images*models/s  ${x.ms_per_batch.toFixed(1).padStart(8)} ms/batch  mean density ${x.mean_density.toFixed(3)}`);
    for (const sh of x.shapes ?? [])
      console.log(`      ${sh.shape.padEnd(18)} density ${sh.mean_density.toFixed(3)}  fused ${sh.useful_gflops.toFixed(1).padStart(6)} useful GFLOP/s   dense conv ${sh.dense_gflops.toFixed(1).padStart(6)} GFLOP/s`);
    for (const b of x.bands ?? []) console.log(`      density ${b.band.padEnd(12)} ${String(b.runs).padStart(4)} runs  fused ${b.useful_gflops.toFixed(1).padStart(6)} useful GFLOP/s`);
  }
}

function bench(sub: string | undefined, f: Flags): void {
  if (sub === 'reconstruct') return benchReconstructCmd(f);
  if (sub !== 'train') throw new Error(`unknown benchmark '${sub ?? ''}' (available: train, reconstruct)`);
  const json = f.bool('json');
  const steps = f.int('steps', 20);
  const batch = f.int('batch', 128, 2);
  const device = common(f);
  f.done();
  const r = benchTrain({ batch, steps, device });
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  console.log(`ResNet-32, batch ${r.batch}, ${r.device}, ${r.threads} threads, ${r.isa}`);
  console.log(`  train ${r.resnet32_train_img_s.toFixed(1)} img/s (${r.train_step_ms.toFixed(1)} ms/step)`);
  console.log(`  eval  ${r.resnet32_eval_img_s.toFixed(1)} img/s (${r.eval_step_ms.toFixed(1)} ms/step)`);
  console.log(`  conv GFLOP/s (forward / backward-data / backward-weight):`);
  for (const c of r.conv_gflops)
    console.log(`    ${c.shape.padEnd(22)} ${c.forward_gflops.toFixed(1).padStart(6)} ${c.backward_data_gflops.toFixed(1).padStart(6)} ${c.backward_weight_gflops.toFixed(1).padStart(6)}`);
}

const COMMANDS = ['train', 'sweep', 'report', 'compare', 'memory', 'doctor', 'train-mnist', 'bench'];

/** One command's usage: its blocks of HELP (the lines from `  m2kd <cmd> ` to the next command). */
export function commandUsage(cmd: string): string {
  const blocks: string[] = [];
  let on = false;
  for (const line of HELP.split('\n')) {
    if (line.startsWith('  m2kd ')) on = line.startsWith(`  m2kd ${cmd} `) || line === `  m2kd ${cmd}`;
    else if (!line.startsWith('   ')) on = false;
    if (on) blocks.push(line);
  }
  const more = cmd === 'sweep' ? '\n(train options: m2kd train --help)' : '';
  return `usage:\n${blocks.join('\n')}${more}\ncommon options: --threads N (default: all cores; env M2KD_THREADS)`;
}

export async function main(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  const f = new Flags(flags);
  const cmd = positional[0];
  // `m2kd <command> --help`, `m2kd <command> -h` and `m2kd help <command>` print that command's usage
  const helpFor = cmd === 'help' ? positional[1] : flags.has('help') || positional.includes('-h') ? cmd : undefined;
  if (helpFor !== undefined && COMMANDS.includes(helpFor)) {
    console.log(commandUsage(helpFor));
    return 0;
  }
  try {
    switch (cmd) {
      case 'report':
      case 'compare':
        await (cmd === 'report' ? reportCommand : compareCommand)(argv.filter((_, i) => i !== argv.indexOf(cmd)));
        break;
      case 'doctor':
        doctor(f);
        break;
      case 'memory':
        memoryCommand(f);
        break;
      case 'train':
        await trainCommand(f, argv);
        break;
      case 'sweep':
        await sweepCommand(f, argv);
        break;
      case 'train-mnist':
        await trainMnist(f);
        break;
      case 'bench':
        bench(positional[1], f);
        break;
      case undefined:
      case 'help':
        console.log(HELP);
        break;
      default:
        throw new Error(`unknown command '${cmd}'\n\n${HELP}`);
    }
    return 0;
  } catch (e) {
    console.error(`m2kd: ${(e as Error).message}`);
    return (e as { exitCode?: number }).exitCode ?? 1; // StoppedError: 130 / 143 / 138
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
