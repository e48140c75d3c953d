// The report layer: results.json round trip and validation errors that name the field, tables
// that show the numbers of the run, PNG plots rendered by sharp, and the report/compare
// commands (including their errors through the CLI, which print one line and exit non-zero).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp from 'sharp';
import type { RunResults, MethodResult, OrderResult, StepResult } from '../src/il/results';
import {
  writeResults,
  readResults,
  validateResults,
  stringifyResults,
  comparisonTable,
  comparisonMarkdown,
  perStepComparisonTable,
  stepTable,
  renderPlots,
  reportCommand,
  compareCommand,
  meanStd,
  entriesOf,
  entriesOfRuns,
  ResultsError,
} from '../src/report';
import { main } from '../src/cli/main';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-report-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/**
 * A synthetic run: `methods` × `orders` class orders × `steps` steps of `cps` classes, with
 * accuracies that fall as classes are added (faster for the weaker method), confusion matrices
 * consistent with them, memory that grows per step and mask occupancy for pruning methods.
 */
function makeResults(o: { methods?: [string, string, boolean][]; orders?: number; steps?: number; cps?: number; testPerClass?: number } = {}): RunResults {
  const methods = o.methods ?? [
    ['m2kd', 'M²KD', true],
    ['lwf-mc', 'LwF-MC', false],
  ];
  const nOrders = o.orders ?? 2;
  const steps = o.steps ?? 3;
  const cps = o.cps ?? 2;
  const classes = steps * cps;
  const perClass = o.testPerClass ?? 100;
  const out: Record<string, MethodResult> = {};
  methods.forEach(([name, label, prune], mi) => {
    const orders: OrderResult[] = [];
    for (let oi = 0; oi < nOrders; oi++) {
      const rnd = lcg(1000 * mi + oi + 7);
      const order = Array.from({ length: classes }, (_, i) => i);
      for (let i = classes - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const stepResults: StepResult[] = [];
      const best: number[] = [];
      for (let s = 1; s <= steps; s++) {
        const seen = s * cps;
        const confusion: number[][] = [];
        const perGroup: number[] = [];
        let correct = 0;
        for (let g = 0; g < s; g++) {
          // old groups decay; the weaker method (mi = 1) forgets faster
          const acc = Math.max(0.05, 0.92 - (s - 1 - g) * (0.12 + 0.1 * mi) - 0.03 * rnd());
          let groupCorrect = 0;
          for (let c = 0; c < cps; c++) {
            const row = new Array<number>(seen).fill(0);
            const i = g * cps + c;
            row[i] = Math.round(acc * perClass);
            let rest = perClass - row[i];
            for (let j = seen - 1; rest > 0; j = (j - 1 + seen) % seen) {
              if (j === i) continue;
              const k = Math.min(rest, 1 + Math.floor(rnd() * rest * 0.6));
              row[j] += k;
              rest -= k;
            }
            groupCorrect += row[i];
            confusion.push(row);
          }
          correct += groupCorrect;
          perGroup.push((100 * groupCorrect) / (cps * perClass));
        }
        const forgetting = perGroup.slice(0, -1).map((a, g) => Math.max(best[g], a) - a);
        perGroup.forEach((a, g) => (best[g] = Math.max(best[g] ?? 0, a)));
        const top1 = (100 * correct) / (seen * perClass);
        const masks = prune ? 1174 * s : 0;
        const mo = prune
          ? Object.fromEntries(
              ['conv1.weight', 'stage1.0.conv1.weight', 'stage2.0.conv1.weight', 'stage3.4.conv2.weight'].map((layer) => {
                const owned = Array.from({ length: s }, (_, k) => 0.25 * Math.pow(0.75, k));
                return [layer, { owned, free: 1 - owned.reduce((a, b) => a + b, 0) }];
              }),
            )
          : undefined;
        const memory = { masks, bn: prune ? 2560 * s : 0, heads: prune ? 520 * s : 0, snapshots: prune ? 0 : 1_890_000, exemplars: 0, total: 0 };
        memory.total = memory.masks + memory.bn + memory.heads + memory.snapshots + memory.exemplars;
        stepResults.push({
          step: s,
          classes: order.slice((s - 1) * cps, s * cps),
          classes_seen: seen,
          top1,
          top5: top1 + (100 - top1) * (0.5 + 0.2 * rnd()),
          per_group: perGroup,
          forgetting,
          mean_forgetting: forgetting.length ? forgetting.reduce((a, b) => a + b, 0) / forgetting.length : 0,
          confusion,
          memory,
          ...(mo ? { mask_occupancy: mo } : {}),
          seconds: { train: 10 + rnd(), finetune: prune ? 5 : 0, teachers: prune ? 1 : 0, eval: 0.5, total: 16.5 + rnd() },
          final_loss: 0.1 + rnd() * 0.05,
        });
      }
      orders.push({
        order,
        order_seed: 1993 + oi,
        order_name: null,
        steps: stepResults,
        avg_incremental_top1: stepResults.reduce((a, s) => a + s.top1, 0) / steps,
        avg_incremental_top5: stepResults.reduce((a, s) => a + s.top5, 0) / steps,
        seconds: stepResults.reduce((a, s) => a + s.seconds.total, 0),
      });
    }
    const top1PerStep = Array.from({ length: steps }, (_, i) => meanStd(orders.map((x) => x.steps[i].top1)));
    out[name] = {
      method: name,
      label,
      orders,
      avg_incremental_top1: meanStd(orders.map((x) => x.avg_incremental_top1)),
      avg_incremental_top5: meanStd(orders.map((x) => x.avg_incremental_top5)),
      top1_per_step: top1PerStep,
      config: { epochs: 4, lr: 2, prune: prune ? 0.75 : null },
    };
  });
  return {
    format: 'm2kd-results',
    version: 1,
    created: '2026-11-25T23:00:00.000Z',
    command: `m2kd train --dataset synthetic --classes-per-step ${cps}`,
    dataset: { name: 'synthetic', classes, train_images: 500 * classes, test_images: perClass * classes, image_shape: [3, 32, 32], class_names: CLASS_NAMES.slice(0, classes) },
    protocol: { classes_per_step: cps, steps, orders: nOrders },
    runtime: { version: '0.1.0', isa: 'avx2', threads: 2, device: 'cpu' },
    methods: out,
    seconds: 123.4,
  };
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function capture(): { out: (s: string) => void; text: () => string } {
  const chunks: string[] = [];
  return { out: (s) => chunks.push(s), text: () => chunks.join('\n') };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function checkPng(t: tap.Test, file: string): Promise<void> {
  const buf = fs.readFileSync(file);
  t.ok(buf.subarray(0, 8).equals(PNG_SIGNATURE), `${path.basename(file)} has the PNG signature`);
  const meta = await sharp(buf).metadata();
  t.equal(meta.format, 'png');
  t.ok((meta.width ?? 0) > 0 && (meta.height ?? 0) > 0, `${path.basename(file)} is ${meta.width}x${meta.height}`);
  const svg = file.replace(/\.png$/, '.svg');
  t.ok(fs.existsSync(svg), 'the .svg is kept beside the .png');
  t.match(fs.readFileSync(svg, 'utf8'), /^<\?xml[^]*<svg [^]*<\/svg>\s*$/);
}

t.test('results.json round trip', async (t) => {
  const r = makeResults();
  t.doesNotThrow(() => validateResults(r), 'the synthetic run is valid');
  const dir = path.join(tmp, 'rt', 'run');
  const file = writeResults(dir, r);
  t.equal(file, path.join(dir, 'results.json'));
  t.same(readResults(dir), clone(r), 'read back from the run folder');
  t.same(readResults(file), clone(r), 'read back from the file');
  t.same(JSON.parse(stringifyResults(r)), JSON.parse(JSON.stringify(r)), 'same JSON as JSON.stringify');
  t.notOk(fs.readdirSync(dir).some((f) => f.includes('.tmp')), 'no temporary file left behind');
  // confusion rows stay on one line each
  t.match(fs.readFileSync(file, 'utf8'), /\n\s+\[\d+(,\d+){5}\],?\n/);
  // overwrite with a new run
  const r2 = makeResults({ orders: 1 });
  writeResults(dir, r2);
  t.equal(readResults(dir).protocol.orders, 1);
});

t.test('results validation errors name the problem', async (t) => {
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'results.json');
  t.throws(() => readResults(path.join(tmp, 'nope')), /nope does not exist/);
  t.throws(() => readResults(dir), /has no results\.json/);
  const good = stringifyResults(makeResults());
  fs.writeFileSync(file, good.slice(0, Math.floor(good.length / 2)));
  t.throws(() => readResults(dir), { name: 'ResultsError', message: /not valid JSON \(truncated or corrupt\?\)/ });
  fs.writeFileSync(file, '');
  t.throws(() => readResults(dir), /not valid JSON.*empty/);
  fs.writeFileSync(file, '[1,2]');
  t.throws(() => readResults(dir), /not an m2kd results file/);
  fs.writeFileSync(file, JSON.stringify({ format: 'something-else', version: 1 }));
  t.throws(() => readResults(dir), /format is the string "something-else", expected "m2kd-results"/);
  fs.writeFileSync(file, JSON.stringify({ ...makeResults(), version: 2 }));
  t.throws(() => readResults(dir), /unsupported results version the number 2 \(this m2kd reads version 1\)/);

  const cases: [string, (r: RunResults) => void, RegExp][] = [
    ['missing step field', (r) => delete (r.methods['m2kd'].orders[1].steps[2] as Partial<StepResult>).top1, /methods\.m2kd\.orders\[1\]\.steps\[2\]\.top1 is missing/],
    ['missing top-level field', (r) => delete (r as Partial<RunResults>).dataset, /: dataset is missing/],
    ['missing nested field', (r) => delete (r.methods['lwf-mc'].avg_incremental_top1 as Partial<{ std: number }>).std, /methods\.lwf-mc\.avg_incremental_top1\.std is missing/],
    ['wrong type', (r) => ((r.methods['m2kd'].orders[0].steps[0] as unknown as Record<string, unknown>).top5 = '55'), /steps\[0\]\.top5 must be a finite number, got the string "55"/],
    ['null accuracy', (r) => ((r.methods['m2kd'].orders[0].steps[1] as unknown as Record<string, unknown>).top1 = null), /steps\[1\]\.top1 must be a finite number, got null/],
    ['ragged confusion', (r) => r.methods['m2kd'].orders[0].steps[1].confusion[2].pop(), /steps\[1\]\.confusion\[2\] must have 4 entries/],
    ['bad mask occupancy', (r) => ((r.methods['m2kd'].orders[0].steps[0].mask_occupancy!['conv1.weight'] as unknown as Record<string, unknown>).free = 'x'), /mask_occupancy\["conv1\.weight"\]\.free must be a finite number/],
    ['no methods', (r) => (r.methods = {}), /methods is empty/],
    ['no orders', (r) => (r.methods['m2kd'].orders = []), /methods\.m2kd\.orders is empty/],
    ['bad per-step entry', (r) => ((r.methods['m2kd'].top1_per_step as unknown[])[1] = 3), /methods\.m2kd\.top1_per_step\[1\] must be an object, got the number 3/],
  ];
  for (const [what, edit, re] of cases) {
    const r = clone(makeResults());
    edit(r);
    fs.writeFileSync(file, JSON.stringify(r));
    t.throws(() => readResults(file), { name: 'ResultsError', message: re }, what);
  }

  // writing refuses results that would not read back, and leaves the old file alone
  const out = path.join(tmp, 'bad-write');
  writeResults(out, makeResults());
  const before = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
  const r = makeResults();
  r.methods['lwf-mc'].orders[0].steps[1].top1 = NaN;
  t.throws(() => writeResults(out, r), /methods\.lwf-mc\.orders\[0\]\.steps\[1\]\.top1 must be a finite number, got NaN/);
  t.equal(fs.readFileSync(path.join(out, 'results.json'), 'utf8'), before, 'previous results kept');

  // a folder under a file cannot be created (works as root too)
  const afile = path.join(tmp, 'a-file');
  fs.writeFileSync(afile, 'x');
  t.throws(() => writeResults(path.join(afile, 'sub'), makeResults()), /cannot create run folder .*a-file\/sub: not a directory \(ENOTDIR\)$/);
});

t.test('tables show the numbers of the run', async (t) => {
  const r = makeResults();
  const cmp = comparisonTable(r);
  for (const m of Object.values(r.methods)) {
    t.match(cmp, m.label);
    t.match(cmp, `${m.avg_incremental_top1.mean.toFixed(2)} ± ${m.avg_incremental_top1.std.toFixed(2)}`, `${m.method} avg top-1 mean ± std`);
    t.match(cmp, `${m.avg_incremental_top5.mean.toFixed(2)} ± ${m.avg_incremental_top5.std.toFixed(2)}`);
    const fin = meanStd(m.orders.map((o) => o.steps[o.steps.length - 1].top1));
    t.match(cmp, `${fin.mean.toFixed(2)} ± ${fin.std.toFixed(2)}`, 'final top-1');
  }
  t.match(cmp, '12.8 KB', 'memory of the pruning method after 3 steps: 3 × (1174 + 2560 + 520) bytes');
  t.match(cmp, '1.89 MB', 'memory of the snapshot method');
  const lines = cmp.trimEnd().split('\n');
  t.equal(lines[1].trimEnd(), lines[1], 'no trailing blanks');
  t.equal(lines.length, 3 + 2 + 1, 'title, header, rule, 2 rows, note');

  const md = comparisonMarkdown(r);
  t.match(md, /^\*\*Comparison/);
  t.match(md, '| method | avg inc. top-1 |');
  t.match(md, '| :--- | ---: |');
  t.match(md, `| M²KD | ${r.methods['m2kd'].avg_incremental_top1.mean.toFixed(2)} ± `);

  const ps = perStepComparisonTable(r);
  t.match(ps, /step\s+classes\s+M²KD\s+LwF-MC/);
  for (const m of Object.values(r.methods))
    for (let i = 0; i < 3; i++) {
      const ms = meanStd(m.orders.map((o) => o.steps[i].top1));
      t.match(ps, `${ms.mean.toFixed(2)} ± ${ms.std.toFixed(2)}`, `${m.method} step ${i + 1}`);
    }
  t.match(perStepComparisonTable(r, 'markdown'), /^\| 3 \| 6 \| /m);

  const m = r.methods['lwf-mc'];
  const st = stepTable(m, 1);
  t.match(st, /LwF-MC — order 2 of 2 \(seed 1994\)/);
  for (const s of m.orders[1].steps) {
    t.match(st, new RegExp(`^\\s*${s.step}\\s+${s.classes_seen}\\s+${s.top1.toFixed(2)}\\s+${s.top5.toFixed(2)}\\s+${s.per_group.map((g) => g.toFixed(1)).join(' ')}\\s+${s.mean_forgetting.toFixed(2)}\\s`, 'm'));
  }
  t.match(st, '1.89 MB');
  t.throws(() => stepTable(m, 2), /order 3 does not exist \(method lwf-mc has 2 orders\)/);
});

t.test('renderPlots writes readable PNGs (and their SVGs)', async (t) => {
  const r = makeResults();
  const dir = path.join(tmp, 'plots');
  const written = await renderPlots(r, dir, { scale: 1 });
  const pngs = written.filter((w) => w.endsWith('.png')).map((w) => path.basename(w)).sort();
  t.same(pngs, ['accuracy-top5.png', 'accuracy.png', 'confusion-lwf-mc.png', 'confusion-m2kd.png', 'masks-m2kd.png', 'memory.png']);
  for (const w of written) t.ok(fs.existsSync(w), `${path.basename(w)} exists`);
  for (const p of written.filter((w) => w.endsWith('.png'))) await checkPng(t, p);
  const acc = fs.readFileSync(path.join(dir, 'accuracy.svg'), 'utf8');
  t.match(acc, 'M²KD (avg ');
  t.match(acc, 'number of classes seen');
  t.match(acc, 'top-1 accuracy (%)');
  t.match(acc, '<polygon', 'std band over orders');
  t.match(fs.readFileSync(path.join(dir, 'confusion-m2kd.svg'), 'utf8'), '>airplane<', 'class names on the axes');
  t.match(fs.readFileSync(path.join(dir, 'memory.svg'), 'utf8'), 'model snapshots');
  t.match(fs.readFileSync(path.join(dir, 'masks-m2kd.svg'), 'utf8'), 'stage3.4.conv2');
  // a 2x scale doubles the pixels
  const big = await sharp(fs.readFileSync(path.join(dir, 'memory.png'))).metadata();
  await renderPlots(r, path.join(tmp, 'plots2x'), { scale: 2 });
  const big2 = await sharp(fs.readFileSync(path.join(tmp, 'plots2x', 'memory.png'))).metadata();
  t.equal(big2.width, 2 * big.width!);

  // many classes: group labels instead of class names, still a valid image
  const wide = makeResults({ methods: [['m2kd', 'M²KD', true]], orders: 1, steps: 10, cps: 10, testPerClass: 20 });
  wide.dataset.class_names = Array.from({ length: 100 }, (_, i) => `class${i}`);
  const w2 = await renderPlots(wide, path.join(tmp, 'plots-wide'), { scale: 1 });
  await checkPng(t, w2.find((w) => w.endsWith('confusion-m2kd.png'))!);
  t.match(fs.readFileSync(path.join(tmp, 'plots-wide', 'confusion-m2kd.svg'), 'utf8'), '>G10<');

  const afile = path.join(tmp, 'plot-file');
  fs.writeFileSync(afile, 'x');
  await t.rejects(renderPlots(r, path.join(afile, 'sub')), /cannot create output folder .*plot-file\/sub: not a directory \(ENOTDIR\)$/);
});

t.test('uneven runs: a partial order, no confusion matrix, different step sizes', async (t) => {
  const r = makeResults();
  const m = r.methods['lwf-mc'];
  m.orders[1].steps.pop(); // this order stopped after 2 steps
  for (const o of r.methods['m2kd'].orders) for (const s of o.steps) s.confusion = [];
  validateResults(r);
  const ps = perStepComparisonTable(r);
  t.match(ps, new RegExp(`^\\s*3\\s+6\\s+\\S+ ± \\S+\\s+${m.orders[0].steps[2].top1.toFixed(2)}$`, 'm'), 'step 3 of LwF-MC from the one order that reached it');
  const written = await renderPlots(r, path.join(tmp, 'uneven'), { scale: 1 });
  t.notOk(written.some((w) => w.includes('confusion-m2kd')), 'no confusion plot without a matrix');
  t.ok(written.some((w) => w.includes('confusion-lwf-mc')));

  const other = makeResults({ cps: 3, steps: 2, methods: [['ft', 'FT', false]] });
  const entries = entriesOfRuns([
    { results: r, source: '/x/a' },
    { results: other, source: '/x/b' },
  ]);
  t.match(perStepComparisonTable(entries), /^\s*1\s+2\/3\s.*@3$/m, 'different classes per step are shown per cell');
  const files = await renderPlots(other, path.join(tmp, 'uneven2'), { scale: 1 });
  for (const f of files.filter((w) => w.endsWith('.png'))) await checkPng(t, f);
});

t.test('m2kd report', async (t) => {
  const dir = path.join(tmp, 'runs', 'report-a');
  writeResults(dir, makeResults());
  const c = capture();
  await reportCommand([dir], { out: c.out });
  const text = c.text();
  t.match(text, 'dataset: synthetic (6 classes');
  t.match(text, 'protocol: 2 classes per step, 3 steps, 2 class orders');
  t.match(text, /Comparison \(mean ± std over 2 class orders\)/);
  t.match(text, 'Top-1 accuracy (%) per step');
  t.match(text, 'M²KD — order 1 of 2 (seed 1993)');
  t.match(text, 'LwF-MC — order 1 of 2 (seed 1993)');
  t.match(text, 'accuracy.png');
  for (const f of ['accuracy.png', 'accuracy.svg', 'confusion-m2kd.png', 'confusion-lwf-mc.png', 'memory.png', 'masks-m2kd.png'])
    t.ok(fs.existsSync(path.join(dir, f)), `${f} in the run dir`);

  const dir2 = path.join(tmp, 'runs', 'report-b');
  writeResults(dir2, makeResults());
  const c2 = capture();
  await reportCommand(['--markdown', dir2, '--no-plots', '--order', '2'], { out: c2.out });
  t.match(c2.text(), '| method | avg inc. top-1 |', 'markdown tables; --markdown does not swallow the run dir');
  t.match(c2.text(), 'order 2 of 2 (seed 1994)');
  t.same(fs.readdirSync(dir2), ['results.json'], '--no-plots writes no plot');
  const elsewhere = path.join(tmp, 'runs', 'report-b-plots');
  await reportCommand([dir2, '--out', elsewhere], { out: () => {} });
  t.ok(fs.existsSync(path.join(elsewhere, 'accuracy.png')), '--out puts the plots elsewhere');
  t.same(fs.readdirSync(dir2), ['results.json'], 'and leaves the run dir alone');
  const afile = path.join(tmp, 'runs', 'a-file');
  fs.writeFileSync(afile, 'x');
  await t.rejects(reportCommand([dir2, '--out', path.join(afile, 'sub')], { out: () => {} }), /cannot create output folder .*a-file\/sub: not a directory \(ENOTDIR\)$/);
  const one = path.join(tmp, 'runs', 'one-order');
  writeResults(one, makeResults({ orders: 1 }));
  const c3 = capture();
  await reportCommand([one, '--no-plots'], { out: c3.out });
  t.match(c3.text(), 'Comparison (1 class order)');
  t.notMatch(c3.text(), ' ± ', 'no ± with a single order');

  await t.rejects(reportCommand([path.join(tmp, 'runs', 'missing')]), /missing does not exist/);
  await t.rejects(reportCommand([]), /which run\?/);
  await t.rejects(reportCommand([dir, '--bogus']), /unknown option: --bogus/);
  await t.rejects(reportCommand([dir, '--order', '3', '--no-plots']), /--order 3 but method m2kd has 2 class orders/);
  const bad = path.join(tmp, 'runs', 'report-bad');
  fs.mkdirSync(bad);
  fs.writeFileSync(path.join(bad, 'results.json'), '{"format":"m2kd-results","version":1,');
  await t.rejects(reportCommand([bad]), { name: 'ResultsError', message: /not valid JSON/ });
});

t.test('m2kd compare', async (t) => {
  const a = path.join(tmp, 'cmp', 'run-a');
  const b = path.join(tmp, 'cmp', 'run-b');
  const ra = makeResults();
  const rb = makeResults({ methods: [['m2kd', 'M²KD', true], ['ft', 'FT', false]], orders: 3 });
  writeResults(a, ra);
  writeResults(b, rb);
  const c = capture();
  const out = path.join(tmp, 'cmp', 'plots');
  await compareCommand([a, path.join(b, 'results.json'), '--out', out], { out: c.out });
  const text = c.text();
  t.match(text, 'comparing 2 runs');
  t.match(text, 'M²KD [run-a]', 'same-named methods get their run');
  t.match(text, 'M²KD [run-b]');
  t.match(text, /LwF-MC\s/, 'unique names stay plain');
  t.notMatch(text, 'LwF-MC [');
  t.match(text, 'note: the runs differ in number of class orders');
  t.match(text, `${rb.methods['ft'].avg_incremental_top1.mean.toFixed(2)} ± ${rb.methods['ft'].avg_incremental_top1.std.toFixed(2)}`);
  await checkPng(t, path.join(out, 'accuracy.png'));
  t.match(fs.readFileSync(path.join(out, 'accuracy.svg'), 'utf8'), 'M²KD [run-b] (avg ');

  const keys = entriesOfRuns([
    { results: ra, source: a },
    { results: ra, source: a },
  ]).map((e) => e.key);
  t.equal(new Set(keys).size, keys.length, 'the same run twice still gives unique keys');
  t.same(entriesOf(ra).map((e) => e.key), ['m2kd', 'lwf-mc']);

  const c2 = capture();
  await compareCommand(['--markdown', a, b], { out: c2.out });
  t.match(c2.text(), '| M²KD [run-a] |');

  await t.rejects(compareCommand([]), /which runs\?/);
  await t.rejects(compareCommand([a, path.join(tmp, 'cmp', 'run-zzz')]), /run-zzz does not exist/);
  const afile = path.join(tmp, 'cmp', 'file');
  fs.writeFileSync(afile, 'x');
  await t.rejects(compareCommand([a, b, '--out', path.join(afile, 'sub')], { out: () => {} }), /cannot create output folder .*file\/sub: not a directory \(ENOTDIR\)$/);
  await t.rejects(compareCommand([a, b, '--out', afile], { out: () => {} }), /is a file, not a folder/);
  const printed: string[] = [];
  await t.rejects(compareCommand([a, b, '--out', path.join(afile, 'sub')], { out: (s) => printed.push(s) }), /ENOTDIR/);
  t.same(printed, [], 'an unusable --out fails before any table is printed');
});

t.test('CLI: user errors print one line and exit non-zero', async (t) => {
  const errors: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  try {
    t.equal(await main(['report', path.join(tmp, 'no-such-run')]), 1);
    t.equal(await main(['compare']), 1);
    t.equal(await main(['report', tmp, '--bogus']), 1);
  } finally {
    console.error = origErr;
  }
  t.equal(errors.length, 3);
  t.match(errors[0], /^m2kd: .*no-such-run does not exist \(expected a run folder or a results\.json\)$/);
  t.match(errors[2], /^m2kd: unknown option: --bogus$/);
  t.notMatch(errors.join('\n'), /\n\s+at /, 'no stack trace');

  // the real command, in a child process
  const cli = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
  const dir = path.join(tmp, 'cli-run');
  writeResults(dir, makeResults());
  const ok = spawnSync(process.execPath, [cli, 'report', dir, '--no-plots'], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, 'Comparison (mean ± std over 2 class orders)');
  const cmp = spawnSync(process.execPath, [cli, 'compare', dir, dir, '--markdown'], { encoding: 'utf8' });
  t.equal(cmp.status, 0, cmp.stderr);
  t.match(cmp.stdout, '| M²KD [cli-run] |');
  t.match(cmp.stdout, '| M²KD [cli-run] #2 |');
  fs.writeFileSync(path.join(dir, 'results.json'), '{"format": "m2kd-results", "vers');
  const bad = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.equal(bad.stdout, '');
  t.match(bad.stderr, /^m2kd: .*results\.json is not valid JSON \(truncated or corrupt\?\): .*\n$/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
  t.ok(ResultsError);
});
