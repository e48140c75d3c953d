// Kill at any instant: a small `m2kd train` run is SIGKILLed again and again (at random times,
// and right as a checkpoint folder is being written), resumed each time, until it finishes; the
// final results.json must equal an uninterrupted run's (everything but timings), and nothing
// stale may remain. Rounds of fresh runs repeat until M2KD_KILLS kills were made (default 6).
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { FuzzRng } from './fuzz/mutate';
import { tmpdir, smallArgs, cliSpawn, cliSync, resultNumbers, listTree, waitFor } from './reliability-util';

const KILLS = Number(process.env.M2KD_KILLS ?? 6);

t.test(`${KILLS} SIGKILLs at random instants and inside checkpoint writes; resumed runs end identical`, async (t) => {
  const ref = tmpdir('kill');
  const t0 = Date.now();
  const r0 = cliSync(smallArgs(ref));
  t.equal(r0.code, 0, 'uninterrupted run');
  const runMs = Date.now() - t0;
  const expected = resultNumbers(ref);
  const rng = new FuzzRng(Number(process.env.M2KD_KILL_SEED ?? 13));
  let kills = 0, inWrite = 0, rounds = 0;
  while (kills < KILLS) {
    rounds++;
    const out = tmpdir('kill');
    const ck = path.join(out, 'checkpoints', 'm2kd');
    for (let attempt = 0; attempt < 50; attempt++) {
      const resume = fs.existsSync(path.join(out, 'checkpoints'));
      const c = cliSpawn(resume ? smallArgs(out, ['--resume']) : smallArgs(out));
      let target: 'write' | 'time' = rng.chance(0.5) ? 'write' : 'time';
      const delay = 300 + rng.int(Math.max(500, runMs / 2));
      const start = Date.now();
      let exited = false;
      void c.done.then(() => (exited = true));
      const tmp = () => path.join(ck, `order-0.tmp-${c.p.pid}`);
      // poll fast: a write is caught while the temp folder of this process exists
      await waitFor(() => {
        if (exited) return true;
        if (target === 'write') {
          if (fs.existsSync(tmp())) return true;
          if (Date.now() - start > runMs) target = 'time';
        }
        return target === 'time' && Date.now() - start > delay;
      }, 10 * 60_000);
      if (exited || kills >= KILLS) {
        const r = await c.done;
        t.equal(r.code, 0, `round ${rounds} ended by itself: ${c.err().slice(-200)}`);
        break;
      }
      const wasWriting = fs.existsSync(tmp());
      c.p.kill('SIGKILL');
      await c.done;
      kills++;
      if (wasWriting) inWrite++;
    }
    t.same(resultNumbers(out), expected, `round ${rounds}: the final results equal the uninterrupted run`);
    t.same(listTree(out).filter((p) => /tmp|\.old$|m2kd\.lock/.test(p)), [], `round ${rounds}: no stale temp folder or lock left`);
  }
  t.ok(inWrite >= 1 || KILLS < 2, `at least one kill landed inside a checkpoint write (${inWrite})`);
  t.comment(`kill-at-any-instant: ${kills} kills in ${rounds} rounds, ${inWrite} inside checkpoint writes, all resumed runs identical`);
});
