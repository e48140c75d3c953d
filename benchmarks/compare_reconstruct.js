#!/usr/bin/env node
// m2kd's teacher bank vs PyTorch, interleaved: K past models of a pruned ResNet-32 (+ auxiliary
// head) on one batch. Ours: MaskedTeacherBank (all K in one pass of fused masked convolutions,
// src/bench/reconstruct.ts). PyTorch: benchmarks/torch_reconstruct.py --server, two peers: K
// dense masked models with unfolded BatchNorm ("torch"), and the same with BN folded into the
// convs by torch.jit.freeze + optimize_for_inference ("torch_folded"), one model after the
// other, tuned: channels_last, 2 threads, avx512. The three sides alternate blocks of forwards
// (order rotating every round) so they see the same machine state; after a warm-up, rounds x
// steps timed forwards per side and K. Prints one JSON object: per K the median
// images*models/s of each side, ratio = torch time / ours (> 1: m2kd faster) against each peer,
// the best-forward ratios (least interference on a shared machine), and (unless --no-shapes)
// the fused kernel's useful GFLOP/s per conv shape and density band beside our dense conv.
// --prune-block B builds our masks with block pruning (the dense peers do the same work).
//
//   node benchmarks/compare_reconstruct.js [--k 4,9,19] [--rounds 10] [--steps 2] [--batch 128]
//        [--threads 2] [--prune-block B] [--no-shapes]
// Needs the built project (npm install / npx tsc -p .) and /usr/bin/python3 with PyTorch.
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const readline = require('readline');

const root = path.resolve(__dirname, '..');
const m2kd = require(path.join(root, 'dist', 'src'));
const { bench, runtimeInfo, setThreads } = m2kd;

function parseArgs(argv) {
  const o = { k: [4, 9, 19], rounds: 10, steps: 2, batch: 128, threads: 2, pruneBlock: 1, shapes: true };
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
    else if (a === '--prune-block') o.pruneBlock = num();
    else if (a === '--no-shapes') o.shapes = false;
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
    const wl = new bench.ReconstructWorkload(maxK, o.batch, 0.75, 5, 1, o.pruneBlock);
    await torch.ask(`setup ${maxK}`);
    const results = [];
    for (const K of o.k) {
      const sides = [
        async (n) => timeSteps(() => wl.forward(K), n),
        async (n) => (await torch.ask(`run ${K} ${n}`)).times,
        async (n) => (await torch.ask(`run ${K} ${n} folded`)).times,
      ];
      for (const f of sides) await f(1); // warm-up (builds the bank / the frozen models)
      const t = [[], [], []];
      for (let r = 0; r < o.rounds; r++)
        for (let j = 0; j < 3; j++) {
          const s = (r + j) % 3;
          t[s].push(...(await sides[s](o.steps)));
        }
      wl.releaseBank(K);
      const [ma, mb, mc] = t.map((x) => bench.median(x));
      const ips = (x) => (o.batch * K) / x;
      const row = {
        K,
        mean_density: wl.meanDensity(K),
        ours_images_models_per_s: ips(ma),
        torch_images_models_per_s: ips(mb),
        torch_folded_images_models_per_s: ips(mc),
        ratio: mb / ma,
        ratio_folded: mc / ma,
        ours_ms_per_batch: ma * 1e3,
        torch_ms_per_batch: mb * 1e3,
        torch_folded_ms_per_batch: mc * 1e3,
        best_ratio: Math.min(...t[1]) / Math.min(...t[0]),
        best_ratio_folded: Math.min(...t[2]) / Math.min(...t[0]),
        samples_per_side: t[0].length,
      };
      if (o.shapes) Object.assign(row, bench.shapeRates(wl, K));
      results.push(row);
      process.stderr.write(
        `K=${K}: ours ${ips(ma).toFixed(0)} torch ${ips(mb).toFixed(0)} folded ${ips(mc).toFixed(0)} images*models/s, ratio ${(mb / ma).toFixed(2)} / ${(mc / ma).toFixed(2)}\n`,
      );
    }
    wl.dispose();
    const info = runtimeInfo();
    console.log(
      JSON.stringify(
        {
          benchmark: 'teacher-bank reconstruction, ResNet-32 + aux head, pruning ratio 0.75',
          prune_block: o.pruneBlock,
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
