// One writer per run folder: the lock file, refusal naming the live owner, take-over of a stale
// lock (dead pid, reused pid) with a notice, release on exit, and `m2kd train` refusing a folder
// that another run holds.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, spawn } from 'child_process';
import { acquireRunLock, readRunLock, RunLockedError, LockOwner, isStale } from '../src/io/lock';
import { tmpdir, cliSync, smallArgs } from './reliability-util';

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

t.test('acquire, refuse a second taker naming the owner, release', async (t) => {
  const dir = tmpdir('lock');
  const lock = acquireRunLock(dir, { command: 'm2kd train --out x' });
  t.equal(lock.path, path.join(dir, 'm2kd.lock'));
  const owner = readRunLock(dir)!;
  t.match(owner, { pid: process.pid, host: os.hostname(), command: 'm2kd train --out x' });
  t.ok(Number.isFinite(Date.parse(owner.startedAt)), 'start time is an ISO date');
  const err = t.throws(() => acquireRunLock(dir)) as RunLockedError;
  t.ok(err instanceof RunLockedError, 'RunLockedError');
  t.same(err.owner, owner, 'names the owner');
  t.match(err.message, new RegExp(`pid ${process.pid} on ${os.hostname()}`));
  lock.release();
  t.equal(readRunLock(dir), null, 'released');
  lock.release(); // idempotent
  const again = acquireRunLock(dir);
  again.release();
  t.same(fs.readdirSync(dir), [], 'no temp files left');
});

t.test('a stale lock (dead pid on this host) is taken over with a notice', async (t) => {
  const dir = tmpdir('lock');
  const old: LockOwner = { pid: deadPid(), host: os.hostname(), startedAt: new Date(Date.now() - 60_000).toISOString(), command: 'm2kd train' };
  fs.writeFileSync(path.join(dir, 'm2kd.lock'), JSON.stringify(old));
  t.ok(isStale(old));
  const seen: LockOwner[] = [];
  const lock = acquireRunLock(dir, { onStale: (o) => seen.push(o) });
  t.same(seen, [old], 'onStale got the old owner');
  t.equal(readRunLock(dir)!.pid, process.pid);
  lock.release();
});

t.test('a pid reused by a younger process is stale; another host is never taken over', async (t) => {
  const reused: LockOwner = { pid: process.pid === 1 ? 2 : 1, host: os.hostname(), startedAt: new Date(Date.now() + 3600_000).toISOString(), command: '' };
  // pid 1 started long before "now + 1 h" would be: not stale; a lock taken long before pid 1 started is
  t.notOk(isStale(reused), 'a process older than the lock still owns it');
  if (fs.existsSync('/proc/1/stat')) {
    const ancient = { ...reused, startedAt: '2000-01-01T00:00:00.000Z' };
    t.ok(isStale(ancient), 'pid 1 started after a lock of the year 2000: reused pid');
  }
  const remote: LockOwner = { pid: deadPid(), host: `${os.hostname()}-elsewhere`, startedAt: new Date().toISOString(), command: '' };
  t.notOk(isStale(remote), 'a lock of another host is live');
  const dir = tmpdir('lock');
  fs.writeFileSync(path.join(dir, 'm2kd.lock'), JSON.stringify(remote));
  t.throws(() => acquireRunLock(dir), RunLockedError);
});

t.test('a garbage lock file: refused while fresh, taken over when old', async (t) => {
  const dir = tmpdir('lock');
  const f = path.join(dir, 'm2kd.lock');
  fs.writeFileSync(f, '{"pid": 12');
  t.throws(() => acquireRunLock(dir), /unreadable/);
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(f, past, past);
  const lock = acquireRunLock(dir);
  t.equal(readRunLock(dir)!.pid, process.pid);
  lock.release();
});

t.test('the lock is released when the process exits', async (t) => {
  const dir = tmpdir('lock');
  const mod = path.resolve(__dirname, '..', 'src', 'io', 'lock.js');
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(mod)}).acquireRunLock(${JSON.stringify(dir)}); setTimeout(() => { throw new Error('boom') }, 10)`], { encoding: 'utf8' });
  t.not(r.status, 0, 'child died of an uncaught error');
  t.equal(readRunLock(dir), null, 'lock released by the exit listener');
});

t.test('many processes racing for one folder: exactly one wins', async (t) => {
  const dir = tmpdir('lock');
  const mod = path.resolve(__dirname, '..', 'src', 'io', 'lock.js');
  const code = `const l = require(${JSON.stringify(mod)}); try { l.acquireRunLock(${JSON.stringify(dir)}); process.stdout.write('won'); setTimeout(() => {}, 1500); } catch (e) { process.stdout.write(e.name); }`;
  const kids = Array.from({ length: 6 }, () => spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const outs = await Promise.all(kids.map((k) => new Promise<string>((res) => {
    let s = '';
    k.stdout!.on('data', (d) => (s += d));
    k.on('exit', () => res(s));
  })));
  t.equal(outs.filter((o) => o === 'won').length, 1, `one winner: ${outs.join(' ')}`);
  t.equal(outs.filter((o) => o === 'RunLockedError').length, 5, 'the others are refused');
});

t.test('m2kd train refuses a run folder held by a live run, naming the owner', async (t) => {
  const out = tmpdir('lock');
  const lock = acquireRunLock(out, { command: 'm2kd train --out elsewhere' });
  const r = cliSync(smallArgs(out));
  lock.release();
  t.equal(r.code, 1);
  t.match(r.err, new RegExp(`m2kd: .* is in use by another m2kd run \\(pid ${process.pid} on ${os.hostname()}, started .*: m2kd train --out elsewhere\\)`));
  t.notOk(fs.existsSync(path.join(out, 'checkpoints')), 'wrote nothing');
});

t.test('m2kd train takes over a stale lock with a notice and releases its own at the end', async (t) => {
  const out = tmpdir('lock');
  fs.writeFileSync(path.join(out, 'm2kd.lock'), JSON.stringify({ pid: deadPid(), host: os.hostname(), startedAt: new Date().toISOString(), command: 'm2kd train' }));
  const r = cliSync(['train', '--method', 'ft', '--classes-per-step', '5', '--epochs', '1', '--train-per-class', '10', '--test-per-class', '5', '--no-plots', '--out', out]);
  t.equal(r.code, 0, r.err.slice(-300));
  t.match(r.err, /taking over the lock of .* from pid \d+ on .*which is no longer running/);
  t.equal(readRunLock(out), null, 'released at the end');
  t.ok(fs.existsSync(path.join(out, 'results.json')));
});
