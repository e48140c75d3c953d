// One writer per run folder: `<dir>/m2kd.lock` holds the owner (pid, host, start time, command)
// as JSON for the whole run. The file is written whole to a private temp name and then hard-linked
// to the lock name, so the lock either does not exist or holds a complete owner (link() fails
// with EEXIST when another process got there first). A lock whose owner is a dead process on this
// host (or a pid reused by a process that started after the lock was taken) is stale and is
// taken over, with a notice through onStale. Release removes the file only while it is still ours,
// and happens on process exit too (signals, errors), through an 'exit' listener.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export interface RunLock {
  readonly path: string;
  release(): void;
}

export const LOCK_FILE = 'm2kd.lock';

function describe(o: LockOwner): string {
  return `pid ${o.pid} on ${o.host}, started ${o.startedAt}${o.command ? `: ${o.command}` : ''}`;
}

export class RunLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: LockOwner,
  ) {
    super(`${dir} is in use by another m2kd run (${describe(owner)}); wait for it to end, stop it, or choose another --out`);
    this.name = 'RunLockedError';
  }
}

function isOwner(v: unknown): v is LockOwner {
  const o = v as LockOwner;
  return !!o && typeof o === 'object' && Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.startedAt === 'string' && typeof o.command === 'string';
}

/** The owner recorded in <dir>/m2kd.lock, or null when there is no lock (or it is unreadable). */
export function readRunLock(dir: string): LockOwner | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as unknown;
    return isOwner(v) ? v : null;
  } catch {
    return null;
  }
}

/** Start time (ms since the epoch) of a live process on this host from /proc, or null if unknown. */
function processStartMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 of stat: starttime, in clock ticks since boot
    const btime = /btime (\d+)/.exec(fs.readFileSync('/proc/stat', 'utf8'));
    if (!btime || !Number.isFinite(ticks)) return null;
    return (Number(btime[1]) + ticks / 100) * 1000; // USER_HZ is 100 on every Linux ABI
  } catch {
    return null;
  }
}

/** True when the owner is certainly gone: same host, and its pid is dead or now names a younger process. */
export function isStale(o: LockOwner): boolean {
  if (o.host !== os.hostname()) return false; // another machine (shared file system): cannot tell
  if (o.pid === process.pid) return false;
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // EPERM: alive, owned by another user
  }
  const started = processStartMs(o.pid);
  const taken = Date.parse(o.startedAt);
  // the pid was reused: the process that holds it now started well after the lock was taken
  return started !== null && Number.isFinite(taken) && started > taken + 5000;
}

function tryLink(tmp: string, file: string): boolean {
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Takes <dir>/m2kd.lock for the whole run; throws RunLockedError naming the live owner; takes over a
 * stale lock (dead pid on this host) and calls onStale with the old owner.
 */
export function acquireRunLock(dir: string, opts: { onStale?: (old: LockOwner) => void; command?: string } = {}): RunLock {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`output folder ${dir} is not writable: ${(e as Error).message}`);
  }
  const file = path.join(dir, LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
    command: opts.command ?? process.argv.slice(1).join(' '),
  };
  const tmp = path.join(dir, `.${LOCK_FILE}.tmp-${process.pid}-${Date.now()}`);
  try {
    fs.writeFileSync(tmp, JSON.stringify(me) + '\n');
  } catch (e) {
    throw new Error(`cannot write the lock ${file}: ${(e as Error).message}`);
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (tryLink(tmp, file)) return holdLock(file, me);
      const owner = readRunLock(dir);
      if (owner && !isStale(owner)) throw new RunLockedError(dir, owner);
      if (!owner) {
        // unreadable: a lock being written by a foreign tool, or garbage; only an old one is taken over
        let age = 0;
        try {
          age = Date.now() - fs.statSync(file).mtimeMs;
        } catch {
          continue; // gone meanwhile: try again
        }
        if (age < 10_000) throw new Error(`${file} exists but is unreadable; if no m2kd run uses ${dir}, delete it`);
      }
      // move the stale lock aside (rename is atomic: of two racing takers only one gets it)
      const aside = path.join(dir, `.${LOCK_FILE}.stale-${process.pid}-${Date.now()}`);
      try {
        fs.renameSync(file, aside);
      } catch {
        continue; // someone else moved it: look again
      }
      const moved = readRunLock(aside);
      if (moved && owner && (moved.pid !== owner.pid || moved.startedAt !== owner.startedAt) && !isStale(moved)) {
        // we moved a lock that a faster taker had just written: give it back and yield to it
        tryLink(aside, file);
        fs.rmSync(aside, { force: true });
        throw new RunLockedError(dir, moved);
      }
      fs.rmSync(aside, { force: true });
      if (owner) opts.onStale?.(owner);
    }
    throw new Error(`cannot take the lock ${file}: other runs keep taking it`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function holdLock(file: string, me: LockOwner): RunLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    const cur = readRunLock(path.dirname(file));
    if (cur && cur.pid === me.pid && cur.startedAt === me.startedAt) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { path: file, release };
}
