// The fuzz worker: runs cases [from, from + count) of the named targets for a seed, one at a time,
// and reports each case's start and outcome as a JSON line on stdout (`{"start":...}` then
// `{"case":...}`), so that the driver (scripts/fuzz.js) can tell a crash (the process died inside
// a case) or a hang (a case past its deadline) from a clean error. Usage:
//   node dist/test/fuzz/worker.js <seed> <from> <count> [target,target,...]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { allTargets, runCase } from './targets';
import { FuzzRng, caseSeed } from './mutate';

async function main(): Promise<void> {
  const [seedS, fromS, countS, names] = process.argv.slice(2);
  const seed = Number(seedS), from = Number(fromS), count = Number(countS);
  const targets = allTargets().filter((t) => !names || names.split(',').includes(t.name));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-fuzzw-'));
  try {
    for (const t of targets) await t.prepare(work);
    for (let i = from; i < from + count; i++) {
      const t = targets[i % targets.length];
      const dir = path.join(work, `case-${i}`);
      process.stdout.write(JSON.stringify({ start: i, target: t.name }) + '\n');
      const o = await runCase(t, new FuzzRng(caseSeed(seed, i)), dir);
      fs.rmSync(dir, { recursive: true, force: true });
      process.stdout.write(JSON.stringify({ case: i, target: t.name, kind: o.kind, message: o.kind === 'ok' ? undefined : o.message.slice(0, 2000), rss: process.memoryUsage().rss }) + '\n');
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`fuzz worker failed: ${(e as Error).stack}\n`);
    process.exit(3);
  },
);
