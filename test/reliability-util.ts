// Shared helpers of the reliability tests: a small real `m2kd train` run as a child process,
// waiting for checkpoints, and comparing results.json files on everything but timings.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';

export const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');

export function tmpdir(tag = 'rel'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `m2kd-${tag}-`));
}

/** A small run: 2 steps of 5 digits, 3 epochs + 2 fine-tune epochs, 30 training images per class. */
export function smallArgs(out: string, extra: string[] = []): string[] {
  return ['train', '--method', 'm2kd', '--classes-per-step', '5', '--epochs', '3', '--finetune-epochs', '2', '--train-per-class', '30', '--test-per-class', '10', '--no-plots', '--out', out, ...extra];
}

export const ENV = { ...process.env, M2KD_THREADS: '1' };

export function cliSync(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

export interface Child {
  p: ChildProcess;
  err: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function cliSpawn(args: string[]): Child {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
  return { p, err: () => err, done };
}

/** Resolves once pred() holds (polled every 20 ms), or rejects after ms. */
export async function waitFor(pred: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The numbers of a results.json that must not depend on interruptions (everything but timings). */
export function resultNumbers(out: string): unknown {
  const r = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {
    methods: Record<string, { orders: { steps: Record<string, unknown>[] }[]; avg_incremental_top1: unknown }>;
  };
  const strip = (s: Record<string, unknown>) => {
    const { seconds: _s, ...rest } = s;
    return rest;
  };
  return Object.fromEntries(Object.entries(r.methods).map(([m, v]) => [m, { avg: v.avg_incremental_top1, orders: v.orders.map((o) => o.steps.map(strip)) }]));
}

/** Every path under dir (relative), for checking what a run left behind. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}
