#!/usr/bin/env node
// m2kd vs PyTorch, interleaved. Runs m2kd's ResNet32Workload (dist/src bench) in this process
// and benchmarks/torch_train.py --server as a child process, alternating blocks of steps
// (ours N, torch N, ours N, ...) so that both sides see the same machine state (frequency,
// other load). After warm-up it collects rounds x steps timed steps per side for the ResNet-32
// training step, the eval forward, and every ResNet-32 conv shape x direction, then prints one
// JSON object: both sides' medians and the ratios ours/torch (images/s for train and eval,
// GFLOP/s for convs), thread counts, ISA, torch version and malloc. Medians are the headline;
// the best (minimum) step of each side and its ratio are printed too, because on a machine
// shared with other jobs PyTorch's OpenMP barriers suffer more from a descheduled thread than
// m2kd's pool does, and the best step shows each side's speed with the least interference.
//
//   node benchmarks/compare_train.js [--rounds 10] [--steps 3] [--conv-rounds 5] [--conv-steps 4]
//                                    [--threads 2] [--no-conv] [--batch 128]
// Needs the built project (npm install / npx tsc -p .) and /usr/bin/python3 with PyTorch.
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const readline = require('readline');

const root = path.resolve(__dirname, '..');
const m2kd = require(path.join(root, 'dist', 'src'));
const { bench, native, Tensor, Rng, runtimeInfo, setThreads } = m2kd;

function parseArgs(argv) {
  const o = { rounds: 10, steps: 3, convRounds: 5, convSteps: 4, threads: 2, conv: true, batch: 128 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--rounds') o.rounds = num();
    else if (a === '--steps') o.steps = num();
    else if (a === '--conv-rounds') o.convRounds = num();
    else if (a === '--conv-steps') o.convSteps = num();
    else if (a === '--threads') o.threads = num();
    else if (a === '--batch') o.batch = num();
    else if (a === '--no-conv') o.conv = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const median = bench.median;
function timeSteps(fn, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

/** The torch server: send a command line, get one JSON line back. */
class TorchServer {
  constructor(threads) {
    const env = { ...process.env, M2KD_TORCH_THREADS: String(threads) };
    // torch_train.py sets up its own environment (ISA, OMP threads, malloc) by re-executing itself
    this.child = spawn('/usr/bin/python3', [path.join(__dirname, 'torch_train.py'), '--server'], {
      cwd: root,
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.waiting = [];
    this.lines = [];
    this.exited = null;
    readline.createInterface({ input: this.child.stdout }).on('line', (l) => {
      const w = this.waiting.shift();
      if (w) w.resolve(l);
      else this.lines.push(l);
    });
    this.child.on('exit', (code, sig) => {
      this.exited = `torch server exited (code ${code}, signal ${sig})`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.exited));
    });
  }
  async ask(cmd) {
    if (this.exited) throw new Error(this.exited);
    const line = await new Promise((resolve, reject) => {
      if (this.lines.length) return resolve(this.lines.shift());
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(cmd + '\n');
    });
    const r = JSON.parse(line);
    if (r.error) throw new Error(`torch server: '${cmd}': ${r.error}`);
    return r;
  }
  close() {
    if (!this.exited) this.child.stdin.end('quit\n');
  }
}

/** Our conv kernels on one shape, timed per call (like bench.benchConv, but step by step). */
class OurConv {
  constructor(s) {
    const rng = new Rng(3);
    const oh = Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1;
    const ow = Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1;
    this.name = s.name;
    this.x = Tensor.fromArray(rng.normal(s.n * s.c * s.h * s.w), [s.n, s.c, s.h, s.w]);
    this.w = Tensor.fromArray(rng.normal(s.o * s.c * s.k * s.k, 0, 0.1), [s.o, s.c, s.k, s.k]);
    this.y = Tensor.empty([s.n, s.o, oh, ow]);
    this.dy = Tensor.fromArray(rng.normal(this.y.size), this.y.shape);
    this.dx = Tensor.zeros(this.x.shape);
    this.dw = Tensor.zeros(this.w.shape);
    this.dims = [s.n, s.c, s.h, s.w, s.o, s.k, s.k, s.stride, s.pad];
    this.flops = 2 * s.n * s.o * oh * ow * s.c * s.k * s.k;
  }
  fn(dir) {
    const d = this.dims;
    if (dir === 'forward') return () => native.conv2d_forward(this.x.handle, this.w.handle, -1, this.y.handle, ...d);
    if (dir === 'backward_data') return () => native.conv2d_backward_data(this.dy.handle, this.w.handle, this.dx.handle, ...d);
    return () => native.conv2d_backward_weight(this.x.handle, this.dy.handle, this.dw.handle, -1, ...d);
  }
  dispose() {
    for (const t of [this.x, this.w, this.y, this.dy, this.dx, this.dw]) t.dispose();
  }
}

/** Interleaves ours and torch: warm-up both, then rounds x (ours n, torch n). */
async function interleave(ours, torchCmd, warm, rounds, n) {
  ours(warm);
  await torchCmd(warm);
  const a = [], b = [];
  for (let r = 0; r < rounds; r++) {
    // alternate who goes first so neither side always follows the other
    if (r % 2 === 0) {
      a.push(...ours(n));
      b.push(...(await torchCmd(n)));
    } else {
      b.push(...(await torchCmd(n)));
      a.push(...ours(n));
    }
  }
  return { ours: a, torch: b };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  setThreads(o.threads);
  const info = runtimeInfo();
  const ts = new TorchServer(o.threads);
  try {
    const tinfo = await ts.ask('info');
    const wl = new bench.ResNet32Workload(o.batch);
    let train, evl;
    try {
      train = await interleave((n) => timeSteps(() => wl.trainStep(), n), async (n) => (await ts.ask(`train ${n}`)).times, 3, o.rounds, o.steps);
      evl = await interleave((n) => timeSteps(() => wl.evalStep(), n), async (n) => (await ts.ask(`eval ${n}`)).times, 2, o.rounds, o.steps);
    } finally {
      wl.dispose();
    }
    const tr = { ours: median(train.ours), torch: median(train.torch) };
    const ev = { ours: median(evl.ours), torch: median(evl.torch) };
    const best = (a) => Math.min(...a);
    const result = {
      command: `node benchmarks/compare_train.js ${process.argv.slice(2).join(' ')}`.trim(),
      batch: o.batch,
      timed_steps_per_side: { train: train.ours.length, eval: evl.ours.length, conv: o.conv ? o.convRounds * o.convSteps : 0 },
      ours: { threads: info.threads, isa: info.isa, engine: 'm2kd' },
      torch: { version: tinfo.torch, threads: tinfo.threads, isa: tinfo.isa, mkldnn: tinfo.mkldnn, memory_format: tinfo.memory_format, malloc: tinfo.malloc, gomp_spincount: tinfo.gomp_spincount },
      train: {
        ours_img_s: o.batch / tr.ours,
        torch_img_s: o.batch / tr.torch,
        ours_step_ms: tr.ours * 1e3,
        torch_step_ms: tr.torch * 1e3,
        ratio_img_s: tr.torch / tr.ours,
        ours_best_ms: best(train.ours) * 1e3,
        torch_best_ms: best(train.torch) * 1e3,
        ratio_best_img_s: best(train.torch) / best(train.ours),
      },
      eval: {
        ours_img_s: o.batch / ev.ours,
        torch_img_s: o.batch / ev.torch,
        ours_step_ms: ev.ours * 1e3,
        torch_step_ms: ev.torch * 1e3,
        ratio_img_s: ev.torch / ev.ours,
        ours_best_ms: best(evl.ours) * 1e3,
        torch_best_ms: best(evl.torch) * 1e3,
        ratio_best_img_s: best(evl.torch) / best(evl.ours),
      },
      conv: [],
    };
    if (o.conv) {
      const shapes = bench.resnet32ConvShapes(o.batch);
      for (let i = 0; i < shapes.length; i++) {
        const oc = new OurConv(shapes[i]);
        const row = { shape: shapes[i].name, gflop: oc.flops / 1e9 };
        try {
          for (const dir of ['forward', 'backward_data', 'backward_weight']) {
            const f = oc.fn(dir);
            const r = await interleave((n) => timeSteps(f, n), async (n) => (await ts.ask(`conv ${i} ${dir} ${n}`)).times, 2, o.convRounds, o.convSteps);
            const ours = oc.flops / median(r.ours) / 1e9, torch = oc.flops / median(r.torch) / 1e9;
            const bo = oc.flops / Math.min(...r.ours) / 1e9, bt = oc.flops / Math.min(...r.torch) / 1e9;
            row[dir] = { ours_gflops: ours, torch_gflops: torch, ratio: ours / torch, ours_best_gflops: bo, torch_best_gflops: bt, ratio_best: bo / bt };
          }
        } finally {
          oc.dispose();
        }
        result.conv.push(row);
      }
    }
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    ts.close();
  }
}

main().catch((e) => {
  console.error(`compare_train: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
