// Merges the finished cells of a sweep into one RunResults: one method entry per grid row
// (method × ratio × memory), its class orders gathered from the cells in order, mean ± std over
// them as in a single run. Cells that are not done are left out and named, so a partial sweep
// still gives its tables (over the orders it has).
import * as path from 'path';
import { meanStd } from '../il/metrics';
import type { RunResults, MethodResult, OrderResult } from '../il/results';
import { readManifest, cellDir, SweepManifest } from './grid';
import { cellResults, cellSteps } from './status';

export interface MergedSweep {
  manifest: SweepManifest;
  /** null when no cell is done yet */
  results: RunResults | null;
  done: string[];
  missing: string[];
}

export function mergeSweep(dir: string): MergedSweep {
  const m = readManifest(dir);
  const rows = new Map<string, { label: string; config: Record<string, unknown>; orders: { index: number; order: OrderResult }[] }>();
  const done: string[] = [];
  const missing: string[] = [];
  let first: RunResults | null = null;
  let seconds = 0;
  for (const c of m.cells) {
    const r = cellResults(cellDir(dir, c.id), c, cellSteps(m, c));
    if (!rows.has(c.name)) rows.set(c.name, { label: c.label, config: {}, orders: [] });
    if (!r) {
      missing.push(c.id);
      continue;
    }
    done.push(c.id);
    first ??= r;
    seconds += r.seconds;
    const mr = r.methods[c.method];
    const row = rows.get(c.name)!;
    row.config = { ...mr.config, method: { ...(mr.config.method as object), name: c.name, label: c.label } };
    row.orders.push({ index: c.order_index, order: mr.orders[0] });
  }
  if (!first) return { manifest: m, results: null, done, missing };
  const methods: Record<string, MethodResult> = {};
  for (const [name, row] of rows) {
    if (row.orders.length === 0) continue;
    const orders = row.orders.sort((a, b) => a.index - b.index).map((o) => o.order);
    const steps = Math.min(...orders.map((o) => o.steps.length));
    const perStep = [];
    for (let s = 0; s < steps; s++) perStep.push(meanStd(orders.map((o) => o.steps[s].top1)));
    methods[name] = {
      method: name,
      label: row.label,
      orders,
      avg_incremental_top1: meanStd(orders.map((o) => o.avg_incremental_top1)),
      avg_incremental_top5: meanStd(orders.map((o) => o.avg_incremental_top5)),
      top1_per_step: perStep,
      config: row.config,
    };
  }
  const results: RunResults = {
    format: 'm2kd-results',
    version: 1,
    created: new Date().toISOString(),
    command: m.command || `m2kd sweep (merged from ${path.resolve(dir)})`,
    dataset: first.dataset,
    protocol: { ...first.protocol, orders: m.grid.orders },
    runtime: first.runtime,
    methods,
    seconds,
  };
  return { manifest: m, results, done, missing };
}
