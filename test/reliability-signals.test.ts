// Signals: SIGTERM / SIGINT / SIGUSR1 stop `m2kd train` at the next batch, keep the last
// checkpoint, print the resume command and exit 143 / 130 / 138; the lock is released and no temp
// folder stays; a second Ctrl-C exits at once; the printed command resumes to the numbers of an
// uninterrupted run. Also: stale temp folders of a killed run are removed at the next start.
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { readRunLock } from '../src/io/lock';
import { tmpdir, smallArgs, cliSpawn, cliSync, waitFor, resultNumbers, listTree } from './reliability-util';

const stateOf = (out: string) => path.join(out, 'checkpoints', 'm2kd', 'order-0', 'state.json');

async function stopAfterFirstCheckpoint(sig: NodeJS.Signals, out: string, twice = false) {
  const c = cliSpawn(smallArgs(out));
  await waitFor(() => fs.existsSync(stateOf(out)));
  c.p.kill(sig);
  if (twice) {
    await waitFor(() => /stopping at the end of the current batch/.test(c.err()), 30_000).catch(() => {});
    c.p.kill(sig);
  }
  const r = await c.done;
  return { ...r, err: c.err() };
}

let reference = '';
t.before(() => {
  reference = tmpdir('sig');
  const r = cliSync(smallArgs(reference));
  if (r.code !== 0) throw new Error(`reference run failed: ${r.err}`);
});

for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGUSR1', 138]] as const) {
  t.test(`${sig}: checkpoint kept, resume line printed, exit ${code}, resumes to the same numbers`, async (t) => {
    const out = tmpdir('sig');
    const r = await stopAfterFirstCheckpoint(sig, out);
    t.equal(r.code, code, `exit code ${r.code}`);
    t.match(r.err, new RegExp(`stopped by ${sig}; the last checkpoint \\(m2kd · order 1 · .*\\) is in .*order-0\\. Continue with:`));
    const line = r.err.split('\n').find((l) => /^\s+m2kd train .*--resume$/.test(l));
    t.ok(line, 'prints the resume command');
    t.notMatch(r.err, /\n\s+at /, 'no stack trace');
    t.equal(readRunLock(out), null, 'lock released');
    t.same(listTree(out).filter((p) => /tmp|\.old$|m2kd\.lock/.test(p)), [], 'no temp folder, no lock left');
    t.ok(fs.existsSync(stateOf(out)), 'the checkpoint is in place');
    const args = line!.trim().split(/\s+/).slice(1);
    const again = cliSync(args);
    t.equal(again.code, 0, `resumed: ${again.err.slice(-200)}`);
    t.same(resultNumbers(out), resultNumbers(reference), 'same numbers as the uninterrupted run');
  });
}

t.test('a second Ctrl-C exits at once with the stop\'s code (no waiting for the batch)', async (t) => {
  // in a child whose event loop is busy: the first SIGINT only requests the stop, the second exits
  // (also after dispose(), which keeps the handlers once a stop is under way)
  const mod = path.resolve(__dirname, '..', 'src', 'cli', 'signals.js');
  const code = `const s = require(${JSON.stringify(mod)}); const c = s.installStopHandlers(() => process.stdout.write('first '));
    process.kill(process.pid, 'SIGINT'); setTimeout(() => { c.dispose(); process.stdout.write(c.signal.aborted ? 'aborted ' : ''); process.kill(process.pid, 'SIGINT'); }, 200);
    setTimeout(() => process.stdout.write('never'), 20000);`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 15000 });
  t.equal(r.status, 130, `exit ${r.status} ${r.signal ?? ''}`);
  t.equal(r.stdout, 'first aborted ', 'the first signal aborts, the second exits before the timers');
  t.match(r.stderr, /SIGINT again: exiting now/);
});

t.test('m2kd train: Ctrl-C twice exits 130, lock released, the run still resumes', async (t) => {
  const out = tmpdir('sig');
  const r = await stopAfterFirstCheckpoint('SIGINT', out, true);
  // 130 from the second-signal handler; or, when the second Ctrl-C lands after the stop has already
  // finished and the process is inside its final exit (Node's handlers are gone by then), death
  // by SIGINT: either way nothing is left half-written, as the checks below show
  t.ok(r.code === 130 || (r.code === null && r.signal === 'SIGINT'), `exit ${r.code} / ${r.signal}`);
  t.equal(readRunLock(out), null, 'lock released by the exit listener');
  const again = cliSync(smallArgs(out, ['--resume']));
  t.equal(again.code, 0, again.err.slice(-200));
  t.same(resultNumbers(out), resultNumbers(reference));
});

t.test('stale temp folders and files of a killed run are removed at the next start', async (t) => {
  const out = tmpdir('sig');
  const c = cliSpawn(smallArgs(out));
  await waitFor(() => fs.existsSync(stateOf(out)));
  c.p.kill('SIGKILL');
  await c.done;
  // what a kill inside writes leaves: a half-built state folder, an atomic-write temp, a swapped-out folder
  const ck = path.join(out, 'checkpoints', 'm2kd');
  const dead = 2 ** 22 + 12345; // above pid_max's default: never a live pid
  fs.mkdirSync(path.join(ck, `order-0.tmp-${dead}`));
  fs.writeFileSync(path.join(ck, `order-0.tmp-${dead}`, 'model.safetensors'), 'half');
  fs.writeFileSync(path.join(out, `.results.json.tmp-${dead}-1700000000000`), '{"trunc');
  fs.cpSync(path.join(ck, 'order-0'), path.join(ck, 'order-0.old'), { recursive: true });
  const r = cliSync(smallArgs(out, ['--resume']));
  t.equal(r.code, 0, r.err.slice(-300));
  t.match(r.err, /taking over the lock of .* which is no longer running/, 'the killed run\'s lock is taken over');
  t.match(r.err, /removed 3 temporary file\(s\) left by an interrupted run: .*order-0\.tmp-/);
  t.same(listTree(out).filter((p) => /tmp|\.old$|m2kd\.lock/.test(p)), [], 'nothing stale left');
  t.same(resultNumbers(out), resultNumbers(reference));
});
