// Thread counts. Kernels at 1 and 3 threads: ops-backward-large.test.js rerun in child
// processes with M2KD_THREADS set. And setThreads() after a parallel op must not crash: run
// in child processes so that a crash or hang fails this test instead of the whole suite.
import t from 'tap';
import { spawnSync } from 'child_process';
import * as path from 'path';

const engine = path.resolve(__dirname, '..', 'src', 'engine');

for (const threads of ['1', '3'])
  t.test(`large backward vs reference with M2KD_THREADS=${threads}`, async (t) => {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'ops-backward-large.test.js')], {
      env: { ...process.env, M2KD_THREADS: threads, TAP: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const failures = (r.stdout || '').split('\n').filter((l) => /^\s*not ok/.test(l));
    t.equal(r.status, 0, `child exit ${r.status} signal ${r.signal}; ${failures.slice(0, 5).join(' | ')}`);
  });

// Repro: a parallel op (fill of 100000 floats) and then setThreads(n >= 2); then a parallel op.
const script = `
const e = require(${JSON.stringify(engine)});
const x = e.Tensor.full([100000], 1);
e.setThreads(Number(process.argv[1]));
const s = e.ops.sum(e.Tensor.full([100000], 0.5)).item();
process.stdout.write(String(s));
`;

t.test('setThreads after a parallel op (child processes)', async (t) => {
  for (const n of [2, 3]) {
    let bad = 0, detail = '';
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(process.execPath, ['-e', script, String(n)], { encoding: 'utf8', timeout: 20_000 });
      if (r.status !== 0 || r.stdout !== '50000') {
        bad++;
        detail = `exit ${r.status} signal ${r.signal} stdout '${r.stdout}'`;
      }
    }
    t.equal(bad, 0, `setThreads(${n}) after Tensor.full([100000]): ${bad}/10 runs failed (${detail})`);
  }
});
