// Plain-text and markdown tables of run results: the per-step table of one method and order,
// the comparison of methods (average incremental accuracy mean ± std over orders, final top-1,
// memory), and the per-step comparison (steps × methods, mean ± std over orders).
// Accuracies print in percent with two decimals; bytes in KB/MB (powers of 1000).
import type { MethodResult, RunResults } from '../il/results';
import {
  MethodEntry,
  entriesOf,
  perStep,
  classesSeen,
  stepCount,
  finalTop1,
  finalTop5,
  headlineOf,
  finalMemory,
  finalForgetting,
  fmtMeanStd,
  fmtBytes,
  fmtSeconds,
} from './summary';

export type TableStyle = 'text' | 'markdown';

export interface Table {
  title?: string;
  headers: string[];
  rows: string[][];
  /** per column; default: first column left, the others right */
  align?: ('left' | 'right')[];
  /** lines printed under the table */
  notes?: string[];
}

function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, a: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return a === 'left' ? s + fill : fill + s;
}

/** Renders a table as aligned plain text or as a GitHub markdown table. */
export function renderTable(t: Table, style: TableStyle = 'text'): string {
  const cols = t.headers.length;
  const align = t.headers.map((_, i) => t.align?.[i] ?? (i === 0 ? 'left' : 'right'));
  const lines: string[] = [];
  if (style === 'markdown') {
    const cell = (s: string) => s.replace(/\|/g, '\\|');
    if (t.title) lines.push(`**${cell(t.title)}**`, '');
    lines.push('| ' + t.headers.map(cell).join(' | ') + ' |');
    lines.push('|' + align.map((a) => (a === 'left' ? ' :--- ' : ' ---: ')).join('|') + '|');
    for (const r of t.rows) lines.push('| ' + Array.from({ length: cols }, (_, i) => cell(r[i] ?? '')).join(' | ') + ' |');
    if (t.notes?.length) lines.push('', ...t.notes.map((n) => `_${n}_`));
    return lines.join('\n') + '\n';
  }
  const w = t.headers.map((h, i) => Math.max(width(h), ...t.rows.map((r) => width(r[i] ?? ''))));
  if (t.title) lines.push(t.title);
  lines.push(t.headers.map((h, i) => pad(h, w[i], align[i])).join('  ').trimEnd());
  lines.push(w.map((x) => '-'.repeat(x)).join('  '));
  for (const r of t.rows) lines.push(Array.from({ length: cols }, (_, i) => pad(r[i] ?? '', w[i], align[i])).join('  ').trimEnd());
  if (t.notes?.length) lines.push(...t.notes);
  return lines.join('\n') + '\n';
}

function toEntries(input: RunResults | MethodEntry[]): MethodEntry[] {
  return Array.isArray(input) ? input : entriesOf(input);
}

function orderName(m: MethodResult, i: number): string {
  const o = m.orders[i];
  const what = o.order_name !== null ? `'${o.order_name}'` : o.order_seed !== null ? `seed ${o.order_seed}` : 'explicit';
  return `order ${i + 1} of ${m.orders.length} (${what})`;
}

/**
 * One method, one class order: a row per step with classes seen, top-1/top-5, top-1 per group,
 * mean forgetting, memory kept beyond the model, and the step's seconds.
 */
export function stepTableData(method: MethodResult, orderIndex = 0, headline: 'top1' | 'top5' = 'top1'): Table {
  if (!Number.isInteger(orderIndex) || orderIndex < 0 || orderIndex >= method.orders.length)
    throw new RangeError(`order ${orderIndex + 1} does not exist (method ${method.method} has ${method.orders.length} order${method.orders.length === 1 ? '' : 's'})`);
  const o = method.orders[orderIndex];
  const top5 = headline === 'top5';
  return {
    title: `${method.label} — ${orderName(method, orderIndex)}, average incremental ${top5 ? `top-5 ${o.avg_incremental_top5.toFixed(2)}` : `top-1 ${o.avg_incremental_top1.toFixed(2)}`}`,
    headers: ['step', 'classes', 'top-1', 'top-5', 'top-1 per group (G1 G2 …)', 'forgetting', 'memory', 'seconds'],
    align: ['right', 'right', 'right', 'right', 'left', 'right', 'right', 'right'],
    rows: o.steps.map((s) => [
      String(s.step),
      String(s.classes_seen),
      s.top1.toFixed(2),
      s.top5.toFixed(2),
      s.per_group.map((g) => g.toFixed(1)).join(' '),
      s.mean_forgetting.toFixed(2),
      fmtBytes(s.memory.total),
      fmtSeconds(s.seconds.total),
    ]),
  };
}

export function stepTable(method: MethodResult, orderIndex = 0, style: TableStyle = 'text', headline: 'top1' | 'top5' = 'top1'): string {
  return renderTable(stepTableData(method, orderIndex, headline), style);
}

/**
 * Methods side by side: average incremental top-1 and top-5 (mean ± std over orders), top-1 and
 * mean forgetting after the last step, memory kept beyond the model after the last step.
 */
export function comparisonTableData(input: RunResults | MethodEntry[]): Table {
  const entries = toEntries(input);
  const orders = new Set(entries.map((e) => e.result.orders.length));
  if (headlineOf(entries) === 'top5') {
    // the paper's iILSVRC-small metric leads; top-1 stays beside it
    return {
      title: orders.size === 1 && [...orders][0] === 1 ? 'Comparison (1 class order; headline: top-5)' : `Comparison (mean ± std over ${orders.size === 1 ? [...orders][0] : 'the'} class orders; headline: top-5)`,
      headers: ['method', 'avg inc. top-5', 'avg inc. top-1', 'final top-5', 'final top-1', 'final forgetting', 'memory', 'orders'],
      rows: entries.map((e) => [
        e.label,
        fmtMeanStd(e.result.avg_incremental_top5),
        fmtMeanStd(e.result.avg_incremental_top1),
        fmtMeanStd(finalTop5(e.result)),
        fmtMeanStd(finalTop1(e.result)),
        fmtMeanStd(finalForgetting(e.result)),
        fmtBytes(finalMemory(e.result)),
        String(e.result.orders.length),
      ]),
      notes: ['avg inc.: mean top-5/top-1 (%) over all steps; final: after the last step; forgetting: top-1 points; memory: bytes kept beyond the current model after the last step'],
    };
  }
  return {
    title:
      orders.size === 1 && [...orders][0] === 1
        ? 'Comparison (1 class order)'
        : `Comparison (mean ± std over ${orders.size === 1 ? [...orders][0] : 'the'} class orders)`,
    headers: ['method', 'avg inc. top-1', 'avg inc. top-5', 'final top-1', 'final forgetting', 'memory', 'orders'],
    rows: entries.map((e) => [
      e.label,
      fmtMeanStd(e.result.avg_incremental_top1),
      fmtMeanStd(e.result.avg_incremental_top5),
      fmtMeanStd(finalTop1(e.result)),
      fmtMeanStd(finalForgetting(e.result)),
      fmtBytes(finalMemory(e.result)),
      String(e.result.orders.length),
    ]),
    notes: ['avg inc.: mean top-1/top-5 (%) over all steps; final: after the last step; memory: bytes kept beyond the current model after the last step'],
  };
}

export function comparisonTable(input: RunResults | MethodEntry[], style: TableStyle = 'text'): string {
  return renderTable(comparisonTableData(input), style);
}

/** The comparison as a markdown table (for pasting into a README). */
export function comparisonMarkdown(input: RunResults | MethodEntry[]): string {
  return comparisonTable(input, 'markdown');
}

/** Top-1 per step: a row per step index, a column per method, mean ± std over orders. */
export function perStepComparisonData(input: RunResults | MethodEntry[]): Table {
  const entries = toEntries(input);
  const steps = Math.max(0, ...entries.map((e) => stepCount(e.result)));
  const top5 = headlineOf(entries) === 'top5';
  const curves = entries.map((e) => perStep(e.result, (s) => (top5 ? s.top5 : s.top1)));
  const seen = entries.map((e) => classesSeen(e.result));
  const rows: string[][] = [];
  for (let i = 0; i < steps; i++) {
    const cs = [...new Set(seen.map((c) => c[i]).filter((c) => c !== undefined))];
    const same = cs.length <= 1;
    rows.push([
      String(i + 1),
      cs.join('/'),
      ...entries.map((_, j) => (curves[j][i] ? fmtMeanStd(curves[j][i]) + (same ? '' : ` @${seen[j][i]}`) : '')),
    ]);
  }
  return {
    title: `${top5 ? 'Top-5' : 'Top-1'} accuracy (%) per step${entries.some((e) => e.result.orders.length > 1) ? ' (mean ± std over class orders)' : ''}`,
    headers: ['step', 'classes', ...entries.map((e) => e.label)],
    align: ['right', ...entries.map(() => 'right' as const), 'right'],
    rows,
  };
}

export function perStepComparisonTable(input: RunResults | MethodEntry[], style: TableStyle = 'text'): string {
  return renderTable(perStepComparisonData(input), style);
}

/** A few lines naming the run: dataset, protocol, methods, command, when and how long. */
export function runHeader(results: RunResults, source?: string): string {
  const d = results.dataset;
  const p = results.protocol;
  const lines = [
    `run: ${source ?? '(results)'}${results.created ? `, created ${results.created}` : ''}, ${fmtSeconds(results.seconds)}`,
    `dataset: ${d.name} (${d.classes} classes, ${d.train_images} train / ${d.test_images} test images, ${d.image_shape.join('x')})`,
    `protocol: ${p.classes_per_step} classes per step, ${p.steps} steps, ${p.orders} class order${p.orders === 1 ? '' : 's'}`,
    `methods: ${Object.values(results.methods).map((m) => m.label).join(', ')}`,
  ];
  const rt = Object.entries(results.runtime ?? {})
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k} ${String(v)}`);
  if (rt.length) lines.push(`runtime: ${rt.join(', ')}`);
  if (results.command) lines.push(`command: ${results.command}`);
  return lines.join('\n') + '\n';
}
