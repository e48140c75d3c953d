// The fuzz harness's fixed seed set, run in the normal suite: a few hundred structure-aware
// mutations of every format m2kd reads (see targets.ts), each of which must end in a correct load
// or a clear error naming the file. Cases run in this process; crashes and hangs are the long
// driver's job (scripts/fuzz.js runs cases in a child with a deadline).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { allTargets, runCase } from './targets';
import { FuzzRng, caseSeed } from './mutate';

const SEED = 20261201;
const PER_TARGET = Number(process.env.M2KD_FUZZ_CASES ?? 60);

t.test('every format: mutated inputs load correctly or fail with a clear error naming the file', async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-fuzz-'));
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  for (const target of allTargets()) {
    await target.prepare(work);
    const counts = { ok: 0, clean: 0, unclear: 0 };
    const bad: string[] = [];
    for (let i = 0; i < PER_TARGET; i++) {
      const dir = path.join(work, `${target.name}-${i}`);
      const o = await runCase(target, new FuzzRng(caseSeed(SEED, i * 31 + target.name.length)), dir);
      counts[o.kind]++;
      if (o.kind === 'unclear') bad.push(`case ${i}: ${o.message.split('\n')[0]}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    t.same(bad, [], `${target.name}: ${counts.ok} loaded, ${counts.clean} clear errors, ${counts.unclear} unclear`);
    t.ok(counts.clean > 0 || target.name === 'cli-args', `${target.name}: the mutations do reach the error paths`);
  }
});
