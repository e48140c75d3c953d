// The report plots, each built as SVG (src/report/svg.ts) and rendered to PNG with sharp; the .svg
// is kept next to the .png. accuracy.png: top-1 per step vs classes seen, mean ± std band over
// orders (the paper's Fig. 4); confusion-<method>.png: the last step's confusion matrix of the
// first order, rows normalised (Fig. 6); memory.png: bytes kept beyond the current model after
// the last step, stacked by category (Table 2); masks-<method>.png: per-layer mask occupancy by
// owning step after the last step. Files are written atomically; nothing here computes metrics.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io/atomic';
import type { MemoryBreakdown, RunResults, StepResult } from '../il/results';
import { MethodEntry, entriesOf, perStep, classesSeen, meanStd, headlineOf } from './summary';
import { ResultsError, errnoText } from './results';
import {
  Svg,
  linear,
  niceTicks,
  niceMax,
  drawAxes,
  drawTitle,
  drawLegend,
  legendSize,
  drawColorbar,
  drawHeatmap,
  drawStackedBar,
  seriesStyle,
  textWidth,
  viridis,
  blues,
  LegendItem,
} from './svg';

export interface PlotOptions {
  /** pixels per SVG unit in the PNG (default 2: crisp on high-density screens and in papers) */
  scale?: number;
}

/** A file-name-safe version of a method key. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'method';
}

/** Creates an output folder (and parents) and checks that it is writable, with a clear error. */
export function ensureOutputDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ResultsError(`cannot create output folder ${dir}: ${errnoText(e)}`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new ResultsError(`output folder ${dir} is not writable`);
  }
}

/** Writes <base>.svg and <base>.png (rendered by sharp); returns both paths, png first. */
export async function writePlot(svg: string, pngPath: string, opts: PlotOptions = {}): Promise<string[]> {
  const scale = opts.scale ?? 2;
  if (!(scale > 0 && scale <= 8)) throw new RangeError(`plot scale must be in (0, 8], got ${scale}`);
  ensureOutputDir(path.dirname(path.resolve(pngPath)));
  const svgPath = pngPath.replace(/\.png$/i, '') + '.svg';
  let png: Buffer;
  try {
    // loaded on first use, so that importing the report layer (and the CLI) never loads libvips
    const sharp = (await import('sharp')).default;
    png = await sharp(Buffer.from(svg, 'utf8'), { density: 72 * scale }).png({ compressionLevel: 9 }).toBuffer();
  } catch (e) {
    throw new Error(`cannot render ${path.basename(pngPath)}: ${(e as Error).message}`);
  }
  try {
    writeFileAtomic(svgPath, svg);
    writeFileAtomic(pngPath, png);
  } catch (e) {
    throw new ResultsError((e as Error).message);
  }
  return [pngPath, svgPath];
}

function commonSubtitle(entries: MethodEntry[], what: string): string {
  const ds = new Set(entries.map((e) => e.results.dataset.name));
  const cps = new Set(entries.map((e) => e.results.protocol.classes_per_step));
  const orders = new Set(entries.map((e) => e.result.orders.length));
  const parts: string[] = [];
  if (ds.size === 1) parts.push([...ds][0]);
  if (cps.size === 1) parts.push(`${[...cps][0]} classes per step`);
  parts.push(`${what} over ${orders.size === 1 ? [...orders][0] : 'the'} class order${orders.size === 1 && [...orders][0] === 1 ? '' : 's'}`);
  return parts.join(', ');
}

/** Top-1 (or top-5) accuracy against classes seen, one line per method, ± std band over orders. */
export function accuracySvg(entries: MethodEntry[], metric: 'top1' | 'top5' = 'top1'): string {
  if (entries.length === 0) throw new RangeError('accuracy plot: no methods');
  const series = entries.map((e, i) => {
    const xs = classesSeen(e.result);
    const ms = perStep(e.result, (s) => s[metric]);
    const avg = metric === 'top1' ? e.result.avg_incremental_top1 : e.result.avg_incremental_top5;
    const st = seriesStyle(i);
    const avgText = avg.n > 1 ? `${avg.mean.toFixed(1)} ± ${avg.std.toFixed(1)}` : avg.mean.toFixed(1);
    return { xs, ms, label: `${e.label} (avg ${avgText})`, ...st };
  });
  const allX = [...new Set(series.flatMap((s) => s.xs))].sort((a, b) => a - b);
  const lo = allX[0];
  const hi = allX[allX.length - 1];
  const padX = allX.length > 1 ? (hi - lo) / (2 * (allX.length - 1)) : 1;
  const items: LegendItem[] = series.map((s) => ({ label: s.label, color: s.color, dash: s.dash }));
  const leg = legendSize(items);
  const area = { left: 80, top: 64, width: 640, height: 400 };
  const W = area.left + area.width + 24 + leg.width + 16;
  const H = Math.max(area.top + area.height + 64, area.top + leg.height + 20);
  const svg = new Svg(W, H);
  const x = linear([lo - padX, hi + padX], [area.left, area.left + area.width]);
  const y = linear([0, 100], [area.top + area.height, area.top]);
  const xTicks = allX.length <= 12 ? allX : niceTicks(lo, hi, 10);
  drawTitle(svg, `${metric === 'top1' ? 'Top-1' : 'Top-5'} accuracy after each step`, commonSubtitle(entries, 'mean ± std'));
  drawAxes(svg, area, x, y, {
    xTicks,
    yTicks: niceTicks(0, 100, 10),
    xLabel: 'number of classes seen',
    yLabel: `${metric === 'top1' ? 'top-1' : 'top-5'} accuracy (%)`,
  });
  for (const s of series) {
    const pts = s.xs.map((cx, i) => ({ cx, m: s.ms[i] })).filter((p) => p.m && Number.isFinite(p.m.mean));
    if (pts.some((p) => p.m.n > 1 && p.m.std > 0)) {
      const upper = pts.map((p): [number, number] => [x(p.cx), y(Math.min(100, p.m.mean + p.m.std))]);
      const lower = pts.map((p): [number, number] => [x(p.cx), y(Math.max(0, p.m.mean - p.m.std))]).reverse();
      svg.polygon([...upper, ...lower], { fill: s.color, opacity: 0.15 });
    }
  }
  for (const s of series) {
    const pts = s.xs.map((cx, i) => ({ cx, m: s.ms[i] })).filter((p) => p.m && Number.isFinite(p.m.mean));
    svg.polyline(pts.map((p): [number, number] => [x(p.cx), y(p.m.mean)]), { color: s.color, width: 2.2, dash: s.dash });
    for (const p of pts) {
      if (p.m.n > 1 && p.m.std > 0) {
        const px = x(p.cx);
        svg.line(px, y(Math.min(100, p.m.mean + p.m.std)), px, y(Math.max(0, p.m.mean - p.m.std)), { color: s.color, width: 1, opacity: 0.8 });
      }
      svg.circle(x(p.cx), y(p.m.mean), 3.5, { fill: s.color, stroke: '#ffffff', strokeWidth: 0.8 });
    }
  }
  drawLegend(svg, area.left + area.width + 24, area.top, items);
  return svg.toString();
}

/** The classes (label ids) seen after the given step, in the order they were added. */
function seenOrder(steps: StepResult[], upto: number): number[] {
  return steps.slice(0, upto + 1).flatMap((s) => s.classes);
}

/** The last step's confusion matrix (first order), rows normalised; null when none was recorded. */
export function confusionSvg(entry: MethodEntry, orderIndex = 0): string | null {
  const order = entry.result.orders[orderIndex];
  if (!order || order.steps.length === 0) return null;
  const last = order.steps.length - 1;
  const step = order.steps[last];
  const m = step.confusion;
  const nC = m.length;
  if (nC === 0) return null;
  const ids = seenOrder(order.steps, last);
  const names = entry.results.dataset.class_names;
  const className = (i: number) => {
    const id = ids[i];
    return id === undefined ? String(i) : names[id] ?? String(id);
  };
  const cell = Math.max(1, Math.min(36, Math.floor(520 / nC)));
  const size = cell * nC;
  const perClassLabels = nC <= 30;
  const labelW = perClassLabels ? Math.max(...Array.from({ length: nC }, (_, i) => textWidth(className(i), 11))) : 24;
  const area = { left: 60 + labelW + 10, top: 72, width: size, height: size };
  const W = Math.max(area.left + size + 110, 560);
  const xLabelY = area.top + size + (perClassLabels ? labelW * 0.72 + 32 : 40);
  const H = xLabelY + 24;
  const svg = new Svg(W, H);
  drawTitle(
    svg,
    `Confusion matrix — ${entry.label}`,
    `after step ${step.step} (${nC} classes), order ${orderIndex + 1}; rows: true class, normalised to 1`,
  );
  // cells: rows normalised, square-root colour scale so that the few images of an old class
  // that go to new classes stay visible (the colour bar is labelled accordingly)
  const norm = m.map((row) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (sum > 0 ? v / sum : 0));
  });
  drawHeatmap(svg, area.left, area.top, cell, norm, (v) => blues(Math.sqrt(v)));
  // group boundaries
  let acc = 0;
  const bounds: number[] = [];
  const mids: number[] = [];
  for (let k = 0; k <= last; k++) {
    const g = order.steps[k].classes.length || (k === 0 ? order.steps[0].classes_seen : order.steps[k].classes_seen - order.steps[k - 1].classes_seen);
    mids.push(acc + g / 2);
    acc += g;
    bounds.push(acc);
  }
  for (const b of bounds.slice(0, -1)) {
    if (b <= 0 || b >= nC) continue;
    svg.line(area.left + b * cell, area.top, area.left + b * cell, area.top + size, { color: '#e6550d', width: 0.8, opacity: 0.6 });
    svg.line(area.left, area.top + b * cell, area.left + size, area.top + b * cell, { color: '#e6550d', width: 0.8, opacity: 0.6 });
  }
  svg.rect(area.left, area.top, size, size, { fill: 'none', stroke: '#444444' });
  // tick labels
  const bottom = area.top + size;
  if (perClassLabels) {
    for (let i = 0; i < nC; i++) {
      const c = (i + 0.5) * cell;
      svg.text(area.left - 6, area.top + c, className(i), { size: 11, anchor: 'end', baseline: 'middle' });
      svg.text(area.left + c, bottom + 8, className(i), { size: 11, anchor: 'end', rotate: -45, baseline: 'middle' });
    }
  } else {
    const every = Math.max(1, Math.ceil(mids.length / 20));
    mids.forEach((mid, k) => {
      if (k % every !== 0) return;
      svg.text(area.left - 6, area.top + mid * cell, `G${k + 1}`, { size: 11, anchor: 'end', baseline: 'middle' });
      svg.text(area.left + mid * cell, bottom + 6, `G${k + 1}`, { size: 11, anchor: 'middle', baseline: 'top' });
    });
  }
  svg.text(area.left + size / 2, xLabelY, perClassLabels ? 'predicted class' : 'predicted class (by group, in the order added)', { size: 13, anchor: 'middle' });
  svg.text(area.left - labelW - 24, area.top + size / 2, 'true class', { size: 13, anchor: 'middle', rotate: -90 });
  // square-root colour scale: the few images of an old class that go to new classes stay visible
  drawColorbar(svg, area.left + size + 24, area.top, 16, Math.min(size, 300), blues, 'fraction of the row (√ scale)', [0, 0.05, 0.25, 0.5, 1], Math.sqrt);
  return svg.toString();
}

const MEMORY_PARTS: { key: keyof Omit<MemoryBreakdown, 'total'>; label: string; color: string }[] = [
  { key: 'masks', label: 'step masks', color: '#1f77b4' },
  { key: 'bn', label: 'BatchNorm per step', color: '#ff7f0e' },
  { key: 'heads', label: 'classifier rows per step', color: '#2ca02c' },
  { key: 'snapshots', label: 'model snapshots', color: '#d62728' },
  { key: 'exemplars', label: 'exemplars', color: '#9467bd' },
];

/** Stacked bars: MB kept beyond the current model after the last step (mean over orders). */
export function memorySvg(entries: MethodEntry[]): string {
  if (entries.length === 0) throw new RangeError('memory plot: no methods');
  const MB = 1e6;
  const data = entries.map((e) => {
    const lasts = e.result.orders.filter((o) => o.steps.length).map((o) => o.steps[o.steps.length - 1].memory);
    const parts = MEMORY_PARTS.map((p) => meanStd(lasts.map((mm) => mm[p.key])).mean / MB);
    const total = meanStd(lasts.map((mm) => mm.total)).mean / MB;
    return { label: e.label, parts: parts.map((v) => (Number.isFinite(v) ? v : 0)), total: Number.isFinite(total) ? total : 0 };
  });
  const used = MEMORY_PARTS.map((_, k) => data.some((d) => d.parts[k] > 0));
  const shown = used.some(Boolean) ? MEMORY_PARTS.filter((_, k) => used[k]) : MEMORY_PARTS;
  const items: LegendItem[] = shown.map((p) => ({ label: p.label, color: p.color, kind: 'box' }));
  const leg = legendSize(items);
  const slot = Math.max(70, Math.min(140, 640 / entries.length));
  const maxLabel = Math.max(...data.map((d) => textWidth(d.label, 12)));
  const rotate = maxLabel > slot - 8;
  const labelH = rotate ? maxLabel * 0.72 + 16 : 22;
  const area = { left: 90, top: 64, width: slot * entries.length, height: 360 };
  const W = Math.max(area.left + area.width + 24 + leg.width + 16, 520);
  const H = area.top + area.height + labelH + 50;
  const svg = new Svg(W, H);
  const ymax = niceMax(Math.max(...data.map((d) => Math.max(d.total, d.parts.reduce((a, b) => a + b, 0)))) * 1.08);
  const y = linear([0, ymax], [area.top + area.height, area.top]);
  const x = linear([0, entries.length], [area.left, area.left + area.width]);
  drawTitle(svg, 'Memory kept beyond the current model', 'after the last step (mean over class orders); MB = 10⁶ bytes');
  drawAxes(svg, area, x, y, { xTicks: [], yTicks: niceTicks(0, ymax, 6), xLabel: '', yLabel: 'memory (MB)' });
  const bw = slot * 0.6;
  data.forEach((d, i) => {
    const cx = x(i + 0.5);
    const base = drawStackedBar(svg, 'vertical', cx, bw, y, MEMORY_PARTS.map((p, k) => ({ value: d.parts[k], color: p.color })));
    const text = d.total === 0 ? '0' : d.total >= 100 ? d.total.toFixed(0) : d.total >= 1 ? d.total.toFixed(2) : d.total.toPrecision(2);
    svg.text(cx, y(Math.max(base, d.total)) - 6, `${text} MB`, { size: 11, anchor: 'middle' });
    const by = area.top + area.height + 10;
    if (rotate) svg.text(cx, by, d.label, { size: 12, anchor: 'end', rotate: -40, baseline: 'middle' });
    else svg.text(cx, by, d.label, { size: 12, anchor: 'middle', baseline: 'top' });
  });
  svg.text(area.left + area.width / 2, area.top + area.height + labelH + 30, 'method', { size: 13, anchor: 'middle' });
  drawLegend(svg, area.left + area.width + 24, area.top, items);
  return svg.toString();
}

/** Per layer: fraction of weights owned by each step and still free after the last step; null without masks. */
export function masksSvg(entry: MethodEntry, orderIndex = 0): string | null {
  const order = entry.result.orders[orderIndex];
  if (!order) return null;
  const step = [...order.steps].reverse().find((s) => s.mask_occupancy && Object.keys(s.mask_occupancy).length > 0);
  if (!step || !step.mask_occupancy) return null;
  const layers = Object.entries(step.mask_occupancy);
  const T = Math.max(1, ...layers.map(([, o]) => o.owned.length));
  const stepColor = (k: number) => viridis(T === 1 ? 0.3 : (0.9 * k) / (T - 1));
  const FREE = '#e4e4e4';
  const items: LegendItem[] = [
    ...Array.from({ length: T }, (_, k) => ({ label: `step ${k + 1}`, color: stepColor(k), kind: 'box' as const })),
    { label: 'free', color: FREE, kind: 'box' },
  ];
  const leg = legendSize(items);
  const names = layers.map(([n]) => n.replace(/\.weight$/, ''));
  const labelW = Math.max(...names.map((n) => textWidth(n, 11)));
  const row = layers.length > 40 ? 12 : 18;
  const area = { left: labelW + 24, top: 64, width: 560, height: row * layers.length };
  const W = area.left + area.width + 24 + leg.width + 16;
  const H = Math.max(area.top + area.height + 70, area.top + leg.height + 20);
  const svg = new Svg(W, H);
  const x = linear([0, 1], [area.left, area.left + area.width]);
  const y = linear([0, layers.length], [area.top, area.top + area.height]);
  drawTitle(svg, `Mask occupancy per layer — ${entry.label}`, `after step ${step.step}, order ${orderIndex + 1}: share of each layer's weights owned by each step, and free`);
  drawAxes(svg, area, x, y, {
    xTicks: niceTicks(0, 1, 10),
    yTicks: [],
    xLabel: 'fraction of the layer’s weights',
    yLabel: '',
    xTickFormat: (v) => `${Math.round(v * 100)}%`,
    xGrid: true,
  });
  const bh = row * 0.75;
  layers.forEach(([, o], i) => {
    const cy = y(i + 0.5);
    drawStackedBar(svg, 'horizontal', cy, bh, x, [...o.owned.map((f, k) => ({ value: f, color: stepColor(k) })), { value: o.free, color: FREE }]);
    svg.text(area.left - 6, cy, names[i], { size: row >= 18 ? 11 : 9, anchor: 'end', baseline: 'middle' });
  });
  drawLegend(svg, area.left + area.width + 24, area.top, items);
  return svg.toString();
}

/**
 * accuracy.png over the given methods (and accuracy-top5.png); returns written paths. When the
 * runs' headline is top-5 (the ImageNet preset), accuracy.png shows top-5 and accuracy-top1.png
 * top-1.
 */
export async function renderAccuracyPlot(entries: MethodEntry[], outDir: string, opts: PlotOptions = {}): Promise<string[]> {
  ensureOutputDir(outDir);
  if (headlineOf(entries) === 'top5')
    return [
      ...(await writePlot(accuracySvg(entries, 'top5'), path.join(outDir, 'accuracy.png'), opts)),
      ...(await writePlot(accuracySvg(entries, 'top1'), path.join(outDir, 'accuracy-top1.png'), opts)),
    ];
  return [
    ...(await writePlot(accuracySvg(entries, 'top1'), path.join(outDir, 'accuracy.png'), opts)),
    ...(await writePlot(accuracySvg(entries, 'top5'), path.join(outDir, 'accuracy-top5.png'), opts)),
  ];
}

/**
 * All plots of a run into outDir: accuracy.png (+ accuracy-top5.png), confusion-<method>.png,
 * memory.png, masks-<method>.png (methods with mask occupancy). Each .png has its .svg beside it.
 * Returns the written paths (png, then svg, per plot).
 */
export async function renderPlots(results: RunResults, outDir: string, opts: PlotOptions = {}): Promise<string[]> {
  const entries = entriesOf(results);
  if (entries.length === 0) throw new ResultsError('nothing to plot: the run has no methods');
  ensureOutputDir(outDir);
  const written = await renderAccuracyPlot(entries, outDir, opts);
  for (const e of entries) {
    const svg = confusionSvg(e);
    if (svg) written.push(...(await writePlot(svg, path.join(outDir, `confusion-${safeName(e.key)}.png`), opts)));
  }
  written.push(...(await writePlot(memorySvg(entries), path.join(outDir, 'memory.png'), opts)));
  for (const e of entries) {
    const svg = masksSvg(e);
    if (svg) written.push(...(await writePlot(svg, path.join(outDir, `masks-${safeName(e.key)}.png`), opts)));
  }
  return written;
}
