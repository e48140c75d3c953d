// il/metrics: hand-computed cases (top-k with ties and NaN, confusion, per-group accuracy,
// forgetting, mean/std, average incremental accuracy), the Evaluator against the one-shot
// functions on random batches, and bad input.
import t from 'tap';
import { Rng } from '../src/engine';
import {
  topk, argmax, confusionMatrix, groupAccuracy, forgetting, forgettingSummary, meanStd,
  averageIncremental, columnLabels, groupOfColumns, Evaluator,
} from '../src/il/metrics';

const f32 = (a: number[]) => Float32Array.from(a);
const i32 = (a: number[]) => Int32Array.from(a);

t.test('topk: ties go to the lower column', async (t) => {
  // one row [1, 3, 3, 2]: order of columns is 1, 2, 3, 0
  const row = f32([1, 3, 3, 2]);
  const rank = (label: number) => [1, 2, 3, 4].find((k) => topk(row, 1, 4, i32([label]), k) === 1)! - 1;
  t.equal(rank(1), 0, 'column 1 wins the tie with column 2');
  t.equal(rank(2), 1, 'column 2 loses the tie');
  t.equal(rank(3), 2);
  t.equal(rank(0), 3);
  // all equal: the order is the column order
  const flat = f32([0, 0, 0]);
  t.equal(topk(flat, 1, 3, i32([0]), 1), 1);
  t.equal(topk(flat, 1, 3, i32([2]), 2), 0);
  t.equal(topk(flat, 1, 3, i32([2]), 3), 1);
  // several rows
  const logits = f32([
    0.1, 0.9, 0.0, // pred 1
    0.5, 0.5, 0.2, // pred 0 (tie)
    0.3, 0.2, 0.4, // pred 2
  ]);
  const labels = i32([1, 1, 0]);
  t.equal(topk(logits, 3, 3, labels, 1), 1);
  t.equal(topk(logits, 3, 3, labels, 2), 3);
  t.equal(topk(logits, 3, 3, labels, 7), 3, 'k > m counts every row');
  t.same([...argmax(logits, 3, 3)], [1, 0, 2]);
});

t.test('topk: NaN ranks below every number', async (t) => {
  const row = f32([NaN, -1e30, NaN]);
  t.same([...argmax(row, 1, 3)], [1]);
  t.equal(topk(row, 1, 3, i32([0]), 1), 0);
  t.equal(topk(row, 1, 3, i32([0]), 2), 1, 'NaN columns tie among themselves by index');
  t.equal(topk(row, 1, 3, i32([2]), 2), 0);
  t.same([...argmax(f32([NaN, NaN]), 1, 2)], [0]);
});

t.test('topk / argmax: bad input', async (t) => {
  t.throws(() => topk(f32([1, 2, 3]), 1, 2, i32([0]), 1), /topk: 3 scores do not form \[1, 2\]/);
  t.throws(() => topk(f32([1, 2]), 1, 2, i32([0, 1]), 1), /2 labels for 1 rows/);
  t.throws(() => topk(f32([1, 2]), 1, 2, i32([2]), 1), /labels\[0\] = 2 is outside 0..1/);
  t.throws(() => topk(f32([1, 2]), 1, 2, i32([-1]), 1), /outside/);
  t.throws(() => topk(f32([1, 2]), 1, 2, i32([0]), 0), /k must be an integer >= 1/);
  t.throws(() => topk(f32([1, 2]), 1, 2, i32([0]), 1.5), /k must be an integer/);
  t.throws(() => argmax(f32([]), 0, 0), /classes \(m\) must be an integer >= 1/);
  t.equal(topk(f32([]), 0, 3, i32([]), 1), 0, 'no rows: 0 correct');
});

t.test('confusionMatrix', async (t) => {
  const cm = confusionMatrix(i32([0, 1, 1, 2, 0]), i32([0, 0, 1, 2, 2]), 3);
  t.same(cm, [
    [1, 1, 0],
    [0, 1, 0],
    [1, 0, 1],
  ]);
  t.same(confusionMatrix(i32([]), i32([]), 2), [[0, 0], [0, 0]]);
  t.throws(() => confusionMatrix(i32([0]), i32([0, 1]), 2), /1 predictions for 2 labels/);
  t.throws(() => confusionMatrix(i32([3]), i32([0]), 2), /pred\[0\] = 3 is outside 0..1/);
  t.throws(() => confusionMatrix(i32([0]), i32([0]), 0), /classes must be an integer >= 1/);
});

t.test('groupAccuracy: percent per group, empty group is 0', async (t) => {
  // columns 0,1 -> group 0; column 2 -> group 1; group 2 has no column
  const groupOf = i32([0, 0, 1]);
  const labels = i32([0, 1, 1, 2, 2, 2, 2]);
  const pred = i32([0, 0, 1, 2, 2, 2, 1]);
  const acc = groupAccuracy(pred, labels, groupOf, 3);
  t.equal(acc.length, 3);
  t.ok(Math.abs(acc[0] - 200 / 3) < 1e-12, `group 0: 2 of 3 (${acc[0]})`);
  t.equal(acc[1], 75, 'group 1: 3 of 4');
  t.equal(acc[2], 0, 'group 2 has no images: 0, not NaN');
  t.throws(() => groupAccuracy(pred, labels, i32([0, 0, 3]), 3), /groupOf\[2\] = 3 is outside 0..2/);
  t.throws(() => groupAccuracy(pred, i32([0, 1, 1, 2, 2, 2, 5]), groupOf, 3), /labels\[6\] = 5/);
  t.throws(() => groupAccuracy(pred.subarray(1), labels, groupOf, 3), /6 predictions for 7 labels/);
});

t.test('forgetting (Chaudhry et al.): best earlier minus current, old groups only', async (t) => {
  t.same(forgetting([[90]]), [], 'one step: nothing to forget');
  t.same(forgetting([[90], [80, 70]]), [10]);
  const h = [
    [90],
    [80, 70],
    [60, 75, 50],
  ];
  // g0: max(90, 80) - 60 = 30; g1: max(70) - 75 = -5 (better now: not clipped); g2 is new
  t.same(forgetting(h), [30, -5]);
  t.same(forgettingSummary(h), { forgetting: [30, -5], mean_forgetting: 12.5 });
  t.same(forgettingSummary([[50]]), { forgetting: [], mean_forgetting: 0 });
  // best is not necessarily the first evaluation
  t.same(forgetting([[40, 10], [70, 20], [65, 30], [50, 5]]), [20, 25]);
  t.throws(() => forgetting([]), /history is empty/);
  t.throws(() => forgetting([[1, 2], [3]]), /history\[1\] has 1 groups, fewer than the 2/);
  t.throws(() => forgetting([[1], [NaN, 2]]), /history\[1\]\[0\] = NaN is not a finite accuracy/);
  t.throws(() => forgetting([[1], []]), /history\[1\] is empty/);
});

t.test('meanStd: sample std, n-1', async (t) => {
  const r = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
  t.equal(r.mean, 5);
  t.ok(Math.abs(r.std - Math.sqrt(32 / 7)) < 1e-12, `std ${r.std}`);
  t.equal(r.n, 8);
  t.same(meanStd([3.5]), { mean: 3.5, std: 0, n: 1 });
  t.same(meanStd([1, 3]), { mean: 2, std: Math.SQRT2, n: 2 });
  t.throws(() => meanStd([]), /meanStd: no values/);
  t.throws(() => meanStd([1, Infinity]), /values\[1\] = Infinity is not finite/);
});

t.test('averageIncremental: mean over every step, the first included', async (t) => {
  t.equal(averageIncremental([80, 60, 40]), 60);
  t.equal(averageIncremental([77]), 77);
  t.throws(() => averageIncremental([]), /averageIncremental: no steps/);
});

t.test('columnLabels and groupOfColumns', async (t) => {
  t.same([...columnLabels(i32([7, 3, 7, 9]), [3, 9, 7])], [2, 0, 2, 1]);
  t.throws(() => columnLabels(i32([4]), [3, 9]), /label 4 \(index 0\) is not among the 2 seen classes/);
  t.throws(() => columnLabels(i32([3]), [3, 3]), /class 3 appears twice/);
  t.same([...groupOfColumns([2, 2, 1])], [0, 0, 1, 1, 2]);
  t.throws(() => groupOfColumns([2, 0]), /groupSizes\[1\] must be an integer >= 1/);
});

t.test('Evaluator: hand case with fewer than 5 classes (top-5 is top-C)', async (t) => {
  const ev = new Evaluator({ classes: 3, groupOf: i32([0, 0, 1]) });
  t.equal(ev.k, 3);
  ev.add(f32([0.1, 0.9, 0.0, 0.5, 0.5, 0.2]), i32([1, 1]));
  ev.add(f32([0.3, 0.2, 0.4]), i32([0]));
  const r = ev.result();
  t.equal(r.n, 3);
  t.ok(Math.abs(r.top1 - 100 / 3) < 1e-12, `top1 ${r.top1}`);
  t.equal(r.top5, 100, 'top-5 over 3 classes is 100');
  t.same(r.confusion, [
    [0, 0, 1],
    [1, 1, 0],
    [0, 0, 0],
  ]);
  t.ok(Math.abs(r.per_group[0] - 100 / 3) < 1e-12);
  t.equal(r.per_group[1], 0, 'group with no images is 0');
  ev.reset();
  t.equal(ev.n, 0);
  t.throws(() => ev.result(), /no images were evaluated/);
});

t.test('Evaluator over batches matches the one-shot functions', async (t) => {
  const rng = new Rng(5);
  const C = 12, n = 503;
  const scores = rng.normal(n * C);
  // coarse values to force ties
  for (let i = 0; i < scores.length; i++) scores[i] = Math.round(scores[i] * 2) / 2;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(C);
  const groupOf = groupOfColumns([4, 4, 4]);
  const ev = new Evaluator({ classes: C, groupOf });
  for (let b = 0; b < n; b += 64) {
    const e = Math.min(n, b + 64);
    ev.add(scores.subarray(b * C, e * C), labels.subarray(b, e));
  }
  const r = ev.result();
  const pred = argmax(scores, n, C);
  t.equal(r.top1, (100 * topk(scores, n, C, labels, 1)) / n);
  t.equal(r.top5, (100 * topk(scores, n, C, labels, 5)) / n);
  t.same(r.confusion, confusionMatrix(pred, labels, C));
  t.same(r.per_group, groupAccuracy(pred, labels, groupOf, 3));
  t.equal(r.n, n);
  let diag = 0;
  for (let i = 0; i < C; i++) diag += r.confusion[i][i];
  t.equal(r.top1, (100 * diag) / n, 'top-1 is the confusion diagonal');
  t.ok(r.top5 >= r.top1);
});

t.test('Evaluator: bad input', async (t) => {
  t.throws(() => new Evaluator({ classes: 0 }), /classes must be an integer >= 1/);
  t.throws(() => new Evaluator({ classes: 3, groupOf: i32([0, 1]) }), /groupOf has 2 entries for 3 classes/);
  t.throws(() => new Evaluator({ classes: 2, groupOf: i32([0, 2]), groups: 2 }), /names group 2 but there are 2 groups/);
  t.throws(() => new Evaluator({ classes: 2, groupOf: i32([0, -1]) }), /negative/);
  const ev = new Evaluator({ classes: 2 });
  t.throws(() => ev.add(f32([1, 2, 3]), i32([0, 1])), /Evaluator.add: 3 scores do not form \[2, 2\]/);
  t.throws(() => ev.add(f32([1, 2]), i32([2])), /labels\[0\] = 2 is outside 0..1/);
  t.equal(ev.n, 0, 'a rejected batch adds nothing');
});
