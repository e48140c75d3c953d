// Derived numbers shared by the tables and the plots: mean ± sample std over orders, per-step
// curves, final accuracies and memory of a method, and "entries" (a method of a run, with a
// display label that stays unique when several runs are compared). Pure functions of RunResults.
import * as path from 'path';
import type { MeanStd, MethodResult, RunResults, StepResult } from '../il/results';

/** Mean and sample standard deviation (n - 1; 0 for a single value; NaN mean for none). */
export function meanStd(values: number[]): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  const v = values.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1);
  return { mean, std: Math.sqrt(v), n };
}

/** One method of one run, as shown in tables and plots. */
export interface MethodEntry {
  /** unique key (the method name, or `<run>:<method>` when comparing runs) */
  key: string;
  /** display label (the method's label, with the run appended when needed to disambiguate) */
  label: string;
  result: MethodResult;
  results: RunResults;
  /** the run folder or file it came from, if any */
  source?: string;
}

/** The methods of one run, in their stored order. */
export function entriesOf(results: RunResults, source?: string): MethodEntry[] {
  return Object.entries(results.methods).map(([key, m]) => ({ key, label: m.label || m.method || key, result: m, results, source }));
}

/**
 * The methods of several runs. A method name that appears in more than one run gets the run
 * appended to its label ("M²KD [run-a]"), using the shortest distinguishing path suffix.
 */
export function entriesOfRuns(runs: { results: RunResults; source: string }[]): MethodEntry[] {
  const count = new Map<string, number>();
  for (const r of runs) for (const k of Object.keys(r.results.methods)) count.set(k, (count.get(k) ?? 0) + 1);
  const tags = runTags(runs.map((r) => r.source));
  const out: MethodEntry[] = [];
  runs.forEach((r, i) => {
    for (const e of entriesOf(r.results, r.source)) {
      if ((count.get(e.key) ?? 0) > 1) {
        e.label = `${e.label} [${tags[i]}]`;
        e.key = `${tags[i]}:${e.key}`;
      }
      out.push(e);
    }
  });
  // identical sources given twice: number the duplicates
  const seen = new Map<string, number>();
  for (const e of out) {
    const c = (seen.get(e.key) ?? 0) + 1;
    seen.set(e.key, c);
    if (c > 1) {
      e.key = `${e.key}#${c}`;
      e.label = `${e.label} #${c}`;
    }
  }
  return out;
}

/** Short names for run sources: the shortest path suffixes (dropping a trailing results.json) that differ. */
export function runTags(sources: string[]): string[] {
  const parts = sources.map((s) => {
    const p = path.resolve(s).split(path.sep).filter(Boolean);
    if (p.length > 1 && p[p.length - 1].toLowerCase().endsWith('.json')) p.pop();
    return p;
  });
  // the same source given twice gets the same tag (entriesOfRuns numbers its duplicates)
  const distinct = [...new Set(parts.map((p) => p.join('/')))].map((k) => k.split('/'));
  const maxLen = Math.max(1, ...parts.map((p) => p.length));
  for (let k = 1; k <= maxLen; k++) {
    const tags = distinct.map((p) => p.slice(-k).join('/'));
    if (new Set(tags).size === tags.length) return parts.map((p) => p.slice(-k).join('/'));
  }
  return parts.map((p) => p.join('/'));
}

/** The number of steps of the longest order. */
export function stepCount(m: MethodResult): number {
  return Math.max(0, ...m.orders.map((o) => o.steps.length));
}

/** Per step index: classes seen (from the first order having that step). */
export function classesSeen(m: MethodResult): number[] {
  const out: number[] = [];
  for (let i = 0; i < stepCount(m); i++) out.push(m.orders.find((o) => o.steps[i])!.steps[i].classes_seen);
  return out;
}

/** Per step index: mean ± std over the orders that reached that step of a step metric. */
export function perStep(m: MethodResult, metric: (s: StepResult) => number): MeanStd[] {
  const out: MeanStd[] = [];
  for (let i = 0; i < stepCount(m); i++) out.push(meanStd(m.orders.filter((o) => o.steps[i]).map((o) => metric(o.steps[i]))));
  return out;
}

/**
 * The metric tables and plots lead with: top-5 when every run says so (the paper's iILSVRC-small
 * protocol), else top-1.
 */
export function headlineOf(entries: MethodEntry[]): 'top1' | 'top5' {
  return entries.length > 0 && entries.every((e) => e.results.protocol.headline === 'top5') ? 'top5' : 'top1';
}

/** The last step of each order. */
export function lastSteps(m: MethodResult): StepResult[] {
  return m.orders.filter((o) => o.steps.length > 0).map((o) => o.steps[o.steps.length - 1]);
}

export function finalTop1(m: MethodResult): MeanStd {
  return meanStd(lastSteps(m).map((s) => s.top1));
}

export function finalTop5(m: MethodResult): MeanStd {
  return meanStd(lastSteps(m).map((s) => s.top5));
}

/** Bytes kept beyond the current model after the last step, mean over orders. */
export function finalMemory(m: MethodResult): number {
  return meanStd(lastSteps(m).map((s) => s.memory.total)).mean;
}

export function finalForgetting(m: MethodResult): MeanStd {
  return meanStd(lastSteps(m).map((s) => s.mean_forgetting));
}

/** 12.34 ± 0.56 (std omitted when there is a single order). */
export function fmtMeanStd(ms: MeanStd, digits = 2): string {
  if (!Number.isFinite(ms.mean)) return '–';
  return ms.n > 1 ? `${ms.mean.toFixed(digits)} ± ${ms.std.toFixed(digits)}` : ms.mean.toFixed(digits);
}

/** Bytes in B / KB / MB / GB (powers of 1000, as the paper's MB). */
export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '–';
  if (s < 60) return `${s.toFixed(1)} s`;
  const r = Math.round(s);
  if (r < 3600) return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s`;
  return `${Math.floor(r / 3600)}h${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`;
}
