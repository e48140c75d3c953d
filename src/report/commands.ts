// The `m2kd report` and `m2kd compare` commands: load results.json files, print tables, render
// plots. They take the raw arguments after the command name and print through an injectable
// writer (tests capture it). User errors (missing run folder, bad results.json, unwritable
// output, bad flags) are thrown as errors whose message is meant to be printed as-is.
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs, Flags } from '../cli/args';
import { readResults, resultsPath, ResultsError } from './results';
import { entriesOf, entriesOfRuns, runTags } from './summary';
import { comparisonTable, perStepComparisonTable, stepTable, runHeader, TableStyle } from './tables';
import { renderPlots, renderAccuracyPlot, ensureOutputDir } from './plots';
import type { RunResults } from '../il/results';
import { isSweepDir } from '../sweep/grid';
import { mergeSweep } from '../sweep/merge';

export const REPORT_USAGE = `  m2kd report <run-dir> [--no-plots] [--markdown] [--order N (1)] [--out DIR (the run dir)]
                                    tables of a run; (re)renders its plots (PNG + SVG)
  m2kd compare <run-dir>... [--markdown] [--out DIR]
                                    one comparison over the methods of several runs (--out: accuracy plot);
                                    a sweep folder counts as the merge of its finished cells (missing ones named)`;

export interface CommandIO {
  /** receives each printed block (default: stdout, quiet on a closed pipe) */
  out?: (s: string) => void;
}

let stdoutClosed = false;

/** Prints to stdout; once the reader has gone away (`m2kd report x | head`), further output is dropped quietly. */
function printStdout(s: string): void {
  if (stdoutClosed) return;
  if (process.stdout.listenerCount('error') === 0)
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') stdoutClosed = true;
      else throw e;
    });
  process.stdout.write(s + '\n');
}

const SWITCHES = ['markdown', 'no-plots'];

/** parseArgs with our switches never swallowing the following positional argument. */
function parse(args: string[]): { positional: string[]; f: Flags } {
  const norm = args.map((a) => (SWITCHES.includes(a.replace(/^--/, '')) && a.startsWith('--') && !a.includes('=') ? `${a}=true` : a));
  const { positional, flags } = parseArgs(norm);
  return { positional, f: new Flags(flags) };
}

function style(f: Flags): TableStyle {
  return f.bool('markdown') ? 'markdown' : 'text';
}

/** `m2kd report <run-dir> [--no-plots] [--markdown] [--order N] [--out DIR]` */
export async function reportCommand(args: string[], io: CommandIO = {}): Promise<void> {
  const out = io.out ?? printStdout;
  const { positional, f } = parse(args);
  const noPlots = f.bool('no-plots');
  const st = style(f);
  const order = f.int('order', 1, 1);
  const outDir = f.str('out', '');
  f.done();
  if (positional.length !== 1)
    throw new ResultsError(positional.length === 0 ? 'report: which run? usage: m2kd report <run-dir> [--no-plots] [--markdown]' : `report: one run folder expected, got ${positional.length} (use m2kd compare for several)`);
  const src = positional[0];
  const file = resultsPath(src);
  const results = readResults(file);
  const plotDir = outDir ? path.resolve(outDir) : path.dirname(path.resolve(file));
  if (!noPlots) ensureOutputDir(plotDir); // fail before printing, not after
  const entries = entriesOf(results, src);
  for (const e of entries)
    if (order > e.result.orders.length) throw new ResultsError(`report: --order ${order} but method ${e.key} has ${e.result.orders.length} class order${e.result.orders.length === 1 ? '' : 's'}`);
  out(runHeader(results, src));
  out(comparisonTable(entries, st));
  out(perStepComparisonTable(entries, st));
  for (const e of entries) out(stepTable(e.result, order - 1, st, e.results.protocol.headline ?? 'top1'));
  if (!noPlots) {
    const dir = plotDir;
    const written = await renderPlots(results, dir);
    const pngs = written.filter((w) => w.endsWith('.png')).map((w) => path.basename(w));
    out(`plots (PNG, with SVG beside each) in ${dir}:\n  ${pngs.join('\n  ')}`);
  }
}

function sameOrNote(what: string, values: string[], tags: string[]): string | null {
  if (new Set(values).size <= 1) return null;
  return `note: the runs differ in ${what}: ${values.map((v, i) => `${tags[i]}: ${v}`).join('; ')}`;
}

/** `m2kd compare <run-dir|results.json>... [--markdown] [--out DIR]` */
export async function compareCommand(args: string[], io: CommandIO = {}): Promise<void> {
  const out = io.out ?? printStdout;
  const { positional, f } = parse(args);
  const st = style(f);
  const outDir = f.str('out', '');
  f.done();
  if (positional.length === 0) throw new ResultsError('compare: which runs? usage: m2kd compare <run-dir> <run-dir> ... [--markdown] [--out DIR]');
  // a sweep folder (sweep.json) stands for the merge of its finished cells
  const sweepNotes: string[] = [];
  const runs: { results: RunResults; source: string }[] = positional.map((p) => {
    if (!isSweepDir(p)) return { results: readResults(p), source: p };
    const mg = mergeSweep(p);
    if (!mg.results) throw new ResultsError(`${p} is a sweep with no finished cell yet (m2kd sweep --status ${p})`);
    const n = mg.manifest.cells.length;
    sweepNotes.push(`  ${p}: sweep, ${mg.done.length} of ${n} cells done` + (mg.missing.length ? `; missing: ${mg.missing.join(', ')}` : ''));
    return { results: mg.results, source: p };
  });
  if (outDir) {
    if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) throw new ResultsError(`--out ${outDir} is a file, not a folder`);
    ensureOutputDir(outDir); // fail before printing, not after
  }
  const tags = runTags(positional);
  const lines = runs.map(
    (r, i) =>
      `  ${tags[i]}: ${r.results.dataset.name}, ${r.results.protocol.classes_per_step} classes/step × ${r.results.protocol.steps} steps, ` +
      `${r.results.protocol.orders} order${r.results.protocol.orders === 1 ? '' : 's'}; ${Object.values(r.results.methods).map((m) => m.label).join(', ')}`,
  );
  const notes = [
    sameOrNote('dataset', runs.map((r) => r.results.dataset.name), tags),
    sameOrNote('classes per step', runs.map((r) => String(r.results.protocol.classes_per_step)), tags),
    sameOrNote('number of class orders', runs.map((r) => String(r.results.protocol.orders)), tags),
  ].filter((n): n is string => n !== null);
  out([`comparing ${runs.length} run${runs.length === 1 ? '' : 's'}:`, ...lines, ...sweepNotes, ...notes].join('\n') + '\n');
  const entries = entriesOfRuns(runs);
  out(comparisonTable(entries, st));
  out(perStepComparisonTable(entries, st));
  if (outDir) {
    const written = await renderAccuracyPlot(entries, outDir);
    out(`plots in ${path.resolve(outDir)}: ${written.filter((w) => w.endsWith('.png')).map((w) => path.basename(w)).join(', ')}`);
  }
}
