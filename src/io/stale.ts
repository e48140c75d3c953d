// Leftovers of killed writes: `<name>.tmp-<pid>` folders (run-state checkpoints being built),
// `.<name>.tmp-<pid>-<ms>` files (atomic writes), lock temp/aside files, and `<name>.old` folders
// left by a swap interrupted after its new folder was in place. A leftover is stale when its
// writer is not this process and either the caller holds the run folder's lock (then no other
// writer can exist) or the writer's pid is dead on this host. Nothing else is ever removed.
import * as fs from 'fs';
import * as path from 'path';

const TEMP = /\.tmp-(\d+)(?:-\d+)?$/;
const LOCK_TEMP = /^\.m2kd\.lock\.(?:tmp|stale)-(\d+)-\d+$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleOptions {
  /** the caller holds the folder's run lock: every writer other than this process is gone */
  locked?: boolean;
  /** how deep to look below dir (default 4: <out>/checkpoints/<method>/<order>/file) */
  depth?: number;
  /** only hidden temporaries (`.<name>.tmp-<pid>-<ms>` of atomic writes): for folders m2kd shares with others */
  hiddenOnly?: boolean;
}

/** Removes stale temporaries under dir; returns the removed paths. */
export function removeStaleTemps(dir: string, opts: StaleOptions = {}): string[] {
  const removed: string[] = [];
  const stale = (pid: number) => pid !== process.pid && (opts.locked || !alive(pid));
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    for (const e of entries) {
      const p = path.join(d, e.name);
      const m = opts.hiddenOnly && !e.name.startsWith('.') ? null : TEMP.exec(e.name) ?? LOCK_TEMP.exec(e.name);
      let drop = false;
      if (m) drop = stale(Number(m[1]));
      else if (!opts.hiddenOnly && e.isDirectory() && e.name.endsWith('.old')) {
        // an interrupted swap: the new folder is complete, so the old one is garbage
        const base = e.name.slice(0, -4);
        drop = names.has(base) && fs.existsSync(path.join(d, base, 'state.json')) && (opts.locked ?? false);
      }
      if (drop) {
        try {
          fs.rmSync(p, { recursive: true, force: true });
          removed.push(p);
        } catch {
          /* left for the next start */
        }
      } else if (e.isDirectory() && !e.isSymbolicLink() && depth > 0) walk(p, depth - 1);
    }
  };
  walk(dir, opts.depth ?? 4);
  return removed;
}
