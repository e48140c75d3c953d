// results.json: writing (atomic, validated first, compact-but-readable JSON) and reading (with
// format/version checks and a walk over every required field that names the first bad field
// path, e.g. "methods.m2kd.orders[0].steps[2].top1"). The schema is src/il/results.ts;
// docs/results-schema.md documents it. Errors here are user errors (ResultsError): the CLI
// prints their message without a stack.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io/atomic';
import type { RunResults } from '../il/results';

export const RESULTS_FILE = 'results.json';
export const RESULTS_FORMAT = 'm2kd-results';
export const RESULTS_VERSION = 1;

/** A problem with a results file or a run folder, caused by the input rather than by m2kd. */
export class ResultsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResultsError';
  }
}

type Obj = Record<string, unknown>;

/** "not a directory (ENOTDIR)" from a Node system error; its message otherwise. */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object') return String(e);
  if (!err.code) return err.message;
  const desc = err.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
  return desc && desc !== err.code ? `${desc} (${err.code})` : err.code;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isFinite(v) ? `the number ${v}` : String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `a ${typeof v}`;
}

/** Walks a parsed value, throwing a ResultsError that names the offending field path. */
class Checker {
  constructor(private readonly source: string) {}

  fail(p: string, what: string): never {
    throw new ResultsError(`${this.source}: ${p} ${what}`);
  }

  field(o: Obj, key: string, p: string): unknown {
    const fp = p ? `${p}.${key}` : key;
    if (!Object.prototype.hasOwnProperty.call(o, key) || o[key] === undefined) this.fail(fp, 'is missing');
    return o[key];
  }

  obj(v: unknown, p: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(p, `must be an object, got ${describe(v)}`);
    return v as Obj;
  }

  num(v: unknown, p: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(p, `must be a finite number, got ${describe(v)}`);
    return v as number;
  }

  int(v: unknown, p: string, min = 0): number {
    const x = this.num(v, p);
    if (!Number.isInteger(x) || x < min) this.fail(p, `must be an integer >= ${min}, got ${x}`);
    return x;
  }

  str(v: unknown, p: string): string {
    if (typeof v !== 'string') this.fail(p, `must be a string, got ${describe(v)}`);
    return v as string;
  }

  arr(v: unknown, p: string): unknown[] {
    if (!Array.isArray(v)) this.fail(p, `must be an array, got ${describe(v)}`);
    return v as unknown[];
  }

  nums(v: unknown, p: string): number[] {
    const a = this.arr(v, p);
    a.forEach((x, i) => this.num(x, `${p}[${i}]`));
    return a as number[];
  }

  // typed field accessors: o.key at path p
  fObj(o: Obj, k: string, p: string): Obj {
    return this.obj(this.field(o, k, p), `${p}.${k}`);
  }
  fNum(o: Obj, k: string, p: string): number {
    return this.num(this.field(o, k, p), `${p}.${k}`);
  }
  fInt(o: Obj, k: string, p: string, min = 0): number {
    return this.int(this.field(o, k, p), `${p}.${k}`, min);
  }
  fStr(o: Obj, k: string, p: string): string {
    return this.str(this.field(o, k, p), `${p}.${k}`);
  }
  fArr(o: Obj, k: string, p: string): unknown[] {
    return this.arr(this.field(o, k, p), `${p}.${k}`);
  }
  fNums(o: Obj, k: string, p: string): number[] {
    return this.nums(this.field(o, k, p), `${p}.${k}`);
  }
  fNullable<T>(o: Obj, k: string, p: string, check: (v: unknown, p: string) => T): T | null {
    const v = this.field(o, k, p);
    return v === null ? null : check.call(this, v, `${p}.${k}`);
  }

  meanStd(o: Obj, k: string, p: string): void {
    const ms = this.fObj(o, k, p);
    const q = `${p}.${k}`;
    this.fNum(ms, 'mean', q);
    this.fNum(ms, 'std', q);
    this.fInt(ms, 'n', q, 0);
  }
}

function checkStep(c: Checker, v: unknown, p: string): void {
  const s = c.obj(v, p);
  c.fInt(s, 'step', p, 1);
  c.fNums(s, 'classes', p);
  const seen = c.fInt(s, 'classes_seen', p, 1);
  c.fNum(s, 'top1', p);
  c.fNum(s, 'top5', p);
  c.fNums(s, 'per_group', p);
  c.fNums(s, 'forgetting', p);
  c.fNum(s, 'mean_forgetting', p);
  const conf = c.fArr(s, 'confusion', p);
  if (conf.length !== 0 && conf.length !== seen) c.fail(`${p}.confusion`, `must have classes_seen (${seen}) rows, got ${conf.length}`);
  conf.forEach((row, i) => {
    const r = c.nums(row, `${p}.confusion[${i}]`);
    if (r.length !== conf.length) c.fail(`${p}.confusion[${i}]`, `must have ${conf.length} entries (a square matrix), got ${r.length}`);
  });
  const mem = c.fObj(s, 'memory', p);
  for (const k of ['masks', 'bn', 'heads', 'snapshots', 'exemplars', 'total']) c.fNum(mem, k, `${p}.memory`);
  if (s.mask_occupancy !== undefined) {
    const mo = c.obj(s.mask_occupancy, `${p}.mask_occupancy`);
    for (const [layer, occ] of Object.entries(mo)) {
      const q = `${p}.mask_occupancy[${JSON.stringify(layer)}]`;
      const o = c.obj(occ, q);
      c.fNums(o, 'owned', q);
      c.fNum(o, 'free', q);
    }
  }
  const sec = c.fObj(s, 'seconds', p);
  for (const k of ['train', 'finetune', 'teachers', 'eval', 'total']) c.fNum(sec, k, `${p}.seconds`);
  c.fNum(s, 'final_loss', p);
}

function checkOrder(c: Checker, v: unknown, p: string): void {
  const o = c.obj(v, p);
  c.fNums(o, 'order', p);
  c.fNullable(o, 'order_seed', p, c.num);
  c.fNullable(o, 'order_name', p, c.str);
  const steps = c.fArr(o, 'steps', p);
  steps.forEach((s, i) => checkStep(c, s, `${p}.steps[${i}]`));
  c.fNum(o, 'avg_incremental_top1', p);
  c.fNum(o, 'avg_incremental_top5', p);
  c.fNum(o, 'seconds', p);
}

function checkMethod(c: Checker, v: unknown, p: string): void {
  const m = c.obj(v, p);
  c.fStr(m, 'method', p);
  c.fStr(m, 'label', p);
  const orders = c.fArr(m, 'orders', p);
  if (orders.length === 0) c.fail(`${p}.orders`, 'is empty (a method needs at least one class order)');
  orders.forEach((o, i) => checkOrder(c, o, `${p}.orders[${i}]`));
  c.meanStd(m, 'avg_incremental_top1', p);
  c.meanStd(m, 'avg_incremental_top5', p);
  const per = c.fArr(m, 'top1_per_step', p);
  per.forEach((v, i) => {
    const q = `${p}.top1_per_step[${i}]`;
    const ms = c.obj(v, q);
    c.fNum(ms, 'mean', q);
    c.fNum(ms, 'std', q);
    c.fInt(ms, 'n', q, 0);
  });
  c.fObj(m, 'config', p);
}

/**
 * Checks that a parsed value is a RunResults this version understands; returns it typed.
 * `source` names the file in error messages.
 */
export function validateResults(value: unknown, source = 'results'): RunResults {
  const c = new Checker(source);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ResultsError(`${source}: not an m2kd results file (expected a JSON object, got ${describe(value)})`);
  const r = value as Obj;
  if (r.format !== RESULTS_FORMAT)
    throw new ResultsError(`${source}: not an m2kd results file (format is ${r.format === undefined ? 'missing' : describe(r.format)}, expected "${RESULTS_FORMAT}")`);
  if (r.version !== RESULTS_VERSION)
    throw new ResultsError(`${source}: unsupported results version ${describe(r.version)} (this m2kd reads version ${RESULTS_VERSION})`);
  c.fStr(r, 'created', '');
  c.fStr(r, 'command', '');
  const ds = c.fObj(r, 'dataset', '');
  c.fStr(ds, 'name', 'dataset');
  c.fInt(ds, 'classes', 'dataset', 1);
  c.fInt(ds, 'train_images', 'dataset');
  c.fInt(ds, 'test_images', 'dataset');
  c.fNums(ds, 'image_shape', 'dataset');
  c.fArr(ds, 'class_names', 'dataset').forEach((s, i) => c.str(s, `dataset.class_names[${i}]`));
  const pr = c.fObj(r, 'protocol', '');
  c.fInt(pr, 'classes_per_step', 'protocol', 1);
  c.fInt(pr, 'steps', 'protocol', 1);
  c.fInt(pr, 'orders', 'protocol', 1);
  if (pr.headline !== undefined && pr.headline !== 'top1' && pr.headline !== 'top5') c.fail('protocol.headline', `must be "top1" or "top5", got ${JSON.stringify(pr.headline)}`);
  c.fObj(r, 'runtime', '');
  const methods = c.fObj(r, 'methods', '');
  if (Object.keys(methods).length === 0) c.fail('methods', 'is empty (no method ran)');
  for (const [k, m] of Object.entries(methods)) checkMethod(c, m, `methods.${k}`);
  c.fNum(r, 'seconds', '');
  return value as RunResults;
}

const INLINE_WIDTH = 160;

/**
 * JSON text equal (after JSON.parse) to JSON.stringify(results): objects indented, arrays of
 * numbers or strings kept on one line, so a file with confusion matrices stays readable and small.
 */
export function stringifyResults(results: RunResults): string {
  const out: string[] = [];
  const go = (v: unknown, ind: string): string => {
    if (v === null || typeof v !== 'object') {
      const s = JSON.stringify(v);
      return s === undefined ? 'null' : s;
    }
    const inner = ind + '  ';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      if (v.every((x) => x === null || typeof x !== 'object')) {
        const s = JSON.stringify(v);
        if (s.length <= INLINE_WIDTH || v.every((x) => typeof x === 'number')) return s;
      }
      return '[\n' + v.map((x) => inner + go(x, inner)).join(',\n') + '\n' + ind + ']';
    }
    const entries = Object.entries(v as Obj).filter(([, x]) => x !== undefined && typeof x !== 'function');
    if (entries.length === 0) return '{}';
    return '{\n' + entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${go(x, inner)}`).join(',\n') + '\n' + ind + '}';
  };
  out.push(go(results, ''));
  return out.join('') + '\n';
}

/**
 * Writes <dir>/results.json atomically (creating dir), after validating the results so that a
 * malformed run never lands on disk. Returns the file path.
 */
export function writeResults(dir: string, results: RunResults): string {
  const file = path.join(dir, RESULTS_FILE);
  validateResults(results, file);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ResultsError(`cannot create run folder ${dir}: ${errnoText(e)}`);
  }
  try {
    writeFileAtomic(file, stringifyResults(results));
  } catch (e) {
    throw new ResultsError((e as Error).message);
  }
  return file;
}

/** The results.json a path names: the path itself if it is a file, else <dir>/results.json. */
export function resultsPath(pathOrDir: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(pathOrDir);
  } catch {
    throw new ResultsError(`${pathOrDir} does not exist (expected a run folder or a results.json)`);
  }
  if (!st.isDirectory()) return pathOrDir;
  const file = path.join(pathOrDir, RESULTS_FILE);
  if (!fs.existsSync(file)) throw new ResultsError(`${pathOrDir} has no ${RESULTS_FILE} (is it a run folder? a run writes it when its first method finishes)`);
  return file;
}

/** Reads and validates a results.json (or the one in a run folder). */
export function readResults(pathOrDir: string): RunResults {
  const file = resultsPath(pathOrDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ResultsError(`cannot read ${file}: ${errnoText(e)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const why = text.trim().length === 0 ? 'the file is empty' : (e as Error).message;
    throw new ResultsError(`${file} is not valid JSON (truncated or corrupt?): ${why}`);
  }
  return validateResults(value, file);
}
