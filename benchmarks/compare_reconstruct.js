#!/usr/bin/env node
// m2kd's teacher bank vs PyTorch, interleaved: K past models of a pruned ResNet-32 (+ auxiliary
// head) on one batch. Ours: MaskedTeacherBank (all K in one pass of fused masked convolutions,
// src/bench/reconstruct.ts). PyTorch: benchmarks/torch_reconstruct.py --server (K dense masked
// models with unfolded BatchNorm, one after the other, tuned: channels_last, 2 threads, avx512).
// Both sides alternate blocks of forwards (ours n, torch n, torch n, ours n, ...) so they see the
// same machine state; after a warm-up, rounds x steps timed forwards per side and K. Prints one
// JSON object: per K both sides' median images*models/s, ratio ours/torch (> 1: m2kd faster),
// and the best-forward ratio (least interference on a shared machine).
//
//   node benchmarks/compare_reconstruct.js [--k 4,9,19] [--rounds 10] [--steps 2] [--batch 128] [--threads 2]
// Needs the built project (npm install / npx tsc -p .) and /usr/bin/python3 with PyTorch.
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const readline = require('readline');

const root = path.resolve(__dirname, '..');
const m2kd = require(path.join(root, 'dist', 'src'));
const { bench, runtimeInfo, setThreads } = m2kd;

function parseArgs(argv) {
  const o = { k: [4, 9, 19], rounds: 10, steps: 2, batch: 128, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--k') {
      o.k = String(argv[++i]).split(',').map(Number);
      if (o.k.some((k) => !Number.isInteger(k) || k < 1 || k > 255)) throw new Error('--k needs integers in [1, 255]');
    } else if (a === '--rounds') o.rounds = num();
    else if (a === '--steps') o.steps = num();
    else if (a === '--batch') o.batch = num();
    else if (a === '--threads') o.threads = num();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

class TorchServer {
  constructor(threads, batch) {
    const env = { ...process.env, M2KD_TORCH_THREADS: String(threads) };
    this.child = spawn('/usr/bin/python3', [path.join(__dirname, 'torch_reconstruct.py'), '--server', '--batch', String(batch)], {
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

function timeSteps(fn, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  setThreads(o.threads);
  const maxK = Math.max(...o.k);
  const torch = new TorchServer(o.threads, o.batch);
  try {
    const tinfo = await torch.ask('info');
    const wl = new bench.ReconstructWorkload(maxK, o.batch, 0.75);
    await torch.ask(`setup ${maxK}`);
    const results = [];
    for (const K of o.k) {
      const ours = (n) => timeSteps(() => wl.forward(K), n);
      const theirs = async (n) => (await torch.ask(`run ${K} ${n}`)).times;
      ours(1);
      await theirs(1);
      const a = [], b = [];
      for (let r = 0; r < o.rounds; r++) {
        if (r % 2 === 0) {
          a.push(...ours(o.steps));
          b.push(...(await theirs(o.steps)));
        } else {
          b.push(...(await theirs(o.steps)));
          a.push(...ours(o.steps));
        }
      }
      wl.releaseBank(K);
      const ma = bench.median(a), mb = bench.median(b);
      const ips = (t) => (o.batch * K) / t;
      results.push({
        K,
        mean_density: wl.meanDensity(K),
        ours_images_models_per_s: ips(ma),
        torch_images_models_per_s: ips(mb),
        ratio: mb / ma,
        ours_ms_per_batch: ma * 1e3,
        torch_ms_per_batch: mb * 1e3,
        best_ratio: Math.min(...b) / Math.min(...a),
        samples_per_side: a.length,
      });
      process.stderr.write(`K=${K}: ours ${ips(ma).toFixed(0)} torch ${ips(mb).toFixed(0)} images*models/s, ratio ${(mb / ma).toFixed(2)}\n`);
    }
    wl.dispose();
    const info = runtimeInfo();
    console.log(
      JSON.stringify(
        {
          benchmark: 'teacher-bank reconstruction, ResNet-32 + aux head, pruning ratio 0.75',
          batch: o.batch,
          ours: { threads: info.threads, isa: info.isa },
          torch: tinfo,
          rounds: o.rounds,
          steps_per_round: o.steps,
          results,
        },
        null,
        2,
      ),
    );
  } finally {
    torch.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
