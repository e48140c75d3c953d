// Evaluation metrics of class-incremental learning, in plain TypeScript (no tensors, no addon): top-k,
// confusion, per-group accuracy, forgetting (Chaudhry et al. 2018), mean ± sample std, average
// incremental accuracy, and an Evaluator that accumulates counts over batches of scores.
// Policy: scores are row-major [n, C] over the C SEEN classes in seen order ("columns");
// labels given here are already column indices 0..C-1 (see columnLabels). Ties between equal
// scores go to the lower column, always; a NaN score ranks below every number (-Infinity).
// Accuracies are percent (0..100). Nothing here returns NaN: empty groups give 0 (documented
// at each function), and bad input (wrong lengths, labels out of range) throws a named error.
import { fail, checkInt } from '../engine/errors';

function checkColumns(fn: string, name: string, a: Int32Array, classes: number): void {
  for (let i = 0; i < a.length; i++)
    if (a[i] < 0 || a[i] >= classes) fail(fn, `${name}[${i}] = ${a[i]} is outside 0..${classes - 1}`);
}

/** The score as ranked: NaN ranks as -Infinity. */
function key(v: number): number {
  return v !== v ? -Infinity : v;
}

/**
 * Rank of column j in one row of scores: how many columns come before it, i.e. have a larger
 * score, or an equal score and a lower index. Rank 0 is the prediction.
 */
function rankOf(scores: Float32Array, base: number, m: number, j: number): number {
  const v = key(scores[base + j]);
  let r = 0;
  for (let c = 0; c < m; c++) {
    const u = key(scores[base + c]);
    if (u > v || (u === v && c < j)) r++;
  }
  return r;
}

function checkScores(fn: string, logits: Float32Array, n: number, m: number, labels?: Int32Array): void {
  checkInt(fn, 'n', n);
  checkInt(fn, 'classes (m)', m, 1);
  if (logits.length !== n * m) fail(fn, `${logits.length} scores do not form [${n}, ${m}] (${n * m} expected)`);
  if (labels) {
    if (labels.length !== n) fail(fn, `${labels.length} labels for ${n} rows`);
    checkColumns(fn, 'labels', labels, m);
  }
}

/**
 * Number of rows whose label is among the k highest scores. logits: [n, m] row-major;
 * labels: column indices. Ties go to the lower index (a label tied with the k-th score counts
 * only if its column is lower). k > m counts as k = m (every row correct).
 */
export function topk(logits: Float32Array, n: number, m: number, labels: Int32Array, k: number): number {
  checkScores('topk', logits, n, m, labels);
  checkInt('topk', 'k', k, 1);
  let correct = 0;
  for (let i = 0; i < n; i++) if (rankOf(logits, i * m, m, labels[i]) < k) correct++;
  return correct;
}

/** Arg-max of each row of [n, m] scores (first maximum: ties go to the lower column). */
export function argmax(logits: Float32Array, n: number, m: number): Int32Array {
  checkScores('argmax', logits, n, m);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * m;
    let best = 0, bv = key(logits[base]);
    for (let c = 1; c < m; c++) {
      const u = key(logits[base + c]);
      if (u > bv) {
        bv = u;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** confusion[i][j] = number of images of (true) column i predicted as column j. */
export function confusionMatrix(pred: Int32Array, labels: Int32Array, classes: number): number[][] {
  const fn = 'confusionMatrix';
  checkInt(fn, 'classes', classes, 1);
  if (pred.length !== labels.length) fail(fn, `${pred.length} predictions for ${labels.length} labels`);
  checkColumns(fn, 'pred', pred, classes);
  checkColumns(fn, 'labels', labels, classes);
  const cm: number[][] = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < pred.length; i++) cm[labels[i]][pred[i]]++;
  return cm;
}

/**
 * Top-1 accuracy (%) per group: groupOf maps a column to its group 0..groups-1; an image belongs
 * to the group of its label. A group with no images gets 0 (not NaN).
 */
export function groupAccuracy(pred: Int32Array, labels: Int32Array, groupOf: Int32Array, groups: number): number[] {
  const fn = 'groupAccuracy';
  checkInt(fn, 'groups', groups, 1);
  if (pred.length !== labels.length) fail(fn, `${pred.length} predictions for ${labels.length} labels`);
  checkColumns(fn, 'groupOf', groupOf, groups);
  checkColumns(fn, 'labels', labels, groupOf.length);
  const correct = new Array<number>(groups).fill(0), total = new Array<number>(groups).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const g = groupOf[labels[i]];
    total[g]++;
    if (pred[i] === labels[i]) correct[g]++;
  }
  return total.map((t, g) => (t > 0 ? (100 * correct[g]) / t : 0));
}

/**
 * Forgetting of each group at the LAST step of history (Chaudhry et al. 2018, "Riemannian Walk"):
 * history[s][g] is the accuracy of group g after step s (history[s] has one entry per group seen
 * at step s, so lengths never decrease). For every group g seen before the last step,
 * f_g = max over earlier steps s (where g was seen) of history[s][g], minus history[last][g].
 * Groups new at the last step are not included; with one step the result is []. A value can be
 * negative when a group is better now than ever before (it is not clipped).
 */
export function forgetting(history: number[][]): number[] {
  const fn = 'forgetting';
  if (!Array.isArray(history) || history.length === 0) fail(fn, 'history is empty (need one row per step)');
  for (let s = 0; s < history.length; s++) {
    const row = history[s];
    if (!Array.isArray(row) || row.length === 0) fail(fn, `history[${s}] is empty`);
    if (s > 0 && row.length < history[s - 1].length)
      fail(fn, `history[${s}] has ${row.length} groups, fewer than the ${history[s - 1].length} of step ${s - 1}`);
    for (let g = 0; g < row.length; g++)
      if (!Number.isFinite(row[g])) fail(fn, `history[${s}][${g}] = ${row[g]} is not a finite accuracy`);
  }
  const last = history.length - 1;
  if (last === 0) return [];
  const old = history[last - 1].length;
  const out: number[] = [];
  for (let g = 0; g < old; g++) {
    let best = -Infinity;
    for (let s = 0; s < last; s++) if (g < history[s].length && history[s][g] > best) best = history[s][g];
    out.push(best - history[last][g]);
  }
  return out;
}

/** forgetting() with its mean, named as in StepResult (mean 0 when there is no old group). */
export function forgettingSummary(history: number[][]): { forgetting: number[]; mean_forgetting: number } {
  const f = forgetting(history);
  return { forgetting: f, mean_forgetting: f.length ? f.reduce((a, b) => a + b, 0) / f.length : 0 };
}

/** Mean and SAMPLE standard deviation (divides by n - 1; std = 0 for n = 1). Throws on no values. */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const fn = 'meanStd';
  const n = values.length;
  if (n === 0) fail(fn, 'no values');
  for (let i = 0; i < n; i++) if (!Number.isFinite(values[i])) fail(fn, `values[${i}] = ${values[i]} is not finite`);
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  let sq = 0;
  for (const v of values) sq += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(sq / (n - 1)), n };
}

/**
 * Average incremental accuracy (Rebuffi et al. 2017): the mean of the accuracies after every
 * step, the first step included. Throws on an empty list.
 */
export function averageIncremental(top1PerStep: number[]): number {
  if (top1PerStep.length === 0) fail('averageIncremental', 'no steps');
  return meanStd(top1PerStep).mean;
}

/**
 * Maps dataset labels to columns (positions in seenOrder, the dataset label ids of the seen
 * classes in the order they arrived). Throws on a label that is not seen.
 */
export function columnLabels(labels: Int32Array, seenOrder: readonly number[]): Int32Array {
  const col = new Map<number, number>();
  seenOrder.forEach((c, j) => {
    if (col.has(c)) fail('columnLabels', `class ${c} appears twice in the seen order`);
    col.set(c, j);
  });
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const j = col.get(labels[i]);
    if (j === undefined) fail('columnLabels', `label ${labels[i]} (index ${i}) is not among the ${seenOrder.length} seen classes`);
    out[i] = j;
  }
  return out;
}

/**
 * Column -> group for groups of the given sizes in seen order, e.g. [2, 2, 2] gives
 * [0,0,1,1,2,2]. (The protocol's steps each add one group.)
 */
export function groupOfColumns(groupSizes: readonly number[]): Int32Array {
  const total = groupSizes.reduce((a, b) => a + b, 0);
  const out = new Int32Array(total);
  let j = 0;
  groupSizes.forEach((s, g) => {
    checkInt('groupOfColumns', `groupSizes[${g}]`, s, 1);
    out.fill(g, j, j + s);
    j += s;
  });
  return out;
}

/** What an Evaluator reports; the field names are StepResult's. */
export interface EvalResult {
  /** top-1 accuracy (%) over all images */
  top1: number;
  /** top-min(5, C) accuracy (%): with fewer than 5 classes this is top-C, i.e. 100 */
  top5: number;
  /** top-1 accuracy (%) per group (0 for a group with no images) */
  per_group: number[];
  /** confusion[i][j]: images of column i predicted as column j */
  confusion: number[][];
  /** number of images evaluated */
  n: number;
}

export interface EvaluatorOptions {
  /** C: number of seen classes (score columns) */
  classes: number;
  /** column -> group 0..groups-1 (default: every column in group 0) */
  groupOf?: Int32Array;
  /** number of groups (default: max(groupOf) + 1) */
  groups?: number;
  /** the k of the top-k metric reported as top5 (default 5; clamped to C) */
  k?: number;
}

/**
 * Accumulates counts over batches of scores [n, C] (logits, or NME scores: anything where the
 * highest score is the prediction) with labels as columns, and reports top-1, top-5, per-group
 * accuracy and the confusion matrix. Keeps only counts (O(C²) memory), not the scores.
 */
export class Evaluator {
  readonly classes: number;
  readonly groups: number;
  readonly k: number;
  private readonly groupOf: Int32Array;
  private readonly cm: number[][];
  private count = 0;
  private correct1 = 0;
  private correctK = 0;

  constructor(opts: EvaluatorOptions) {
    const fn = 'Evaluator';
    checkInt(fn, 'classes', opts.classes, 1);
    this.classes = opts.classes;
    this.groupOf = opts.groupOf ? Int32Array.from(opts.groupOf) : new Int32Array(opts.classes);
    if (this.groupOf.length !== opts.classes) fail(fn, `groupOf has ${this.groupOf.length} entries for ${opts.classes} classes`);
    let maxG = 0;
    for (let j = 0; j < this.groupOf.length; j++) {
      if (this.groupOf[j] < 0) fail(fn, `groupOf[${j}] = ${this.groupOf[j]} is negative`);
      maxG = Math.max(maxG, this.groupOf[j]);
    }
    this.groups = opts.groups ?? maxG + 1;
    checkInt(fn, 'groups', this.groups, 1);
    if (maxG >= this.groups) fail(fn, `groupOf names group ${maxG} but there are ${this.groups} groups`);
    const k = opts.k ?? 5;
    checkInt(fn, 'k', k, 1);
    this.k = Math.min(k, opts.classes);
    this.cm = Array.from({ length: this.classes }, () => new Array<number>(this.classes).fill(0));
  }

  /** Adds a batch: scores [n, C] row-major, labels [n] as columns. Returns the batch's top-1 predictions. */
  add(scores: Float32Array, labels: Int32Array): Int32Array {
    const C = this.classes, n = labels.length;
    checkScores('Evaluator.add', scores, n, C, labels);
    const pred = argmax(scores, n, C);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      this.cm[y][pred[i]]++;
      if (pred[i] === y) this.correct1++;
      if (rankOf(scores, i * C, C, y) < this.k) this.correctK++;
    }
    this.count += n;
    return pred;
  }

  /** Number of images added so far. */
  get n(): number {
    return this.count;
  }

  /** The metrics over everything added. Throws if nothing was added. */
  result(): EvalResult {
    if (this.count === 0) fail('Evaluator.result', 'no images were evaluated');
    const correct = new Array<number>(this.groups).fill(0), total = new Array<number>(this.groups).fill(0);
    for (let i = 0; i < this.classes; i++) {
      const g = this.groupOf[i];
      for (let j = 0; j < this.classes; j++) total[g] += this.cm[i][j];
      correct[g] += this.cm[i][i];
    }
    return {
      top1: (100 * this.correct1) / this.count,
      top5: (100 * this.correctK) / this.count,
      per_group: total.map((t, g) => (t > 0 ? (100 * correct[g]) / t : 0)),
      confusion: this.cm.map((r) => r.slice()),
      n: this.count,
    };
  }

  /** Clears the counts (same classes and groups). */
  reset(): void {
    for (const r of this.cm) r.fill(0);
    this.count = this.correct1 = this.correctK = 0;
  }
}
