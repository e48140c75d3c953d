// A tiny SVG builder for the report plots: a canvas that accumulates elements as strings, linear
// scales with "nice" ticks, axes with grid and labels, legends, colour bars and colour ramps.
// No dependencies; coordinates are SVG user units (pixels at 72 dpi), y grows downwards.
// Text is measured approximately (DejaVu Sans advance ≈ 0.6 em), which is enough for layout.

export const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

/** Ten colours that stay distinguishable (Tableau 10), then cycled with dash patterns. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const DASHES = ['', '7,4', '2,3', '9,3,2,3'];

/** Colour and dash of series i: colours first, then dash patterns over the colours. */
export function seriesStyle(i: number): { color: string; dash: string } {
  return { color: PALETTE[i % PALETTE.length], dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length] };
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Approximate rendered width of a text in user units. */
export function textWidth(s: string, size: number): number {
  return [...s].length * size * 0.6;
}

function n(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

export interface TextOpts {
  size?: number;
  anchor?: 'start' | 'middle' | 'end';
  weight?: 'normal' | 'bold';
  color?: string;
  /** rotation in degrees around (x, y) */
  rotate?: number;
  /** vertical placement of the text relative to y */
  baseline?: 'alphabetic' | 'middle' | 'top';
}

export interface StrokeOpts {
  color?: string;
  width?: number;
  dash?: string;
  opacity?: number;
}

export interface FillOpts {
  fill: string;
  stroke?: string;
  strokeWidth?: number;
  opacity?: number;
}

export class Svg {
  private readonly parts: string[] = [];
  constructor(readonly width: number, readonly height: number, background = '#ffffff') {
    if (!(width > 0 && height > 0)) throw new Error(`svg: size must be positive, got ${width}x${height}`);
    if (background) this.parts.push(`<rect x="0" y="0" width="${n(width)}" height="${n(height)}" fill="${background}"/>`);
  }

  raw(s: string): this {
    this.parts.push(s);
    return this;
  }

  text(x: number, y: number, s: string, o: TextOpts = {}): this {
    const size = o.size ?? 12;
    const dy = o.baseline === 'middle' ? size * 0.35 : o.baseline === 'top' ? size * 0.8 : 0;
    const rot = o.rotate ? ` transform="rotate(${n(o.rotate)} ${n(x)} ${n(y)})"` : '';
    this.parts.push(
      `<text x="${n(x)}" y="${n(y + dy)}" font-family="${FONT}" font-size="${n(size)}" fill="${o.color ?? '#222222'}"` +
        ` text-anchor="${o.anchor ?? 'start'}"${o.weight === 'bold' ? ' font-weight="bold"' : ''}${rot}>${esc(s)}</text>`,
    );
    return this;
  }

  line(x1: number, y1: number, x2: number, y2: number, o: StrokeOpts = {}): this {
    this.parts.push(
      `<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}" stroke="${o.color ?? '#222222'}" stroke-width="${n(o.width ?? 1)}"` +
        `${o.dash ? ` stroke-dasharray="${o.dash}"` : ''}${o.opacity !== undefined ? ` stroke-opacity="${o.opacity}"` : ''}/>`,
    );
    return this;
  }

  rect(x: number, y: number, w: number, h: number, o: FillOpts): this {
    this.parts.push(
      `<rect x="${n(x)}" y="${n(y)}" width="${n(Math.max(0, w))}" height="${n(Math.max(0, h))}" fill="${o.fill}"` +
        `${o.stroke ? ` stroke="${o.stroke}" stroke-width="${n(o.strokeWidth ?? 1)}"` : ''}${o.opacity !== undefined ? ` fill-opacity="${o.opacity}"` : ''}/>`,
    );
    return this;
  }

  polyline(points: [number, number][], o: StrokeOpts = {}): this {
    if (points.length === 0) return this;
    this.parts.push(
      `<polyline points="${points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="none" stroke="${o.color ?? '#222222'}"` +
        ` stroke-width="${n(o.width ?? 1)}" stroke-linejoin="round"${o.dash ? ` stroke-dasharray="${o.dash}"` : ''}/>`,
    );
    return this;
  }

  polygon(points: [number, number][], o: FillOpts): this {
    if (points.length === 0) return this;
    this.parts.push(
      `<polygon points="${points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="${o.fill}"` +
        `${o.opacity !== undefined ? ` fill-opacity="${o.opacity}"` : ''}${o.stroke ? ` stroke="${o.stroke}"` : ''}/>`,
    );
    return this;
  }

  circle(cx: number, cy: number, r: number, o: FillOpts): this {
    this.parts.push(
      `<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(r)}" fill="${o.fill}"${o.stroke ? ` stroke="${o.stroke}" stroke-width="${n(o.strokeWidth ?? 1)}"` : ''}/>`,
    );
    return this;
  }

  toString(): string {
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<svg xmlns="http://www.w3.org/2000/svg" width="${n(this.width)}" height="${n(this.height)}" viewBox="0 0 ${n(this.width)} ${n(this.height)}">\n` +
      this.parts.join('\n') +
      '\n</svg>\n'
    );
  }
}

export interface Scale {
  (v: number): number;
  domain: [number, number];
  range: [number, number];
}

/** Linear map of domain onto range (a degenerate domain maps to the middle of the range). */
export function linear(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0))) as Scale;
  f.domain = [d0, d1];
  f.range = [r0, r1];
  return f;
}

/** A round step (1, 2, 2.5, 5 × 10^k) giving about `count` intervals over [min, max]. */
export function niceStep(min: number, max: number, count = 5): number {
  const span = Math.abs(max - min) || Math.abs(max) || 1;
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw * 0.999) return m * mag;
  return 10 * mag;
}

/** Multiples of a nice step within [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  const step = niceStep(min, max, count);
  const out: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let i = first; i * step <= max + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** The smallest multiple of a nice step that is >= max (for axes starting at 0). */
export function niceMax(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const step = niceStep(0, max, count);
  return Math.ceil(max / step - 1e-9) * step;
}

export function formatTick(v: number): string {
  return String(Number(v.toPrecision(10)));
}

export interface Area {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface AxesOpts {
  xTicks: number[];
  yTicks: number[];
  xLabel: string;
  yLabel: string;
  xTickFormat?: (v: number) => string;
  yTickFormat?: (v: number) => string;
  /** horizontal grid lines at the y ticks (default true); vertical at the x ticks (default false) */
  yGrid?: boolean;
  xGrid?: boolean;
  size?: number;
}

/** Frame, grid, ticks, tick labels and axis labels around a plot area. */
export function drawAxes(svg: Svg, a: Area, x: Scale, y: Scale, o: AxesOpts): void {
  const size = o.size ?? 12;
  const fx = o.xTickFormat ?? formatTick;
  const fy = o.yTickFormat ?? formatTick;
  const bottom = a.top + a.height;
  const right = a.left + a.width;
  for (const t of o.yTicks) {
    const py = y(t);
    if (o.yGrid !== false) svg.line(a.left, py, right, py, { color: '#dddddd' });
    svg.line(a.left - 5, py, a.left, py, { color: '#444444' });
    svg.text(a.left - 8, py, fy(t), { size, anchor: 'end', baseline: 'middle', color: '#333333' });
  }
  for (const t of o.xTicks) {
    const px = x(t);
    if (o.xGrid) svg.line(px, a.top, px, bottom, { color: '#eeeeee' });
    svg.line(px, bottom, px, bottom + 5, { color: '#444444' });
    svg.text(px, bottom + 8, fx(t), { size, anchor: 'middle', baseline: 'top', color: '#333333' });
  }
  svg.rect(a.left, a.top, a.width, a.height, { fill: 'none', stroke: '#444444' });
  svg.text(a.left + a.width / 2, bottom + 8 + size * 1.2 + 14, o.xLabel, { size: size + 1, anchor: 'middle' });
  const widest = Math.max(0, ...o.yTicks.map((t) => textWidth(fy(t), size)));
  svg.text(a.left - 8 - widest - 12, a.top + a.height / 2, o.yLabel, { size: size + 1, anchor: 'middle', rotate: -90 });
}

/** Centred title (and optional subtitle in grey) at the top of the canvas. */
export function drawTitle(svg: Svg, title: string, subtitle?: string): void {
  svg.text(svg.width / 2, 24, title, { size: 16, anchor: 'middle', weight: 'bold' });
  if (subtitle) svg.text(svg.width / 2, 44, subtitle, { size: 12, anchor: 'middle', color: '#555555' });
}

export interface LegendItem {
  label: string;
  color: string;
  /** a line sample (with optional dash and marker) or a filled box */
  kind?: 'line' | 'box';
  dash?: string;
}

const LEGEND_ROW = 20;

export function legendSize(items: LegendItem[], size = 12): { width: number; height: number } {
  const w = Math.max(0, ...items.map((i) => textWidth(i.label, size)));
  return { width: w + 48, height: items.length * LEGEND_ROW + 12 };
}

/** A framed legend whose top-left corner is (x, y); returns its size. */
export function drawLegend(svg: Svg, x: number, y: number, items: LegendItem[], size = 12): { width: number; height: number } {
  const dim = legendSize(items, size);
  svg.rect(x, y, dim.width, dim.height, { fill: '#ffffff', stroke: '#bbbbbb', opacity: 0.9 });
  items.forEach((it, i) => {
    const cy = y + 6 + LEGEND_ROW * i + LEGEND_ROW / 2;
    if (it.kind === 'box') svg.rect(x + 10, cy - 6, 20, 12, { fill: it.color, stroke: '#555555', strokeWidth: 0.5 });
    else {
      svg.line(x + 8, cy, x + 32, cy, { color: it.color, width: 2.5, dash: it.dash });
      svg.circle(x + 20, cy, 3.5, { fill: it.color });
    }
    svg.text(x + 40, cy, it.label, { size, baseline: 'middle' });
  });
  return dim;
}

function hex(c: string): [number, number, number] {
  const v = parseInt(c.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Piecewise-linear colour ramp over evenly spaced '#rrggbb' stops; t is clamped to [0, 1]. */
export function ramp(stops: string[], t: number): string {
  const c = stops.map(hex);
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (c.length - 1);
  const i = Math.min(c.length - 2, Math.floor(x));
  const f = x - i;
  const mix = (k: number) => Math.round(c[i][k] + (c[i + 1][k] - c[i][k]) * f);
  return '#' + [mix(0), mix(1), mix(2)].map((v) => v.toString(16).padStart(2, '0')).join('');
}

const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];
const BLUES = ['#ffffff', '#deebf7', '#9ecae1', '#4292c6', '#08519c', '#08306b'];

export function viridis(t: number): string {
  return ramp(VIRIDIS, t);
}

/** White (0) to dark blue (1): zero cells stay white, so a confusion matrix reads at a glance. */
export function blues(t: number): string {
  return ramp(BLUES, t);
}

/** Vertical colour bar at (x, y) of size w × h, 0 at the bottom, 1 at the top, with tick labels. */
export function drawColorbar(
  svg: Svg,
  x: number,
  y: number,
  w: number,
  h: number,
  color: (t: number) => string,
  label: string,
  ticks = [0, 0.25, 0.5, 0.75, 1],
  /** maps a value in [0, 1] to its position on the bar (and argument of color); default identity */
  transform: (v: number) => number = (v) => v,
): void {
  const steps = 64;
  for (let i = 0; i < steps; i++) {
    const t = (i + 0.5) / steps;
    svg.rect(x, y + h - ((i + 1) * h) / steps, w, h / steps + 0.5, { fill: color(t) });
  }
  svg.rect(x, y, w, h, { fill: 'none', stroke: '#444444' });
  for (const t of ticks) {
    const py = y + h - transform(t) * h;
    svg.line(x + w, py, x + w + 4, py, { color: '#444444' });
    svg.text(x + w + 7, py, formatTick(t), { size: 11, baseline: 'middle' });
  }
  svg.text(x + w + 44, y + h / 2, label, { size: 12, anchor: 'middle', rotate: -90 });
}

/**
 * A heatmap of matrix values already mapped to [0, 1], one cell × cell square per entry, with
 * (0, 0) at the top-left of the area; zero entries are left to the background. With cells of
 * at least 28 units, each non-zero value is also written in its cell.
 */
export function drawHeatmap(svg: Svg, left: number, top: number, cell: number, values: number[][], color: (t: number) => string): void {
  values.forEach((row, i) =>
    row.forEach((v, j) => {
      if (!(v > 0)) return;
      svg.rect(left + j * cell, top + i * cell, cell, cell, { fill: color(v) });
      if (cell >= 28)
        svg.text(left + (j + 0.5) * cell, top + (i + 0.5) * cell, v >= 0.995 ? '1' : v.toFixed(2).replace(/^0/, ''), {
          size: 9,
          anchor: 'middle',
          baseline: 'middle',
          color: v > 0.35 ? '#ffffff' : '#222222',
        });
    }),
  );
}

/**
 * One stacked bar: segments (value, colour) stacked from `base` along the value axis.
 * Vertical: centred at `at` on x with width `thickness`, values mapped by `scale` on y.
 * Horizontal: centred at `at` on y, values mapped by `scale` on x. Returns the stacked total.
 */
export function drawStackedBar(
  svg: Svg,
  orientation: 'vertical' | 'horizontal',
  at: number,
  thickness: number,
  scale: Scale,
  segments: { value: number; color: string }[],
  base = 0,
): number {
  let acc = base;
  for (const s of segments) {
    if (!(s.value > 0)) continue;
    const a = scale(acc);
    const b = scale(acc + s.value);
    if (orientation === 'vertical') svg.rect(at - thickness / 2, Math.min(a, b), thickness, Math.abs(a - b), { fill: s.color, stroke: '#ffffff', strokeWidth: 0.5 });
    else svg.rect(Math.min(a, b), at - thickness / 2, Math.abs(b - a), thickness, { fill: s.color });
    acc += s.value;
  }
  return acc;
}
