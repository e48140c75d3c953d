#!/usr/bin/env node
// The long fuzz driver: runs any number of cases of every format (test/fuzz/targets.ts) in child
// worker processes, each case with a deadline, and prints cases tried / correct loads / clear
// errors / unclear errors / crashes / hangs. A crash is a worker that died inside a case (a
// signal or an exit without a result); a hang is a case past its deadline (the worker is killed).
// After either, a fresh worker continues with the next case. Build first (npx tsc -p tsconfig.json).
//   node scripts/fuzz.js [--cases N (100000)] [--seed S (1)] [--workers W (2)] [--deadline-ms D (20000)]
//                        [--targets a,b] [--chunk C (2000)] [--json]
// Run it niced on a shared machine: nice -n 19 node scripts/fuzz.js ...
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const fs = require('fs');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const cases = Number(arg('cases', 100000));
const seed = Number(arg('seed', 1));
const workers = Number(arg('workers', 2));
const deadline = Number(arg('deadline-ms', 20000));
const chunk = Number(arg('chunk', 2000));
const targets = arg('targets', '');
const json = process.argv.includes('--json');
const worker = path.resolve(__dirname, '..', 'dist', 'test', 'fuzz', 'worker.js');
if (!fs.existsSync(worker)) {
  console.error(`fuzz: ${worker} is missing: run npx tsc -p tsconfig.json first`);
  process.exit(2);
}

const tally = { cases: 0, ok: 0, clean: 0, unclear: 0, crashes: 0, hangs: 0 };
const byTarget = {};
const findings = [];
const t0 = Date.now();
let maxRss = 0;
let next = 0;

function record(target, kind, message) {
  const b = (byTarget[target] = byTarget[target] || { cases: 0, ok: 0, clean: 0, unclear: 0, crashes: 0, hangs: 0 });
  b.cases++;
  b[kind]++;
  tally.cases++;
  tally[kind]++;
  if (kind !== 'ok' && kind !== 'clean' && findings.length < 50) findings.push({ target, kind, message });
}

/** Runs cases [from, to) in workers until all are done, restarting after a crash or hang. */
function runRange(from, to) {
  return new Promise((resolve) => {
    if (stopping) return resolve();
    const p = spawn(process.execPath, ['--max-old-space-size=1024', worker, String(seed), String(from), String(to - from), targets], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let buf = '';
    let current = null; // { case, target, started }
    let stderr = '';
    let killedForHang = false;
    const timer = setInterval(() => {
      if (current && Date.now() - current.started > deadline) {
        killedForHang = true;
        p.kill('SIGKILL');
      }
    }, 250);
    p.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    p.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        if (m.start !== undefined) current = { case: m.start, target: m.target, started: Date.now() };
        else if (m.case !== undefined) {
          record(m.target, m.kind, m.message);
          maxRss = Math.max(maxRss, m.rss || 0);
          current = null;
        }
      }
    });
    p.on('exit', (code, signal) => {
      clearInterval(timer);
      children.delete(p);
      if (stopping) return resolve(); // killed by our own stop: not a finding
      if (current) {
        // died inside a case: a hang (our deadline) or a crash; go on after it
        record(current.target, killedForHang ? 'hangs' : 'crashes', `case ${current.case} (seed ${seed}): ${killedForHang ? `past ${deadline} ms` : `exit ${code} ${signal || ''}`} ${stderr.slice(-800)}`);
        const resumeAt = current.case + 1;
        if (resumeAt < to) return runRange(resumeAt, to).then(resolve);
      } else if (code !== 0) {
        findings.push({ target: 'worker', kind: 'crashes', message: `worker exit ${code} ${signal || ''}: ${stderr.slice(-800)}` });
        tally.crashes++;
      }
      resolve();
    });
  });
}

function progress(final) {
  const s = (Date.now() - t0) / 1000;
  const line = `${tally.cases} cases in ${s.toFixed(0)} s: ${tally.ok} loaded, ${tally.clean} clear errors, ${tally.unclear} unclear errors, ${tally.crashes} crashes, ${tally.hangs} hangs (max worker RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB)`;
  if (!json || !final) console.error(line);
}

async function pool() {
  const lanes = [];
  for (let w = 0; w < workers; w++)
    lanes.push((async () => {
      while (next < cases) {
        const from = next;
        next = Math.min(cases, next + chunk);
        await runRange(from, next);
        progress(false);
      }
    })());
  await Promise.all(lanes);
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    // stop handing out cases; the running chunks end at their next case boundary
    if (stopping) process.exit(1);
    stopping = true;
    next = cases;
    for (const p of children) p.kill('SIGKILL');
  });
const children = new Set();

pool().then(() => {
  progress(true);
  if (stopping) console.log(`stopped early by a signal after ${tally.cases} cases`);
  const out = { seed, ...tally, seconds: (Date.now() - t0) / 1000, max_worker_rss: maxRss, by_target: byTarget, findings };
  if (json) console.log(JSON.stringify(out));
  else {
    for (const [k, v] of Object.entries(byTarget)) console.log(`${k.padEnd(16)} ${JSON.stringify(v)}`);
    for (const f of findings) console.log(`${f.kind} in ${f.target}: ${f.message.split('\n')[0]}`);
    console.log(`cases tried ${tally.cases}, correct loads ${tally.ok}, clean errors ${tally.clean}, unclear errors ${tally.unclear}, crashes ${tally.crashes}, hangs ${tally.hangs}`);
  }
  process.exit(tally.unclear + tally.crashes + tally.hangs > 0 ? 1 : 0);
});
